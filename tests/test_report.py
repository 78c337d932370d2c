"""Study report tables from fake curve files, against hand-computed values, and its bad inputs."""

import json
import os
import subprocess
import sys

import matplotlib.image
import pytest

import update_fixtures
from visionary_jax import genotype as G
from visionary_jax.study import report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (curve of success rates at steps 1000 and 2000) per seed. Finals: baseline 0.6 0.7 0.8, visionary 0.8 0.9 0.85.
CURVES = {
    "baseline": {0: [0.5, 0.6], 1: [0.9, 0.7], 2: [0.4, 0.8]},
    "visionary": {0: [0.7, 0.8], 1: [0.6, 0.9], 2: [0.95, 0.85]},
    "evolution": {0: [0.2, 0.3]},
}
FOUND = G.Genotype(ops=("noop", "conv_filter", "noop", "noop", "noop"), attention=((), ("action",), (), (), ()))


def _write(path, obj):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(obj, f)


def make_study(root, curves=CURVES):
  _write(os.path.join(root, "study.json"), {
      "format": "visionary_jax.study", "version": 1, "task": "grasping", "preset": "cpu",
      "dataset": {"dir": "/data/episodes", "episodes": 100, "transitions": 700},
      "config": {"study": {"retrain_steps": 2000, "search_steps": 2000, "eval_every": 1000, "eval_trials": 50}}})
  for variant, seeds in curves.items():
    for seed, rates in seeds.items():
      run = os.path.join(root, variant, f"seed_{seed}")
      _write(os.path.join(run, "train", "eval_curve.json"),
             [{"step": 1000 * (k + 1), "success_rate": r, "trials": 50} for k, r in enumerate(rates)])
      G.save_json(G.BASELINE if variant == "baseline" else FOUND, os.path.join(run, "derived", "genotype.json"))
  # A run still training: evaluated at step 1000 of 2000.
  _write(os.path.join(root, "visionary", "seed_3", "train", "eval_curve.json"),
         [{"step": 1000, "success_rate": 1.0, "trials": 50}])
  _write(os.path.join(root, "evolution", "seed_0", "search", "budget.json"), {
      "fitness_runs": 20, "steps_per_run": 100, "gradient_steps": 2000, "wall_seconds": 1500.0,
      "one_shot_search_steps": 2000})
  _write(os.path.join(root, "visionary", "seed_0", "search", "timing.json"), {"seconds": 1000.0, "invocations": 1})


def test_table_one_hand_computed(tmp_path):
  make_study(str(tmp_path))
  runs, incomplete = report.read_runs(str(tmp_path), 2000)
  assert incomplete == ["visionary seed 3: evaluated up to step 1000 of 2000"]
  rows = {r.variant: r for r in report.table_one(runs)}
  assert list(rows) == ["baseline", "visionary", "evolution"]
  b, v, e = rows["baseline"], rows["visionary"], rows["evolution"]
  assert (b.runs, v.runs, e.runs) == (3, 3, 1)
  assert b.final_mean == pytest.approx(0.7) and b.final_std == pytest.approx(0.1) and b.final_best == pytest.approx(0.8)
  # Peaks 0.6, 0.9, 0.8: mean 0.7667, deviations -1/6, 2/15, 1/30 -> variance 0.02333 (ddof 1), std 0.15275.
  assert b.peak_mean == pytest.approx(0.76667, abs=1e-5) and b.peak_std == pytest.approx(0.15275, abs=1e-5)
  assert v.final_mean == pytest.approx(0.85) and v.final_std == pytest.approx(0.05) and v.final_best == pytest.approx(0.9)
  # Peaks 0.8, 0.9, 0.95: mean 0.88333, squared deviations 0.006944 + 0.000278 + 0.004444 -> std 0.07638.
  assert v.peak_mean == pytest.approx(0.88333, abs=1e-5) and v.peak_std == pytest.approx(0.07638, abs=1e-5)
  # Pooled variance (2 * 0.05^2 + 2 * 0.1^2) / 4 = 0.00625; t = 0.15 / sqrt(0.00625 * 2/3) = 2.3238, df 4.
  assert v.test.t == pytest.approx(2.32379, abs=1e-5) and v.test.df == 4 and v.test.p == pytest.approx(0.0808, abs=1e-4)
  assert b.test is None and e.test is None  # one evolution run: no test
  assert e.final_std == 0.0 and e.peak_mean == pytest.approx(0.3)

  markdown = report.table_markdown(report.table_one(runs)).splitlines()
  assert markdown[0] == "| variant | runs | final success (%) | best run (%) | peak success (%) | t | df | p |"
  assert markdown[2] == "| baseline | 3 | 70.0 ± 10.0 | 80.0 | 76.7 ± 15.3 |  |  |  |"
  assert markdown[3] == "| visionary | 3 | 85.0 ± 5.0 | 90.0 | 88.3 ± 7.6 | 2.324 | 4 | 0.0808 |"
  assert markdown[4] == "| evolution | 1 | 30.0 | 30.0 | 30.0 |  |  |  |"  # one run: no spread to show
  csv_lines = report.table_csv(report.table_one(runs)).splitlines()
  assert csv_lines[0] == "variant,runs,final_mean,final_std,final_best,peak_mean,peak_std,t,df,p"
  assert csv_lines[1] == "baseline,3,70.00,10.00,80.00,76.67,15.28,,,"
  assert csv_lines[2] == "visionary,3,85.00,5.00,90.00,88.33,7.64,2.324,4,0.0808"
  assert csv_lines[3] == "evolution,1,30.00,0.00,30.00,30.00,0.00,,,"


def test_constant_groups_give_no_t(tmp_path):
  make_study(str(tmp_path), {"baseline": {0: [0.0, 0.0], 1: [0.0, 0.0]}, "visionary": {0: [0.0, 0.0], 1: [0.0, 0.0]}})
  runs, _ = report.read_runs(str(tmp_path), 2000)
  line = report.table_markdown(report.table_one(runs)).splitlines()[3]
  assert line == "| visionary | 2 | 0.0 ± 0.0 | 0.0 | 0.0 ± 0.0 | n/a | 2 | n/a |"


def test_write_report(tmp_path):
  make_study(str(tmp_path / "root"))
  paths = report.write_report(str(tmp_path / "root"), str(tmp_path / "out"), {}, log=lambda line: None)
  text = open(paths["report.md"]).read()
  assert "100 episodes, 700 transitions" in text
  assert "baseline 3 (seeds 0, 1, 2), visionary 3 (seeds 0, 1, 2), evolution 1 (seeds 0)" in text
  assert "Incomplete runs (not in the tables): visionary seed 3" in text
  # Evolution budget: 20 runs x 100 steps, 1500 s against the one-shot search's 1000 s.
  assert "| 0 | 20 x 100 | 2000 | 1500 s | 2000 | 1000 s | 1.50 |" in text
  genotypes = open(paths["genotypes.md"]).read()
  assert "loc1: conv_filter attention <- action" in genotypes
  assert "picture" not in genotypes  # no run here drew its architecture.png
  # The three baseline seeds share one genotype and so one section that lists their three files.
  assert "### baseline seeds 0, 1, 2\n\n- `" in genotypes
  assert genotypes.count("### ") == 3 and genotypes.count("genotype.json`") == 7
  assert open(paths["table_one.csv"]).read().startswith("variant,runs,final_mean")
  for name in ("report.md", "genotypes.md"):
    assert str(tmp_path) not in open(paths[name]).read() and "/data/episodes" not in open(paths[name]).read()
  assert "- `baseline/seed_0/derived/genotype.json`\n" in genotypes
  assert matplotlib.image.imread(paths["learning_curves.png"]).std() > 0.01
  assert report.distinct_found(report.found_genotypes(str(tmp_path / "root"))) == {
      "visionary s0, visionary s1, visionary s2, evolution s0": FOUND}


def test_report_names_files_relative_to_the_root(tmp_path, monkeypatch):
  root = tmp_path / "studies" / "grasping"
  make_study(str(root))
  (root / "visionary" / "seed_1" / "derived" / "architecture.png").write_bytes(b"png")
  monkeypatch.chdir(tmp_path)  # a relative --workdir, as a committed archive is given
  for given in (str(root), os.path.join("studies", "grasping")):
    paths = report.write_report(given, str(tmp_path / "out"), {}, log=lambda line: None)
    genotypes = open(paths["genotypes.md"]).read()
    assert genotypes in open(paths["report.md"]).read()
    named = [part.split("`")[0] for part in genotypes.split("- `")[1:]]
    named += [line.split("picture `")[1].rstrip("`") for line in genotypes.splitlines() if "picture `" in line]
    assert len(named) == 8  # seven genotype files and the one picture
    assert "visionary/seed_1/derived/architecture.png" in named
    assert all(not os.path.isabs(path) and (root / path).is_file() for path in named), named


@pytest.mark.parametrize("curve,message", [
    ("[{\"step\": 1000, \"success_rate\": 0.5", "is malformed JSON"),
    ("[]", "must be a non-empty list"),
    ("[{\"step\": 2000, \"success_rate\": 1.5}]", "field 'success_rate' must be a number in [0, 1], got 1.5"),
    ("[{\"step\": 2000, \"success_rate\": 0.5}, {\"step\": 1000, \"success_rate\": 0.5}]",
     "entry 1 field 'step' must be an integer above the previous entry's"),
])
def test_malformed_curve_is_named(tmp_path, curve, message):
  make_study(str(tmp_path))
  path = tmp_path / "baseline" / "seed_1" / "train" / "eval_curve.json"
  path.write_text(curve)
  with pytest.raises(ValueError, match=str(path)) as error:
    report.read_runs(str(tmp_path), 2000)
  assert message in str(error.value)


def test_missing_or_foreign_study(tmp_path):
  with pytest.raises(ValueError, match="is not a directory"):
    report.load_study(str(tmp_path / "nowhere"))
  with pytest.raises(ValueError, match="study.json does not exist"):
    report.load_study(str(tmp_path))
  (tmp_path / "study.json").write_text('{"format": "something else"}')
  with pytest.raises(ValueError, match="is not a visionary_jax.study record"):
    report.load_study(str(tmp_path))


@pytest.mark.parametrize("args,message", [
    (("--flops_presets=tiny",), "--flops_presets: unknown presets ['tiny']"),
    (("--flops_presets=",), "malformed JSON"),
])
def test_launcher_rejects_bad_input(tmp_path_factory, tmp_path, args, message):
  make_study(str(tmp_path))
  (tmp_path / "visionary" / "seed_0" / "train" / "eval_curve.json").write_text("{")
  result = subprocess.run([sys.executable, "-m", "experiments.report", f"--workdir={tmp_path}",
                           f"--output={tmp_path / 'out'}", *args], cwd=ROOT, capture_output=True, text=True,
                          env=update_fixtures.subprocess_env(tmp_path_factory), timeout=120)
  assert result.returncode != 0
  assert message in result.stderr


def test_study_record_fields_are_checked(tmp_path):
  make_study(str(tmp_path))
  record = json.load(open(tmp_path / "study.json"))
  del record["dataset"]["episodes"], record["config"]["study"]["retrain_steps"]
  (tmp_path / "study.json").write_text(json.dumps(record))
  with pytest.raises(ValueError, match=r"lacks the fields \['dataset.episodes', 'config.study.retrain_steps'\]"):
    report.load_study(str(tmp_path))

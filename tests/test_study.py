"""The smoke study end to end through its launchers (search, derive, study, report), resuming, and bad input.

One module fixture runs, on a synthetic 12-episode dataset at the `smoke` preset:
  experiments.search + experiments.derive   visionary seed 0 (the study then finds them done);
  experiments.study --variants=baseline,visionary --seeds=0,1   (searches, derives, retrains, evaluates);
  experiments.study --variants=evolution,transfer --seeds=0     (a second process on the same root);
  the first study command again                                  (everything is skipped);
  experiments.report --flops_presets=smoke.
"""

import json
import os

import numpy as np
import pytest

import episode_fixtures
from experiments.configs import grasping
import update_fixtures
from visionary_jax import genotype as G
from visionary_jax.search import one_shot
from visionary_jax.study import runner

CONFIG = "--config=experiments/configs/grasping.py:smoke"
# The data's next action as the Bellman target: the study's orchestration is under test here, and this
# update compiles in a fraction of the CEM target's time (tests/test_update.py covers both targets).
TARGET = "--config.train.target=data"
SMOKE = grasping.get_config("smoke").study

pytestmark = pytest.mark.slow  # the module fixture runs the whole smoke study (about 2 minutes)


_run = update_fixtures.run_module


@pytest.fixture(scope="module")
def env(tmp_path_factory):
  return update_fixtures.subprocess_env(tmp_path_factory)


@pytest.fixture(scope="module")
def study(tmp_path_factory, env):
  base = tmp_path_factory.mktemp("study")
  data = base / "episodes"
  data.mkdir()
  episode_fixtures.write_dataset(str(data), num_episodes=12, per_shard=4, image_size=32)
  root = base / "root"
  dataset = f"--config.train.dataset_dir={data}"
  config = (CONFIG, TARGET, dataset)
  run0 = root / "visionary" / "seed_0"
  out = {"root": root, "data": data}
  out["search"] = _run(env, "experiments.search", *config, f"--workdir={run0 / 'search'}", "--space=full",
                       f"--config.train.steps={SMOKE.search_steps}", "--config.train.eval_every=0")
  out["derive"] = _run(env, "experiments.derive", f"--search={run0 / 'search'}", f"--output={run0 / 'derived'}")
  first = ("experiments.study", *config, f"--workdir={root}", "--variants=baseline,visionary", "--seeds=0,1")
  out["study"] = _run(env, *first)
  out["second"] = _run(env, "experiments.study", *config, f"--workdir={root}", "--variants=evolution,transfer",
                       "--seeds=0", f"--config.study.transfer_genotype={run0 / 'derived' / 'genotype.json'}")
  out["rerun"] = _run(env, *first)
  out["report"] = _run(env, "experiments.report", f"--workdir={root}", f"--output={base / 'report'}",
                       "--flops_presets=smoke")
  out["report_dir"] = base / "report"
  return out


def test_search_and_derive_launchers(study):
  run0 = study["root"] / "visionary" / "seed_0"
  assert "architecture weights over training" in study["search"].stdout
  assert os.path.getsize(run0 / "search" / "architecture_weights.png") > 10_000
  # Derived from the newest checkpoint: the same genotype the trainer exported at the end of the search.
  derived = G.load_json(str(run0 / "derived" / "genotype.json"))
  assert derived == G.load_json(str(run0 / "search" / "export" / "genotype.json"))
  assert derived.describe().splitlines()[0] in study["derive"].stdout
  weights = G.load_json_weights(str(run0 / "derived" / "genotype.json"))
  for i in range(G.NUM_LOCATIONS):
    assert sum(weights[i]["op_weights"].values()) == pytest.approx(1.0, abs=1e-6)
    assert set(weights[i]["attention_weights"]) == set(G.attention_candidates(i))
  assert "| smoke | found |" in open(run0 / "derived" / "flops.md").read()
  assert json.load(open(run0 / "derived" / "derive.json"))["step"] == SMOKE.search_steps


def test_study_runs_every_stage_with_progress(study):
  stdout = study["study"].stdout
  for n, job in enumerate(["baseline seed 0", "baseline seed 1", "visionary seed 0", "visionary seed 1"], 1):
    assert f"[{n}/4] {job}" in stdout
  seed0, seed1 = stdout.split("[3/4]")[1].split("[4/4]")
  assert "search: done" in seed0 and "derive: done" in seed0  # written by the launchers above
  assert f"search: {SMOKE.search_steps} steps, full space" in seed1 and "derive: ->" in seed1
  assert "evaluation at step 2" in stdout and "train: final success" in stdout
  root = study["root"]
  for variant, seed in [("baseline", 0), ("baseline", 1), ("visionary", 0), ("visionary", 1), ("evolution", 0),
                        ("transfer", 0)]:
    run = root / variant / f"seed_{seed}"
    curve = json.load(open(run / "train" / "eval_curve.json"))
    assert [c["step"] for c in curve] == [2, 4] and all(c["trials"] == SMOKE.eval_trials for c in curve)
    assert json.load(open(run / "train" / "export" / "export.json"))["step"] == SMOKE.retrain_steps
    assert json.load(open(run / "train" / "config.json"))["seed"] == seed
    for name in ("genotype.json", "architecture.png", "flops.md", "derive.json"):
      assert (run / "derived" / name).exists(), (variant, seed, name)
  assert G.load_json(str(root / "baseline" / "seed_1" / "derived" / "genotype.json")) == G.BASELINE
  record = json.load(open(root / "study.json"))
  assert record["dataset"] == {"dir": str(study["data"]), "episodes": 12, "transitions": 33}


def test_evolution_and_transfer(study):
  search = study["root"] / "evolution" / "seed_0" / "search"
  budget = json.load(open(search / "budget.json"))
  runs = SMOKE.evolution.population_size + SMOKE.evolution.cycles
  assert budget["fitness_runs"] == runs
  assert budget["gradient_steps"] == runs * SMOKE.evolution.fitness_steps
  assert budget["one_shot_search_steps"] == SMOKE.search_steps and budget["wall_seconds"] > 0
  history = json.load(open(search / "history.json"))
  assert len(history) == runs and G.Genotype.from_json_dict(history[0]["genotype"]) == G.BASELINE
  fitness = [json.load(open(search / "candidates" / f"{k:03d}" / "fitness.json")) for k in range(runs)]
  assert all(np.isfinite(f["heldout_bellman_error"]) and f["fitness"] == -f["heldout_bellman_error"] for f in fitness)
  best = max(history, key=lambda h: h["fitness"])
  assert G.load_json(str(search.parent / "derived" / "genotype.json")) == G.Genotype.from_json_dict(best["genotype"])
  transfer = study["root"] / "transfer" / "seed_0" / "derived"
  assert G.load_json(str(transfer / "genotype.json")) == G.load_json(
      str(study["root"] / "visionary" / "seed_0" / "derived" / "genotype.json"))
  assert "evolution: 30 training and 3 held-out transitions" in study["second"].stdout  # episodes 0, 5, 10


def test_rerun_skips_everything(study):
  stdout = study["rerun"].stdout
  assert stdout.count("train: done") == 4 and stdout.count("search: done") == 2
  assert "step 1/" not in stdout and "evaluation at step" not in stdout


def test_report(study):
  out = study["report_dir"]
  lines = open(out / "table_one.csv").read().splitlines()
  assert lines[0] == "variant,runs,final_mean,final_std,final_best,peak_mean,peak_std,t,df,p"
  rows = {line.split(",")[0]: line.split(",") for line in lines[1:]}
  assert list(rows) == ["baseline", "visionary", "evolution", "transfer"]
  assert [rows[v][1] for v in rows] == ["2", "2", "1", "1"]
  assert rows["visionary"][8] == "2" and rows["baseline"][7:] == ["", "", ""]
  text = open(out / "report.md").read()
  assert "## Evolution budget against one one-shot search" in text and "| smoke | visionary s0" in text
  assert os.path.getsize(out / "learning_curves.png") > 10_000
  assert "Table I" in study["report"].stdout


def _config(dataset):
  config = grasping.get_config("smoke")
  config.train.dataset_dir = str(dataset)
  config.train.target = "data"
  return config


def test_study_rejects_bad_config(study, tmp_path):
  config = _config(study["data"])
  config.study.evolution.sample_size = 3
  with pytest.raises(ValueError, match=r"'evolution.sample_size' \(3\) must not exceed 'evolution.population_size'"):
    runner.run_study(config, str(tmp_path))
  config = _config("")
  with pytest.raises(ValueError, match="train config field 'dataset_dir' is empty"):
    runner.run_study(config, str(tmp_path))
  bad = tmp_path / "g.json"
  bad.write_text('{"format": "visionary_jax.genotype", "version": 1, "locations": [')
  config = _config(study["data"])
  config.study.transfer_genotype = str(bad)
  with pytest.raises(ValueError, match=f"genotype file {bad}: malformed JSON"):
    runner.run_study(config, str(tmp_path), variants=["transfer"])


def test_resume_with_another_config_is_refused(study):
  config = _config(study["data"])
  config.study.retrain_steps = 6
  config.train.gamma = 0.5
  with pytest.raises(ValueError, match=r"fields that differ: \['study.retrain_steps', 'train.gamma'\]"):
    runner.run_study(config, str(study["root"]), variants=["baseline"], seeds=[0])


def test_resume_with_other_checkpoint_and_log_intervals_is_accepted(study):
  path = study["root"] / runner.STUDY_JSON
  original = path.read_text()
  try:
    config = _config(study["data"])
    config.train.checkpoint_every += 3
    config.train.log_every += 2
    runner.run_study(config, str(study["root"]), variants=["baseline"], seeds=[0], log=lambda line: None)
    config.train.gamma = 0.5
    with pytest.raises(ValueError, match=r"fields that differ: \['train.gamma'\]"):
      runner.run_study(config, str(study["root"]), variants=["baseline"], seeds=[0])
  finally:
    path.write_text(original)


def test_root_written_before_a_config_field_existed_resumes_at_its_default(study):
  path = study["root"] / runner.STUDY_JSON
  original = path.read_text()
  try:
    record = json.loads(original)
    del record["config"]["train"]["lr_schedule"]  # as if written before the field existed
    path.write_text(json.dumps(record))
    config, defaults = _config(study["data"]), grasping.get_config("smoke")
    config.train.lr_schedule = "cosine"
    with pytest.raises(ValueError, match=r"fields that differ: \['train.lr_schedule'\]"):
      runner.run_study(config, str(study["root"]), variants=["baseline"], seeds=[0], defaults=defaults)
    with pytest.raises(ValueError, match=r"fields that differ: \['train.lr_schedule'\]"):
      runner.run_study(_config(study["data"]), str(study["root"]), variants=["baseline"], seeds=[0])
    runner.run_study(_config(study["data"]), str(study["root"]), variants=["baseline"], seeds=[0],
                       defaults=defaults, log=lambda line: None)
    assert json.loads(path.read_text())["config"]["train"]["lr_schedule"] == "constant"
  finally:
    path.write_text(original)


def test_derive_rejects_what_is_not_a_search(study, tmp_path):
  with pytest.raises(ValueError, match="describes 'genotype' training, not a search"):
    one_shot.derive(str(study["root"] / "baseline" / "seed_0" / "train"), str(tmp_path))
  with pytest.raises(ValueError, match=r"--step=3: .* has checkpoints at steps \[2, 4\]"):
    one_shot.derive(str(study["root"] / "visionary" / "seed_0" / "search"), str(tmp_path), step=3)
  with pytest.raises(ValueError, match="is not a directory"):
    one_shot.derive(str(tmp_path / "nowhere"), str(tmp_path))
  with pytest.raises(ValueError, match="--space must be one of"):
    one_shot.search_space("everything")

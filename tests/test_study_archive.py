"""The study archive: complete runs copied out of study roots, merged across roots, refused when they differ."""

import json
import os
import subprocess
import sys

import pytest
from test_report import make_study

import update_fixtures
from visionary_jax.study import archive as study_archive
from visionary_jax.study import report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _files(directory):
  return sorted(os.path.relpath(os.path.join(d, f), directory) for d, _, names in os.walk(directory) for f in names)


def _quiet(line):
  del line


def test_archive_reports_like_its_root(tmp_path):
  root, archive = str(tmp_path / "root"), str(tmp_path / "archive")
  make_study(root)
  outcome = study_archive.archive_study(root, archive, log=_quiet)
  assert outcome["archived"] == ["baseline seed 0", "baseline seed 1", "baseline seed 2", "visionary seed 0",
                                 "visionary seed 1", "visionary seed 2", "evolution seed 0"]
  assert outcome["incomplete"] == ["visionary seed 3: evaluated up to step 1000 of 2000"]
  assert not os.path.exists(os.path.join(archive, "visionary", "seed_3"))
  assert _files(os.path.join(archive, "evolution", "seed_0")) == [
      "derived/genotype.json", "search/budget.json", "source.json", "train/eval_curve.json"]
  source = json.load(open(os.path.join(archive, "baseline", "seed_1", "source.json")))
  assert source["run"] == os.path.join(os.path.abspath(root), "baseline", "seed_1")
  assert report.table_one(report.read_runs(archive, 2000)[0]) == report.table_one(report.read_runs(root, 2000)[0])
  assert report.evolution_budget_markdown(archive) == report.evolution_budget_markdown(root)

  again = study_archive.archive_study(root, archive, log=_quiet)
  assert again["archived"] == [] and len(again["unchanged"]) == 7


def test_runs_of_two_roots_merge(tmp_path):
  first, second, archive = (str(tmp_path / name) for name in ("first", "second", "archive"))
  make_study(first, {"baseline": {0: [0.5, 0.6], 1: [0.9, 0.7]}})
  make_study(second, {"baseline": {2: [0.4, 0.8]}, "visionary": {0: [0.7, 0.8]}})
  study_archive.archive_study(first, archive, log=_quiet)
  study_archive.archive_study(second, archive, log=_quiet)
  runs, _ = report.read_runs(archive, 2000)
  assert {v: sorted(s) for v, s in runs.items()} == {"baseline": [0, 1, 2], "visionary": [0]}
  assert [c[-1]["success_rate"] for _, c in sorted(runs["baseline"].items())] == [0.6, 0.7, 0.8]


def test_a_different_run_is_refused_and_nothing_written(tmp_path):
  first, second, archive = (str(tmp_path / name) for name in ("first", "second", "archive"))
  make_study(first, {"baseline": {0: [0.5, 0.6]}})
  make_study(second, {"baseline": {0: [0.5, 0.7], 1: [0.1, 0.2]}})
  study_archive.archive_study(first, archive, log=_quiet)
  before = {f: open(os.path.join(archive, f), "rb").read() for f in _files(archive)}
  with pytest.raises(ValueError, match=r"archive/baseline/seed_0 already archives baseline seed 0 with other files"):
    study_archive.archive_study(second, archive, log=_quiet)
  assert {f: open(os.path.join(archive, f), "rb").read() for f in _files(archive)} == before


@pytest.mark.parametrize("change,message", [
    (lambda r: r["config"]["study"].update(retrain_steps=3000), r"describe different studies \(fields that differ: "
     r"\['study.retrain_steps'\]\)"),
    (lambda r: r["dataset"].update(transitions=701), "was trained on a dataset of"),
    (lambda r: r.update(task="stacking"), "is a stacking/cpu study"),
])
def test_another_study_is_refused(tmp_path, change, message):
  first, second, archive = (str(tmp_path / name) for name in ("first", "second", "archive"))
  make_study(first, {"baseline": {0: [0.5, 0.6]}})
  make_study(second, {"baseline": {1: [0.5, 0.6]}})
  record = json.load(open(os.path.join(second, "study.json")))
  change(record)
  json.dump(record, open(os.path.join(second, "study.json"), "w"))
  study_archive.archive_study(first, archive, log=_quiet)
  with pytest.raises(ValueError, match=message):
    study_archive.archive_study(second, archive, log=_quiet)
  assert not os.path.exists(os.path.join(archive, "baseline", "seed_1"))


def test_resume_neutral_fields_may_differ(tmp_path):
  first, second, archive = (str(tmp_path / name) for name in ("first", "second", "archive"))
  make_study(first, {"baseline": {0: [0.5, 0.6]}})
  make_study(second, {"baseline": {1: [0.5, 0.6]}})
  record = json.load(open(os.path.join(second, "study.json")))
  record["config"]["train"] = {"checkpoint_every": 100}
  json.dump(record, open(os.path.join(second, "study.json"), "w"))
  study_archive.archive_study(first, archive, log=_quiet)
  assert study_archive.archive_study(second, archive, log=_quiet)["archived"] == ["baseline seed 1"]


def _launch(tmp_path_factory, *args):
  return subprocess.run([sys.executable, "-m", "experiments.archive", *args], cwd=ROOT, capture_output=True,
                        text=True, env=update_fixtures.subprocess_env(tmp_path_factory), timeout=120)


def test_launcher(tmp_path_factory, tmp_path):
  make_study(str(tmp_path / "root"))
  result = _launch(tmp_path_factory, f"--workdir={tmp_path / 'root'}", f"--archive={tmp_path / 'archive'}")
  assert result.returncode == 0, result.stderr
  assert "7 runs added, 0 already there, 1 incomplete" in result.stdout
  missing = _launch(tmp_path_factory, f"--workdir={tmp_path / 'nowhere'}", f"--archive={tmp_path / 'archive'}")
  assert missing.returncode != 0 and "nowhere/study.json does not exist" in missing.stderr
  (tmp_path / "root" / "baseline" / "seed_0" / "train" / "eval_curve.json").write_text("[")
  malformed = _launch(tmp_path_factory, f"--workdir={tmp_path / 'root'}", f"--archive={tmp_path / 'other'}")
  assert malformed.returncode != 0 and "baseline/seed_0/train/eval_curve.json is malformed JSON" in malformed.stderr
  assert not os.path.exists(tmp_path / "other")


def test_a_recollected_dataset_is_archived_on_request_and_reported(tmp_path):
  first, second, archive = (str(tmp_path / name) for name in ("first", "second", "archive"))
  make_study(first, {"baseline": {0: [0.5, 0.6], 1: [0.9, 0.7]}})
  make_study(second, {"visionary": {0: [0.7, 0.8], 1: [0.6, 0.9]}})
  record = json.load(open(os.path.join(second, "study.json")))
  record["dataset"].update(transitions=692)
  json.dump(record, open(os.path.join(second, "study.json"), "w"))
  study_archive.archive_study(first, archive, log=_quiet)
  with pytest.raises(ValueError, match="accept it explicitly"):
    study_archive.archive_study(second, archive, log=_quiet)
  outcome = study_archive.archive_study(second, archive, log=_quiet, accept_other_dataset=True)
  assert outcome["archived"] == ["visionary seed 0", "visionary seed 1"]
  assert json.load(open(os.path.join(archive, "visionary", "seed_1", "source.json")))["dataset"]["transitions"] == 692
  runs, _ = report.read_runs(archive, 2000)
  assert report.runs_on_other_datasets(archive, runs, {"episodes": 100, "transitions": 700}) == {
      (100, 692): ["visionary seed 0", "visionary seed 1"]}
  paths = report.write_report(archive, str(tmp_path / "out"), {}, log=_quiet)
  text = open(paths["report.md"]).read()
  assert "- dataset: 100 episodes, 700 transitions (its directory: `dataset.dir` in study.json)" in text
  assert "- re-collected with the same command, 100 episodes, 692 transitions: visionary seed 0, visionary seed 1" in text

"""A study's lasting record (experiments/archive.py): the small files of its finished runs, out of the study root.

A study root holds checkpoints, exports and datasets' worth of logs on one machine's
disk; the archive keeps, for every finished run, what the report reads and a reader
wants to see, laid out as a study root so that `experiments.report --workdir=ARCHIVE`
reads it unchanged:

  ARCHIVE/study.json                         the study's config and dataset size
  ARCHIVE/<variant>/seed_<k>/<stage>/<file>  the files of RUN_FILES that the run has
  ARCHIVE/<variant>/seed_<k>/source.json     where and when the run was archived from

Runs from several roots (other machines, other sessions) go into one archive when
their study.json describe the same study (visionary_jax.study.runner's resume rule) and
the same dataset size; a root whose dataset was re-collected with the same command
but came out a little different (PyBullet's contacts are not bitwise reproducible
across machines) is archived only on request, each such run's source.json recording
the dataset it was trained on, which the report lists. A run is archived once it is
complete (its evaluation curve reaches `study.retrain_steps`); archiving it again is
a no-op, and a run whose files differ from the archived ones is refused rather than
overwritten.
"""

import datetime
import filecmp
import os
import shutil
from typing import Any, Callable

import ml_collections

from visionary_jax import atomic
from visionary_jax.study import report
from visionary_jax.study import runner

RUN_FILES = (
    "derived/genotype.json", "derived/derive.json", "derived/architecture.png", "derived/flops.md",
    "search/timing.json", "search/architecture_weights.png", "search/budget.json", "search/history.json",
    "search/result.json", "train/timing.json", "train/eval_curve.json", "train/eval_curve.png",
)
SOURCE_JSON = report.ARCHIVE_SOURCE_JSON


def check_same_study(archive_record: dict[str, Any], root_record: dict[str, Any], archive_path: str,
                     root_path: str, defaults: ml_collections.ConfigDict | None = None,
                     accept_other_dataset: bool = False) -> None:
  """Raises ValueError naming both study.json files when they describe different studies or datasets.

  With `accept_other_dataset`, datasets of different sizes are accepted (the config,
  and so the collection command, must still agree).
  """
  if (archive_record.get("task"), archive_record.get("preset")) != (root_record.get("task"), root_record.get("preset")):
    raise ValueError(f"{root_path} is a {root_record.get('task')}/{root_record.get('preset')} study; {archive_path} "
                     f"archives {archive_record.get('task')}/{archive_record.get('preset')}")
  differ = runner.differing_study_fields(archive_record, root_record, defaults)
  if differ:
    raise ValueError(f"{root_path} and {archive_path} describe different studies (fields that differ: "
                     f"{differ[:6]}{' ...' if len(differ) > 6 else ''}); archive it elsewhere")
  sizes = [{k: record.get("dataset", {}).get(k) for k in ("episodes", "transitions")}
           for record in (archive_record, root_record)]
  if sizes[0] != sizes[1] and not accept_other_dataset:
    raise ValueError(f"{root_path} was trained on a dataset of {sizes[1]}, {archive_path} on one of {sizes[0]}; "
                     "archive it elsewhere, or, if the dataset was re-collected with the same command, accept it "
                     "explicitly (--accept_other_dataset)")


def archive_study(root: str, archive: str, defaults: ml_collections.ConfigDict | None = None,
                  log: Callable[[str], None] = print, accept_other_dataset: bool = False) -> dict[str, list[str]]:
  """Copies the complete runs of study root `root` into `archive` (layout in the module docstring).

  Args:
    root: a study root (experiments/study.py --workdir).
    archive: the archive directory; created with `root`'s study.json when it does not exist.
    defaults: the preset's unmodified config (see runner.differing_study_fields).
    accept_other_dataset: archive `root` even when its dataset's size differs from the archive's.
    log: where each run's outcome is announced.
  Returns:
    {"archived": [...], "unchanged": [...], "incomplete": [...]}, runs as "variant seed k".
  Raises:
    ValueError naming the file: an unreadable study or curve, another study in `archive`,
    or a run whose archived files differ from `root`'s (nothing of that run is written).
  """
  root_path = os.path.join(root, runner.STUDY_JSON)
  root_record = report.load_study(root)
  archive_path = os.path.join(archive, runner.STUDY_JSON)
  if os.path.exists(archive_path):
    check_same_study(runner.read_study_record(archive_path), root_record, archive_path, root_path, defaults,
                     accept_other_dataset)
  runs, incomplete = report.read_runs(root, int(root_record["config"]["study"]["retrain_steps"]))
  plan = []
  for variant, seeds in runs.items():
    for seed in sorted(seeds):
      source, target = runner.run_dir(root, variant, seed), runner.run_dir(archive, variant, seed)
      files = [f for f in RUN_FILES if os.path.isfile(os.path.join(source, f))]
      if os.path.isdir(target):
        archived = sorted(os.path.relpath(os.path.join(d, f), target) for d, _, names in os.walk(target)
                          for f in names if f != SOURCE_JSON)
        if archived != sorted(files) or not all(filecmp.cmp(os.path.join(source, f), os.path.join(target, f),
                                                            shallow=False) for f in files):
          raise ValueError(f"{target} already archives {variant} seed {seed} with other files than {source}; "
                           f"remove one of them")
        plan.append((f"{variant} seed {seed}", source, target, None))
      else:
        plan.append((f"{variant} seed {seed}", source, target, files))
  if not os.path.exists(archive_path):
    atomic.write_json(archive_path, root_record)
  outcome: dict[str, list[str]] = {"archived": [], "unchanged": [], "incomplete": incomplete}
  for name, source, target, files in plan:
    if files is None:
      outcome["unchanged"].append(name)
      log(f"{name}: already archived in {target}")
      continue
    staging = target + ".partial"
    if os.path.isdir(staging):
      shutil.rmtree(staging)
    for f in files:
      with open(os.path.join(source, f), "rb") as src:
        data = src.read()
      atomic.write(os.path.join(staging, f), lambda out, data=data: out.write(data))
    atomic.write_json(os.path.join(staging, SOURCE_JSON), {
        "root": os.path.abspath(root), "run": os.path.abspath(source), "dataset": root_record["dataset"],
        "archived_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
    os.replace(staging, target)
    outcome["archived"].append(name)
    log(f"{name}: archived {len(files)} files -> {target}")
  for name in incomplete:
    log(f"{name} (not archived)")
  return outcome


"""Copies the finished runs of a study root into a lasting archive that experiments.report reads.

  python -m experiments.archive --workdir=ROOT --archive=docs/results/grasping_study/archive
  python -m experiments.report --workdir=docs/results/grasping_study/archive --output=DIR

ROOT holds checkpoints and exports on one machine's disk; the archive keeps each
complete run's genotype, curves, timings and pictures (a few hundred KB), so runs
made on several machines or sessions report together. Layout and rules:
visionary_jax/study/archive.py.
"""

from absl import app
from absl import flags

from experiments import launcher
from experiments.configs import base
from visionary_jax.study import archive as study_archive
from visionary_jax.study import runner

_WORKDIR = flags.DEFINE_string("workdir", None, "Study root (experiments/study.py --workdir).")
_ARCHIVE = flags.DEFINE_string("archive", None, "Archive directory (created when missing).")
_ACCEPT_OTHER_DATASET = flags.DEFINE_bool(
    "accept_other_dataset", False, "Archive ROOT even if its dataset's size differs from the archive's (the same "
    "collection command re-run on another machine); each run records its dataset in source.json.")
flags.mark_flags_as_required(["workdir", "archive"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  launcher.check_writable("archive", _ARCHIVE.value)
  record = runner.read_study_record(f"{_WORKDIR.value}/{runner.STUDY_JSON}")
  if record.get("task") not in base.TASKS or record.get("preset") not in base.PRESETS:
    raise ValueError(f"{_WORKDIR.value}/{runner.STUDY_JSON} names an unknown task or preset "
                     f"({record.get('task')!r}, {record.get('preset')!r})")
  defaults = base.task_config(record["task"], record["preset"])
  outcome = study_archive.archive_study(_WORKDIR.value, _ARCHIVE.value, defaults,
                                        log=lambda line: print(line, flush=True),
                                        accept_other_dataset=_ACCEPT_OTHER_DATASET.value)
  print(f"archive {_ARCHIVE.value}: {len(outcome['archived'])} runs added, {len(outcome['unchanged'])} already "
        f"there, {len(outcome['incomplete'])} incomplete", flush=True)


def run():
  launcher.run(main)


if __name__ == "__main__":
  run()

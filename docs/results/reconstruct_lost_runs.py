"""Puts the study runs of sessions 5-8, whose study roots were lost with their machine, into the study archives.

  PYTHONPATH=. python docs/results/reconstruct_lost_runs.py --task=grasping \
      --root=/work/runs/study_grasping_cpu_s9 --archive=docs/results/study_grasping_cpu_runs

Session 9 started on a new machine without /work/runs: the roots
/work/runs/study_grasping_cpu_s5 and /work/runs/study_stacking_cpu were gone,
and with them every file of their finished runs. What survives is what the
sessions committed: each run's success rate at every evaluation (200 trials each,
printed to three decimals, so the success counts are exact) in
docs/results/study_grasping_cpu.md and study_stacking_cpu.md, and each run's
genotype (ops and kept edges, not the search weights) in
docs/results/study_grasping_cpu_s5/genotypes.md and study_stacking_cpu/genotypes.md.
This script writes those numbers into the archive (train/eval_curve.json with
Wilson intervals recomputed from the counts, derived/genotype.json without
weights) and marks each run's source.json as reconstructed. The archive's
study.json is --root's (a study root started with the lost study's command on
the re-collected dataset) with the lost dataset's size, from the committed
dataset summary; a re-collected dataset's runs then enter the archive with
`experiments.archive --accept_other_dataset`. Runs already in the archive are
left alone.
"""

import os
import re
import sys

from absl import app
from absl import flags

from visionary_jax import atomic
from visionary_jax import genotype as genotype_lib
from visionary_jax import pipeline
from visionary_jax import statistics
from visionary_jax import study_archive

_TASK = flags.DEFINE_enum("task", None, ["grasping", "stacking"], "Which study's lost runs.")
_ROOT = flags.DEFINE_string("root", None, "A study root made with the lost study's command.")
_ARCHIVE = flags.DEFINE_string("archive", None, "The study archive.")
flags.mark_flags_as_required(["task", "root", "archive"])

TRIALS = 200
STEPS = (200, 400, 600, 800)
# Success rates at steps 200, 400, 600, 800, copied from the tables of the study documents.
CURVES = {
    "grasping": {  # docs/results/study_grasping_cpu.md, "Baseline, seeds 0-4" and "Visionary, seeds 0-3"
        ("baseline", 0): (0.000, 0.000, 0.270, 0.165),
        ("baseline", 1): (0.000, 0.000, 0.000, 0.000),
        ("baseline", 2): (0.000, 0.180, 0.000, 0.000),
        ("baseline", 3): (0.000, 0.000, 0.015, 0.000),
        ("baseline", 4): (0.015, 0.050, 0.120, 0.025),
        ("visionary", 0): (0.000, 0.035, 0.095, 0.190),
        ("visionary", 1): (0.000, 0.000, 0.000, 0.005),
        ("visionary", 2): (0.030, 0.010, 0.020, 0.115),
        ("visionary", 3): (0.025, 0.005, 0.000, 0.000),
    },
    "stacking": {  # docs/results/study_stacking_cpu.md, "Baseline, seeds 0-2" and "Transfer, seed 0"
        ("baseline", 0): (0.0, 0.0, 0.0, 0.0),
        ("baseline", 1): (0.0, 0.0, 0.0, 0.0),
        ("baseline", 2): (0.0, 0.0, 0.0, 0.0),
        ("transfer", 0): (0.0, 0.0, 0.0, 0.0),
    },
}
GENOTYPES_MD = {"grasping": "docs/results/study_grasping_cpu_s5/genotypes.md",
                "stacking": "docs/results/study_stacking_cpu/genotypes.md"}
LOST_DATASETS = {  # the committed dataset summaries the lost studies were trained on
    "grasping": {"episodes": 20000, "transitions": 109647},  # grasping_cpu_v6_20k_dataset_summary.json
    "stacking": {"episodes": 10000, "transitions": 269333},  # stacking_cpu_10k_dataset_summary.json
}
LOST_ROOTS = {"grasping": "/work/runs/study_grasping_cpu_s5", "stacking": "/work/runs/study_stacking_cpu"}


def genotypes_from_markdown(path: str) -> dict[tuple[str, int], genotype_lib.Genotype]:
  """{(variant, seed): genotype} from a report's genotypes.md ("### VARIANT seed K" then the describe() block)."""
  text = open(path).read()
  found = {}
  for variant, seed, block in re.findall(r"### (\w+) seed (\d+)\n.*?```\n(.*?)```", text, flags=re.S):
    ops, attention = [], []
    for line in block.strip().splitlines():
      match = re.fullmatch(r"loc(\d): (\w+)\s+attention <- (.*)", line.strip())
      if not match or int(match.group(1)) != len(ops):
        raise ValueError(f"{path}: cannot read the line {line!r} of {variant} seed {seed}")
      ops.append(match.group(2))
      attention.append(() if match.group(3) == "-" else tuple(s.strip() for s in match.group(3).split(",")))
    found[(variant, int(seed))] = genotype_lib.Genotype(ops=tuple(ops), attention=tuple(attention))
  return found


def main(argv):
  del argv
  task, archive = _TASK.value, _ARCHIVE.value
  record = pipeline.read_study_record(os.path.join(_ROOT.value, pipeline.STUDY_JSON))
  if record.get("task") != task:
    raise app.UsageError(f"--root={_ROOT.value} is a {record.get('task')} study, not {task}")
  lost = dict(record["dataset"], **LOST_DATASETS[task])
  study_json = os.path.join(archive, pipeline.STUDY_JSON)
  if not os.path.exists(study_json):
    atomic.write_json(study_json, dict(record, dataset=lost))
  study_archive.check_same_study(pipeline.read_study_record(study_json), dict(record, dataset=lost), study_json,
                                 _ROOT.value)
  genotypes = genotypes_from_markdown(GENOTYPES_MD[task])
  for (variant, seed), rates in CURVES[task].items():
    target = pipeline.run_dir(archive, variant, seed)
    if os.path.isdir(target):
      print(f"{variant} seed {seed}: already in {target}")
      continue
    curve = []
    for step, rate in zip(STEPS, rates):
      successes = round(rate * TRIALS)
      low, high = statistics.wilson_interval(successes, TRIALS)
      curve.append({"step": step, "trials": TRIALS, "successes": successes, "success_rate": successes / TRIALS,
                    "wilson_low": low, "wilson_high": high})
    staging = target + ".partial"
    atomic.write_json(os.path.join(staging, "train", "eval_curve.json"), curve, sort_keys=True)
    genotype_lib.save_json(genotypes[(variant, seed)], os.path.join(staging, "derived", "genotype.json"))
    atomic.write_json(os.path.join(staging, study_archive.SOURCE_JSON), {
        "root": LOST_ROOTS[task], "run": pipeline.run_dir(LOST_ROOTS[task], variant, seed), "dataset": lost,
        "reconstructed_from": [f"docs/results/study_{task}_cpu.md", GENOTYPES_MD[task]],
        "note": "the root was lost with its machine; success counts and genotype (without search weights) "
                "rebuilt from the committed tables by docs/results/reconstruct_lost_runs.py"})
    os.replace(staging, target)
    print(f"{variant} seed {seed}: reconstructed -> {target} (final {curve[-1]['success_rate']:.3f})")


if __name__ == "__main__":
  sys.exit(app.run(main))

"""The paper's experiments on one task: every variant x seed searched, derived, retrained and evaluated.

  python -m experiments.study --config=experiments/configs/grasping.py:cpu --workdir=ROOT \\
      --config.train.dataset_dir=COLLECT_WORKDIR/episodes [--variants=baseline,visionary] [--seeds=0,1]

Variants and seeds default to config.study.variants and 0 .. config.study.seeds - 1;
on a cluster run one process per (variant, seed) with --variants=V --seeds=K, all
with the same ROOT. Transfer: --variants=baseline,transfer
--config.study.transfer_genotype=OTHER_ROOT/visionary/seed_0/derived/genotype.json
with the other task's config trains a genotype found elsewhere. Rerunning the same
command skips finished stages and resumes the others from their checkpoints. The
layout of ROOT is in visionary_jax/study/runner.py and WORKSPACE.md; tables and
figures: python -m experiments.report --workdir=ROOT --output=DIR.
"""

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from experiments import launcher
from experiments.configs import base
from visionary_jax.study import runner

_CONFIG = config_flags.DEFINE_config_file("config", None, "Task config file:preset.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Study root directory.")
_VARIANTS = flags.DEFINE_list("variants", None, f"Variants to run, among {','.join(runner.VARIANTS)} "
                              "(default config.study.variants).")
_SEEDS = flags.DEFINE_list("seeds", None, "Seeds to run, e.g. 0,1,2 (default 0 .. config.study.seeds - 1).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
  seeds = None
  if _SEEDS.value is not None:
    try:
      seeds = [int(s) for s in _SEEDS.value]
    except ValueError:
      raise app.UsageError(f"--seeds must be comma-separated integers, got {','.join(_SEEDS.value)!r}") from None
  launcher.check_writable("workdir", _WORKDIR.value)
  config = _CONFIG.value
  defaults = base.task_config(config.task, config.preset)
  runner.run_study(config, _WORKDIR.value, _VARIANTS.value, seeds, log=lambda line: print(line, flush=True),
                     defaults=defaults)


def run():
  launcher.run(main)


if __name__ == "__main__":
  run()

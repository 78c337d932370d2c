"""One-shot architecture search: the search network trained with the QT-Opt loss (Eq. 2).

  python -m experiments.search --config=experiments/configs/grasping.py:cpu --workdir=DIR \\
      --config.train.dataset_dir=COLLECT_WORKDIR/episodes --space=full

--space is `full` (merge ops and peer-attention edges, Fig. 4), `fusion` (merge
ops only, the supernet-only ablation) or `attention` (attention edges only, ops
as the baseline's). Trains for config.train.steps (the study uses
config.study.search_steps); rerunning resumes. Writes the trainer's outputs
(checkpoints, metrics.jsonl, export/ of the derived network) and
DIR/architecture_weights.png, the op and edge weights against training step.
Then: python -m experiments.derive --search=DIR --output=DERIVED.
"""

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from experiments import launcher
from visionary_jax.search import one_shot

_CONFIG = config_flags.DEFINE_config_file("config", None, "Task config file:preset.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Search run directory.")
_SPACE = flags.DEFINE_string("space", "full", "full | fusion | attention: what the search network searches.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
  launcher.check_writable("workdir", _WORKDIR.value)
  space = one_shot.search_space(_SPACE.value)
  launcher.print_run_start(_CONFIG.value, space)
  one_shot.search(_CONFIG.value, _WORKDIR.value, space, log=lambda line: print(line, flush=True))


def run():
  launcher.run(main)


if __name__ == "__main__":
  run()

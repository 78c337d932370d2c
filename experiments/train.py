"""Trains a Q-network with QT-Opt on an offline dataset.

  python -m experiments.train --config=experiments/configs/grasping.py:cpu --workdir=DIR \\
      --config.train.dataset_dir=COLLECT_WORKDIR/episodes --arch=baseline

--arch is `search` (the one-shot search network, Eq. 2), `baseline` (QT-Opt's
Grasping44) or the path of a genotype JSON (a derived network). Rerunning the
same command resumes from the newest checkpoint in DIR. The final network is
exported to DIR/export (a search run exports its derived network). On several
hosts, pass --coordinator_address, --num_processes and --process_id.
"""

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from experiments import launcher
from visionary_jax import training
from visionary_jax.qtopt import trainer

_CONFIG = config_flags.DEFINE_config_file("config", None, "Task config file:preset.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory: checkpoints, metrics, export.")
_ARCH = flags.DEFINE_string("arch", "baseline", "search | baseline | path to a genotype JSON.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-host only).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (multi-host only).",
                                         lower_bound=1)
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (multi-host only).",
                                      lower_bound=0)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
  if _COORDINATOR.value:
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  launcher.check_writable("workdir", _WORKDIR.value)
  launcher.print_run_start(_CONFIG.value, trainer.architecture_from_flag(_ARCH.value))
  training.run(_CONFIG.value, _WORKDIR.value, _ARCH.value, log=lambda line: print(line, flush=True))


def run():
  launcher.run(main)


if __name__ == "__main__":
  run()

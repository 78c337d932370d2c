"""Collects an offline dataset of scripted / random episodes.

  python -m experiments.collect --config=experiments/configs/grasping.py:cpu --workdir=DIR

Shards go to DIR/episodes (layout in data/README.md); rerunning the same
command resumes. On a cluster, run one job per array index with
`--worker_index=$I --num_workers=$N`, all with the same --workdir.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from experiments import launcher
from visionary_jax.episodes import collect

_CONFIG = config_flags.DEFINE_config_file("config", None, "Task config file:preset.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory; shards go to WORKDIR/episodes.")
_NUM_EPISODES = flags.DEFINE_integer("num_episodes", None,
                                     "Dataset size (default config.collect.num_episodes).",
                                     lower_bound=1)
_LOCAL_WORKERS = flags.DEFINE_integer(
    "local_workers", None, "Worker processes on this machine (default config.collect.local_workers).",
    lower_bound=1)
_WORKER_INDEX = flags.DEFINE_integer("worker_index", 0, "This job's index in a job array.", lower_bound=0)
_NUM_WORKERS = flags.DEFINE_integer("num_workers", 1, "Number of jobs in the job array.", lower_bound=1)
_PROGRESS_EVERY = flags.DEFINE_float("progress_every", 5.0, "Seconds between progress lines.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  launcher.check_writable("workdir", _WORKDIR.value)
  collect.collect(_CONFIG.value, _WORKDIR.value, _NUM_EPISODES.value, _LOCAL_WORKERS.value,
                  _WORKER_INDEX.value, _NUM_WORKERS.value, _PROGRESS_EVERY.value,
                  print_fn=lambda line: print(line, flush=True))


def run():
  launcher.run(main)


if __name__ == "__main__":
  run()

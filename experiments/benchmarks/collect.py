"""Collection scaling: episodes/s with 2 local worker processes against 1.

Grasping at the `cpu` preset (64x64 images) with the configured scripted /
random mixture, `BENCHMARK_COLLECT_EPISODES` (default 80) episodes per run in
shards of 5 so both processes get equal work. `scaling` compares steady rates
(first to last episode, excluding process start-up); `scaling_wall` compares
whole runs including start-up, shard writes and imports.
"""

import os
import tempfile

from experiments.configs import grasping as grasping_config
from visionary_jax.episodes import collect


def _run(workers: int, episodes: int) -> dict:
  config = grasping_config.get_config("cpu")
  config.collect.episodes_per_shard = 5
  with tempfile.TemporaryDirectory(prefix="bench-collect-") as workdir:
    result = collect.collect(config, workdir, num_episodes=episodes, local_workers=workers,
                             progress_every=1e9, print_fn=lambda line: None)
  return result


def run() -> dict:
  episodes = int(os.environ.get("BENCHMARK_COLLECT_EPISODES", 80))
  one = _run(1, episodes)
  two = _run(2, episodes)
  return {
      "episodes": episodes,
      "workers_1_episodes_per_s": one["steady_episodes_per_s"],
      "workers_2_episodes_per_s": two["steady_episodes_per_s"],
      "workers_1_wall_episodes_per_s": episodes / one["seconds"],
      "workers_2_wall_episodes_per_s": episodes / two["seconds"],
      "scaling": two["steady_episodes_per_s"] / one["steady_episodes_per_s"],
      "scaling_wall": one["seconds"] / two["seconds"],
      "success_fraction": (one["successes"] + two["successes"]) / (2 * episodes),
      "cpu_count": os.cpu_count(),
  }

"""Collection scaling: episodes/s with 2 local worker processes against 1.

Grasping at the `cpu` preset (64x64 images) with the configured scripted /
random mixture, `BENCHMARK_COLLECT_EPISODES` (default 80) episodes per run in
shards of 5 so both processes get equal work. `scaling` compares steady rates
(first to last episode, excluding process start-up); `scaling_wall` compares
whole runs including start-up, shard writes and imports.

`reset_share`: in one process under the same policy, the share of an episode's
time spent in `env.reset`, which rebuilds the physics world so that an episode
depends on its seed alone (visionary_jax/envs/scene.py); `BENCHMARK_RESET_EPISODES`
(default 100) episodes.
"""

import os
import tempfile
import time

import numpy as np

from experiments.configs import grasping as grasping_config
from visionary_jax import envs
from visionary_jax.envs import policies
from visionary_jax.envs import reference
from visionary_jax.episodes import collect


def _run(workers: int, episodes: int) -> dict:
  config = grasping_config.get_config("cpu")
  config.collect.episodes_per_shard = 5
  with tempfile.TemporaryDirectory(prefix="bench-collect-") as workdir:
    result = collect.collect(config, workdir, num_episodes=episodes, local_workers=workers,
                             progress_every=1e9, print_fn=lambda line: None)
  return result


def _reset_cost(episodes: int) -> dict:
  """Mean milliseconds of env.reset and of whole episodes (reset included), one process."""
  config = grasping_config.get_config("cpu")
  policy = policies.make("grasping", "scripted", config.collect.scripted_fraction,
                         **reference.collect_knobs(config.collect))
  env = envs.make("grasping", config.env)
  rng = np.random.default_rng(0)
  reset_s = episode_s = 0.0
  try:
    for seed in range(episodes):
      start = time.perf_counter()
      obs, _ = env.reset(seed=seed)
      reset_s += time.perf_counter() - start
      policy.reset(env, rng)
      done = False
      while not done:
        obs, _, terminated, truncated, _ = env.step(policy(obs))
        done = terminated or truncated
      episode_s += time.perf_counter() - start
  finally:
    env.close()
  return {"reset_ms": 1e3 * reset_s / episodes, "episode_ms": 1e3 * episode_s / episodes,
          "reset_share": reset_s / episode_s}


def run() -> dict:
  episodes = int(os.environ.get("BENCHMARK_COLLECT_EPISODES", 80))
  one = _run(1, episodes)
  two = _run(2, episodes)
  reset = _reset_cost(int(os.environ.get("BENCHMARK_RESET_EPISODES", 100)))
  return {
      **reset,
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

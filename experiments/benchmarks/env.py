"""Simulation speed: our Grasping against pybullet_envs' KukaDiverseObjectEnv, side by side.

Both at 64x64 images with 5 objects from the train split under a uniform
random policy, alternating blocks of `BENCHMARK_ENV_SECONDS` (default 20) per
env over `BENCHMARK_ENV_ROUNDS` (default 2) rounds in one process, so machine
load hits both alike. The peer needs the old `gym` package; a minimal stand-in
is put in sys.modules here only (the project itself uses gymnasium).

Episode lengths differ by design: the peer's "height hack" descends every
step and grasps after ~7 steps; our random policy sends "close" (which ends a
grasping episode) on half its steps. Both ratios are reported with the mean
episode lengths so the figures can be read correctly.
"""

import os
import random
import sys
import time
import types

import gymnasium
import numpy as np

from experiments.configs import grasping as grasping_config
from visionary_jax import envs
from visionary_jax.envs import policies

IMAGE_SIZE = 64


def _install_gym_shim():
  """A fake `gym` module with what pybullet_envs imports (old registry, spaces, seeding)."""
  if "gym" in sys.modules and getattr(sys.modules["gym"], "_visionary_shim", False):
    return
  gym = types.ModuleType("gym")
  gym._visionary_shim = True  # pylint: disable=protected-access
  gym.__version__ = "0.21.0"
  gym.Env = gymnasium.Env
  gym.spaces = gymnasium.spaces
  utils = types.ModuleType("gym.utils")
  seeding = types.ModuleType("gym.utils.seeding")
  seeding.np_random = gymnasium.utils.seeding.np_random
  utils.seeding = seeding
  gym.utils = utils
  registration = types.ModuleType("gym.envs.registration")
  registration.registry = types.SimpleNamespace(env_specs={})
  registration.register = lambda *args, **kwargs: None
  registration.make = lambda *args, **kwargs: None
  registration.spec = lambda *args, **kwargs: None
  gym_envs = types.ModuleType("gym.envs")
  gym_envs.registration = registration
  gym.envs = gym_envs
  for name, module in (("gym", gym), ("gym.spaces", gymnasium.spaces), ("gym.utils", utils),
                       ("gym.utils.seeding", seeding), ("gym.envs", gym_envs),
                       ("gym.envs.registration", registration)):
    sys.modules[name] = module


def make_peer():
  _install_gym_shim()
  from pybullet_envs.bullet import kuka_diverse_object_gym_env  # pylint: disable=g-import-not-at-top
  return kuka_diverse_object_gym_env.KukaDiverseObjectEnv(
      renders=False, isDiscrete=False, width=IMAGE_SIZE, height=IMAGE_SIZE, numObjects=5,
      isTest=False)


def _run_peer(env, seconds, rng):
  steps = episodes = successes = 0
  start = time.perf_counter()
  while time.perf_counter() - start < seconds:
    env.reset()
    done = False
    while not done:
      _, reward, done, _ = env.step(rng.uniform(-1, 1, env.action_space.shape))
      steps += 1
    episodes += 1
    successes += int(reward > 0)
  return steps, episodes, successes, time.perf_counter() - start


def _run_ours(env, seconds, rng, seed0):
  policy = policies.Random()
  steps = episodes = successes = 0
  start = time.perf_counter()
  while time.perf_counter() - start < seconds:
    obs, _ = env.reset(seed=seed0 + episodes)
    policy.reset(env, rng)
    done = False
    while not done:
      obs, _, terminated, truncated, info = env.step(policy(obs))
      done = terminated or truncated
      steps += 1
    episodes += 1
    successes += int(info["success"])
  return steps, episodes, successes, time.perf_counter() - start


def run() -> dict:
  seconds = float(os.environ.get("BENCHMARK_ENV_SECONDS", 20))
  rounds = int(os.environ.get("BENCHMARK_ENV_ROUNDS", 2))
  # The peer drives PyBullet's default client (id 0), so it must connect first; ours
  # talks to its own server by id.
  random.seed(0)
  np.random.seed(0)
  peer = make_peer()
  config = grasping_config.get_config("cpu")
  ours = envs.make("grasping", config.env, image_size=IMAGE_SIZE)
  rng = np.random.default_rng(0)
  totals = {"ours": np.zeros(4), "peer": np.zeros(4)}
  for r in range(rounds):
    totals["peer"] += _run_peer(peer, seconds, rng)
    totals["ours"] += _run_ours(ours, seconds, rng, seed0=10_000 * r)
  ours.close()
  result = {"image_size": IMAGE_SIZE, "seconds_per_env": seconds * rounds,
            "solver_iterations_ours": int(config.env.solver_iterations),
            "solver_iterations_peer": 150}
  for name, (steps, episodes, successes, elapsed) in totals.items():
    result[f"{name}_steps_per_s"] = steps / elapsed
    result[f"{name}_episodes_per_s"] = episodes / elapsed
    result[f"{name}_mean_episode_length"] = steps / max(episodes, 1)
    result[f"{name}_random_success"] = successes / max(episodes, 1)
    result[f"{name}_episodes"] = int(episodes)
  result["steps_per_s_ratio"] = result["ours_steps_per_s"] / result["peer_steps_per_s"]
  result["episodes_per_s_ratio"] = result["ours_episodes_per_s"] / result["peer_episodes_per_s"]
  return result

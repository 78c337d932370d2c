"""Synthetic replay batches and a perturbed train state for update tests (also run as subprocess helpers)."""

import os
import subprocess
import sys

import jax

from conftest import compilation_cache_dir
from conftest import perturbed
from experiments.configs import grasping
from visionary_jax.nets import qnetwork
from visionary_jax.qtopt import optimizer as optimizer_lib
from visionary_jax.qtopt import train_state
from visionary_jax.qtopt import update


def config(preset: str = "smoke"):
  return grasping.get_config(preset)


batch = update.random_batch


def initial_state(network: qnetwork.QNetwork, cfg, seed: int = 0) -> train_state.TrainState:
  """A fresh state whose online and target weights are perturbed, so Q varies across inputs."""
  optimizer = optimizer_lib.make(cfg.train)
  state = train_state.create(network, optimizer, jax.random.PRNGKey(seed))
  return state.replace(params=perturbed(state.params, seed=1), target=dict(state.target, params=perturbed(
      state.target["params"], seed=2)), lagged=dict(state.lagged, params=perturbed(state.lagged["params"], seed=3)))


def one_update(network: qnetwork.QNetwork, cfg, num_devices: int, global_batch: int, seed: int = 0):
  """(params after one pmapped update on `num_devices` devices, metrics of device 0) for a fixed batch."""
  devices = jax.local_devices()[:num_devices]
  step = update.make_pmapped_step(network, optimizer_lib.make(cfg.train), update.UpdateConfig.from_config(cfg),
                                  devices)
  state = update.replicate(initial_state(network, cfg), devices)
  state, metrics = step(state, batch(network.spec.image_size, global_batch, num_devices, seed))
  return update.unreplicate(state), update.unreplicate(metrics)


def subprocess_env(tmp_path_factory) -> dict[str, str]:
  """Environment for test subprocesses: CPU, this checkout, one persistent compilation cache per session."""
  here = os.path.dirname(os.path.abspath(__file__))
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join([os.path.dirname(here), here]),
             JAX_COMPILATION_CACHE_DIR=compilation_cache_dir(tmp_path_factory),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  env.pop("XLA_FLAGS", None)
  return env


def run_module(env: dict[str, str], *args: str, check: bool = True):
  """`python -m ARGS` from the checkout's root in `env`; with `check`, a non-zero exit fails with its output."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  result = subprocess.run([sys.executable, "-m", *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
  if check and result.returncode:
    raise AssertionError(f"{args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
  return result


PYTHON = sys.executable

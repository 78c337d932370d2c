"""Shared fixtures: the smoke preset and random inputs for it."""

import collections
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import numpy as np
import pytest

import episode_fixtures
from experiments.configs import base
from visionary_jax import action_space
from visionary_jax import genotype as G
from visionary_jax.nets import qnetwork


def compilation_cache_dir(tmp_path_factory) -> str:
  """The session's persistent XLA cache: one per run, shared by pytest-xdist workers (each has its own basetemp)."""
  base = tmp_path_factory.getbasetemp()
  return str((base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "jax_cache")


def pytest_collection_modifyitems(items):
  """Modules run in decreasing number of `slow` tests, so that `make test`'s workers (pytest-xdist, a module
  per worker, in this order) do not start the longest modules last."""
  slow = collections.Counter(item.module.__name__ for item in items if item.get_closest_marker("slow"))
  items.sort(key=lambda item: -slow[item.module.__name__])


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
  """One persistent XLA cache for the session, shared with test subprocesses (update_fixtures.subprocess_env).

  Tests build the same smoke networks in fresh `jax.jit` wrappers and fresh processes; the cache
  compiles each program once.
  """
  cache_dir = compilation_cache_dir(tmp_path_factory)
  jax.config.update("jax_compilation_cache_dir", cache_dir)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  yield cache_dir


@pytest.fixture
def dataset_dir(tmp_path):
  """(directory, episodes, shard paths) of a small synthetic dataset (episode_fixtures.write_dataset)."""
  episodes, paths = episode_fixtures.write_dataset(tmp_path)
  return tmp_path, episodes, paths


@pytest.fixture(scope="session")
def smoke_spec() -> qnetwork.NetworkSpec:
  return qnetwork.NetworkSpec.from_config(base.network("smoke"))


def random_inputs(spec: qnetwork.NetworkSpec, batch: int, seed: int = 0):
  """(image uint8 [B, S, S, 3], state_action float32 [B, 9]) drawn from a seeded generator."""
  rng = np.random.default_rng(seed)
  image = rng.integers(0, 256, (batch, spec.image_size, spec.image_size, 3), dtype=np.uint8)
  state_action = rng.normal(size=(batch, action_space.STATE_ACTION_DIM)).astype(np.float32)
  return image, state_action


def perturbed(params, seed: int = 1, scale: float = 0.3):
  """Params plus Gaussian noise, so that identity-like initialisations cannot hide a bug."""
  leaves, treedef = jax.tree_util.tree_flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  return jax.tree_util.tree_unflatten(
      treedef, [x + scale * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys)])


def perturbed_baseline(network_config) -> tuple[qnetwork.QNetwork, dict]:
  """The baseline network of a config's `network` section and its perturbed initial params."""
  net = qnetwork.build(network_config, G.BASELINE)
  return net, perturbed(jax.jit(lambda: qnetwork.init_variables(net, jax.random.PRNGKey(0)))()["params"])

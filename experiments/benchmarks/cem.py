"""`--suite=cem`: policy latency per action and the trunk-tiling speed-up, at the `cpu` preset.

`cem_ms_per_action`: one jitted CEM action (config `cem`: 64 samples x 2
iterations) for one observation with the baseline; `..._derived` the same for
a derived network. `tiling_speedup`: scoring N = 64 actions of one state as
encode once + score N, against N full forward passes (the image tiled N times).
"""

import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmarks import _timing
from experiments.benchmarks import networks as networks_benchmark
from experiments.configs import grasping
from visionary_jax import action_space
from visionary_jax import genotype as G
from visionary_jax.nets import qnetwork
from visionary_jax.qtopt import cem

ROUNDS = 30


def _policy(config, arch):
  network = qnetwork.build(config.network, arch)
  variables = jax.jit(lambda: qnetwork.init_variables(network, jax.random.PRNGKey(0)))()
  cem_config = cem.CEMConfig.from_config(config.cem)
  s = config.network.image_size
  image = jnp.asarray(np.random.default_rng(0).integers(0, 256, (1, s, s, 3), dtype=np.uint8))
  state = jnp.array([[0.0, 0.2]], jnp.float32)
  act = jax.jit(lambda v, i, st, k: cem.argmax_q(network, v, i, st, jax.random.split(k, 1), cem_config)[0])
  key = jax.random.PRNGKey(1)
  return network, variables, image, (lambda: act(variables, image, state, key))


def run() -> dict:
  config = grasping.get_config("cpu")
  network, variables, image, base_policy = _policy(config, G.BASELINE)
  _, _, _, derived_policy = _policy(config, networks_benchmark.DERIVED)
  n = config.cem.num_samples
  sa = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (1, n, action_space.STATE_ACTION_DIM)), jnp.float32)
  tiled = jax.jit(lambda v, i, a: network.apply(v, network.apply(v, i, method=qnetwork.QNetwork.encode), a,
                                                method=qnetwork.QNetwork.score))
  full = jax.jit(lambda v, i, a: network.apply(v, jnp.repeat(i, n, axis=0), a[0]))
  np.testing.assert_allclose(tiled(variables, image, sa)[0], full(variables, image, sa), rtol=1e-4, atol=1e-5)
  seconds = _timing.time_interleaved({
      "base": base_policy, "derived": derived_policy,
      "tiled": lambda: tiled(variables, image, sa), "full": lambda: full(variables, image, sa)}, ROUNDS)
  return {
      "preset_timed": "cpu",
      "cem": f"{config.cem.num_samples} samples x {config.cem.iterations} iterations, {config.cem.num_elites} elites",
      "cem_ms_per_action": 1e3 * seconds["base"],
      "cem_ms_per_action_derived": 1e3 * seconds["derived"],
      "score_tiled_ms": 1e3 * seconds["tiled"],
      "score_full_ms": 1e3 * seconds["full"],
      "tiling_speedup": seconds["full"] / seconds["tiled"],
  }

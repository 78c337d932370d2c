"""`--suite=train`: the learner's gradient step and its Bellman-target computation, timed apart.

At the `cpu` preset (global batch `replay.batch_size`, one device) for the
baseline, the search network and a derived network, in one run:
  * gradient step: forward + backward + optimiser + target-network updates
    against given targets (update.gradient_step);
  * Bellman target: CEM argmax on Q_target1 at s' (encode once per state, all
    candidates of an iteration scored in one call), Q_target2 at the argmax,
    clipped double-Q target (update.bellman_targets), with the config's `cem`
    section (train.target "cem").
`search_over_base` and `derived_over_base` compare the gradient steps.
"""

import jax

from experiments.benchmarks import _timing
from experiments.benchmarks import networks as networks_benchmark
from experiments.configs import grasping
from visionary_jax import genotype as G
from visionary_jax.nets import qnetwork
from visionary_jax.qtopt import optimizer as optimizer_lib
from visionary_jax.qtopt import train_state
from visionary_jax.qtopt import update

ROUNDS = 10


def step_functions(config, arch, batch):
  """(gradient step, Bellman target) of one QT-Opt update of `arch` on a flat batch, as zero-argument calls."""
  network = qnetwork.build(config.network, arch)
  optimizer = optimizer_lib.make(config.train)
  ucfg = update.UpdateConfig.from_config(config)
  state = jax.jit(lambda key: train_state.create(network, optimizer, key))(jax.random.PRNGKey(0))
  b = batch["reward"].shape[0]
  keys = update.transition_keys(state.rng, state.step, b, None)
  target_fn = jax.jit(lambda s, x, k: update.bellman_targets(network, ucfg, s.target, s.lagged, x, k)[0])
  y = target_fn(state, batch, keys)
  grad_fn = jax.jit(lambda s, x, t: update.gradient_step(s, x, t, network=network, optimizer=optimizer,
                                                         config=ucfg)[0])
  return (lambda: grad_fn(state, batch, y)), (lambda: target_fn(state, batch, keys))


def run() -> dict:
  config = grasping.get_config("cpu")
  config.train.target = "cem"
  b = config.replay.batch_size
  batch = {k: v[0] for k, v in update.random_batch(config.network.image_size, b).items()}
  archs = {"base": G.BASELINE, "search": G.SearchSpace(), "derived": networks_benchmark.DERIVED}
  grads, targets = {}, {}
  for name, arch in archs.items():
    grads[f"{name}_grad"], targets[f"{name}_target"] = step_functions(config, arch, batch)
  # Two groups: the search target (seconds per call) between gradient steps would disturb their ratios.
  seconds = _timing.time_interleaved(grads, ROUNDS)
  seconds.update(_timing.time_interleaved(targets, ROUNDS // 2))
  tc = config.cem
  result = {
      "preset_timed": "cpu",
      "batch": b,
      "target_cem": f"{tc.num_samples} samples x {tc.iterations} iterations, {tc.num_elites} elites",
      "search_over_base": seconds["search_grad"] / seconds["base_grad"],
      "derived_over_base": seconds["derived_grad"] / seconds["base_grad"],
  }
  for name in archs:
    result[f"{name}_grad_step_ms"] = 1e3 * seconds[f"{name}_grad"]
    result[f"{name}_target_ms"] = 1e3 * seconds[f"{name}_target"]
    result[f"{name}_target_ms_per_transition"] = 1e3 * seconds[f"{name}_target"] / b
  result["target_ms_per_transition"] = {name: result[f"{name}_target_ms_per_transition"] for name in archs}
  return result

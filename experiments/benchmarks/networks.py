"""`--suite=networks`: forward+backward speed of baseline, search and derived networks, FLOPs, MFU.

At the `cpu` preset and batch 256, times one jitted gradient of a log loss
with respect to the weights (and, for the search network, the architecture
logits) for the three networks side by side. FLOPs ratios are XLA's counts at
the `paper` preset. MFU is the search step's achieved FLOP/s over a dense
float32 matmul's FLOP/s measured in the same run.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.benchmarks import _timing
from experiments.configs import base
from visionary_jax import action_space
from visionary_jax import genotype as G
from visionary_jax.nets import flops
from visionary_jax.nets import qnetwork

BATCH = 256
ROUNDS = 12

# A derived architecture to time: merge ops at three locations and four kept attention edges.
DERIVED = G.Genotype(ops=("noop", "concat", "noop", "hadamard", "noop"),
                     attention=((), ("action", "dilated2"), (), ("action", "loc1"), ()))


def _step(net: qnetwork.QNetwork, batch: int):
  """A jitted gradient of the mean log loss, its variables and inputs, and its FLOPs."""
  rng = np.random.default_rng(0)
  image = jnp.asarray(rng.integers(0, 256, (batch, net.spec.image_size, net.spec.image_size, 3), dtype=np.uint8))
  state_action = jnp.asarray(rng.normal(size=(batch, action_space.STATE_ACTION_DIM)), jnp.float32)
  target = jnp.asarray(rng.uniform(size=(batch,)), jnp.float32)
  variables = jax.jit(lambda: qnetwork.init_variables(net, jax.random.PRNGKey(0)))()

  def loss(variables):
    return jnp.mean(optax.sigmoid_binary_cross_entropy(net.apply(variables, image, state_action), target))

  compiled = jax.jit(jax.grad(loss)).lower(variables).compile()
  return (lambda: compiled(variables)), float(compiled.cost_analysis()["flops"])


def run() -> dict:
  cpu = qnetwork.NetworkSpec.from_config(base.network("cpu"))
  paper = qnetwork.NetworkSpec.from_config(base.network("paper"))
  archs = {"base": G.BASELINE, "search": G.SearchSpace(), "derived": DERIVED}
  steps, step_flops = {}, {}
  for name, arch in archs.items():
    steps[name], step_flops[name] = _step(qnetwork.QNetwork(cpu, arch), BATCH)
  matmul = _timing.matmul_flops_per_s()
  seconds = _timing.time_interleaved(steps, ROUNDS)
  paper_flops = {name: flops.forward_flops_per_sample(qnetwork.QNetwork(paper, arch)) for name, arch in archs.items()}
  cpu_flops = {name: flops.forward_flops_per_sample(qnetwork.QNetwork(cpu, arch)) for name, arch in archs.items()}
  result = {
      "preset_timed": "cpu",
      "batch": BATCH,
      "derived_genotype": DERIVED.to_json_dict()["locations"],
      "matmul_gflops_per_s": matmul / 1e9,
      "search_over_base": seconds["search"] / seconds["base"],
      "derived_over_base": seconds["derived"] / seconds["base"],
      "flops_search_over_base": paper_flops["search"] / paper_flops["base"],
      "flops_derived_over_base": paper_flops["derived"] / paper_flops["base"],
      "mfu": step_flops["search"] / seconds["search"] / matmul,
  }
  for name in archs:
    result[f"{name}_step_ms"] = 1e3 * seconds[name]
    result[f"{name}_step_gflops_per_s"] = step_flops[name] / seconds[name] / 1e9
    result[f"{name}_paper_gflops_per_sample"] = paper_flops[name] / 1e9
    result[f"{name}_cpu_mflops_per_sample"] = cpu_flops[name] / 1e6
  return result

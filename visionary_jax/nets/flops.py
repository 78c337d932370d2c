"""FLOPs per sample from XLA's cost analysis of the compiled forward pass."""

import functools
from typing import Mapping

import jax
import jax.numpy as jnp

from visionary_jax import action_space
from visionary_jax import genotype as genotype_lib
from visionary_jax.nets import qnetwork


def abstract_inputs(spec: qnetwork.NetworkSpec, batch: int) -> tuple[jax.ShapeDtypeStruct, jax.ShapeDtypeStruct]:
  """Shapes of (image uint8 [B, S, S, 3], state_action float32 [B, 9])."""
  return (jax.ShapeDtypeStruct((batch, spec.image_size, spec.image_size, 3), jnp.uint8),
          jax.ShapeDtypeStruct((batch, action_space.STATE_ACTION_DIM), jnp.float32))


def forward_flops_per_sample(network: qnetwork.QNetwork, batch: int = 1) -> float:
  """FLOPs of one forward pass Q(s, a) divided by the batch size.

  Nothing is allocated: variables and inputs are abstract, only compiled.
  """
  image, state_action = abstract_inputs(network.spec, batch)
  variables = jax.eval_shape(lambda: qnetwork.init_variables(network, jax.random.PRNGKey(0)))
  compiled = jax.jit(network.apply).lower(variables, image, state_action).compile()
  return float(compiled.cost_analysis()["flops"]) / batch


@functools.lru_cache(maxsize=None)
def cached_flops_per_sample(spec: qnetwork.NetworkSpec, arch: qnetwork.Architecture) -> float:
  """forward_flops_per_sample(QNetwork(spec, arch)), computed once per process."""
  return forward_flops_per_sample(qnetwork.QNetwork(spec, arch))


def flops_table(specs: Mapping[str, qnetwork.NetworkSpec], found: Mapping[str, genotype_lib.Genotype]) -> str:
  """Markdown: forward GFLOPs per sample of the full search network, each found genotype and the base.

  Args:
    specs: {preset name: trunk spec}, one block of rows each.
    found: {label: genotype}, one row per preset and label.
  """
  rows = ["| preset | genotype | search | found | base | search / base | found / base |",
          "|---|---|---|---|---|---|---|"]
  for preset, spec in specs.items():
    search_flops = cached_flops_per_sample(spec, genotype_lib.SearchSpace())
    base = cached_flops_per_sample(spec, genotype_lib.BASELINE)
    for label, genotype in found.items():
      value = cached_flops_per_sample(spec, genotype)
      rows.append(f"| {preset} | {label} | {search_flops / 1e9:.4f} G | {value / 1e9:.4f} G | {base / 1e9:.4f} G | "
                  f"{search_flops / base:.4f} | {value / base:.4f} |")
  return "\n".join(rows)

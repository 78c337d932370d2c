"""FLOPs per sample from XLA's cost analysis of the compiled forward pass."""

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


def flops_table(specs: dict[str, qnetwork.NetworkSpec], derived: qnetwork.Architecture) -> str:
  """Markdown table of forward GFLOPs per sample: search, derived and base networks per preset.

  Args:
    specs: {preset name: trunk spec}.
    derived: the found architecture (a Genotype).
  """
  rows = ["| preset | search | found | base | search / base | found / base |", "|---|---|---|---|---|---|"]
  for name, spec in specs.items():
    search, found, base = (forward_flops_per_sample(qnetwork.QNetwork(spec, arch))
                           for arch in (genotype_lib.SearchSpace(), derived, genotype_lib.BASELINE))
    rows.append(f"| {name} | {search / 1e9:.4f} G | {found / 1e9:.4f} G | {base / 1e9:.4f} G | "
                f"{search / base:.4f} | {found / base:.4f} |")
  return "\n".join(rows)

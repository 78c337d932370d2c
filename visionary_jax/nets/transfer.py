"""Searched weights -> a derived network's variables.

The derived network's parameters are a subset of the search network's, at the
same paths (a FusionModule with one op keeps that op's subtree name), except
that a kept peer-attention edge loses its gate: sigmoid(h_iv) is folded into
that edge's projection (kernel and bias) so the derived network computes the same
contribution from the edges it keeps.
"""

from typing import Any, Mapping

import flax
import jax
import jax.numpy as jnp

from visionary_jax import genotype as genotype_lib
from visionary_jax.nets import qnetwork


def transfer_weights(search_variables: Mapping[str, Any], space: genotype_lib.SearchSpace,
                     genotype: genotype_lib.Genotype, spec: qnetwork.NetworkSpec) -> dict[str, Any]:
  """Variables {"params": ...} of QNetwork(spec, genotype) taken from a search network's variables.

  Args:
    search_variables: {"params": ..., "arch": ...} of QNetwork(spec, space).
    space: the search space of that network.
    genotype: the derived architecture (for example `genotype_lib.derive(arch, space)`).
    spec: the trunk both networks share.
  Raises:
    ValueError: naming the parameter that the search weights lack or whose shape differs.
  """
  derived = qnetwork.QNetwork(spec, genotype)
  shapes = jax.eval_shape(lambda: qnetwork.init_variables(derived, jax.random.PRNGKey(0)))["params"]
  source = flax.traverse_util.flatten_dict(flax.core.unfreeze(search_variables["params"]))
  arch = search_variables.get("arch", {})
  out = {}
  for path, shape in flax.traverse_util.flatten_dict(flax.core.unfreeze(shapes)).items():
    name = "/".join(path)
    if path not in source:
      raise ValueError(f"search weights lack parameter {name}, which genotype {genotype.ops} needs")
    value = jnp.asarray(source[path])
    if value.shape != shape.shape:
      raise ValueError(f"parameter {name}: search weights have shape {value.shape}, derived network needs {shape.shape}")
    module, leaf = path[0], path[1]
    if space.attention and module.startswith("attention_") and leaf.startswith("proj_"):  # proj_<source>/{kernel,bias}
      location = int(module.split("_")[1])
      edge = genotype_lib.attention_candidates(location).index(leaf[len("proj_"):])
      value = value * jax.nn.sigmoid(jnp.asarray(arch[module]["edge_logits"])[edge])
    out[path] = value
  return {"params": flax.traverse_util.unflatten_dict(out)}

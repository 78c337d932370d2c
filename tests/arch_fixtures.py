"""Architecture logits for tests: a search network that computes a given genotype exactly."""

import numpy as np

from visionary_jax import genotype as G


def one_hot_arch(genotype: G.Genotype, space: G.SearchSpace = G.SearchSpace(), magnitude: float = 1e4) -> dict:
  """Architecture logits that make the search network compute exactly `genotype`.

  Op logits are +magnitude for the genotype's op and -magnitude elsewhere; edge
  logits +magnitude for kept edges and -magnitude for the others.
  """
  arch: dict[str, dict[str, np.ndarray]] = {}
  for i in range(G.NUM_LOCATIONS):
    if space.fusion:
      arch[f"fusion_{i}"] = {"op_logits": np.where(np.array(G.OPS) == genotype.ops[i], magnitude, -magnitude)
                                          .astype(np.float32)}
    elif genotype.ops[i] != space.fixed.ops[i]:
      raise ValueError(f"location {i}: op {genotype.ops[i]!r} is not searchable here (fixed {space.fixed.ops[i]!r})")
    if space.attention:
      names = G.attention_candidates(i)
      arch[f"attention_{i}"] = {"edge_logits": np.array([magnitude if n in genotype.attention[i] else -magnitude
                                                        for n in names], np.float32)}
    elif genotype.attention[i] != space.fixed.attention[i]:
      raise ValueError(f"location {i}: attention {genotype.attention[i]} is not searchable here")
  return arch

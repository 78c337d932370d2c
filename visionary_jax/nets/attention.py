"""Sigmoid-gated peer attention (paper Eq. 4, after AssembleNet++).

G_i(x_i) = x_i * 2 sigmoid( sum_v sigmoid(h_iv) * P_iv(GAP(v)) )

over sources v: the action embedding, the outputs of earlier locations, this
location's own fused map, and the dilated branches. GAP of a map is its
spatial mean; the action embedding is already a vector. P_iv is a dense
projection (with bias) to x_i's channels. The gates h_iv live in the `arch`
collection.

The factor 2 makes the module the identity when every gate is 0, so pruning
all of a location's edges (the paper's rule keeps edges with sigmoid(h) > 0.5)
is the same as removing the module. A derived network keeps its edges as
ungated projections: the transfer folds sigmoid(h_iv) into P_iv.
"""

from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from visionary_jax.nets import layers


class PeerAttention(nn.Module):
  """Channel-wise attention on x from pooled sources.

  Attributes:
    sources: names of the sources attended to, in canonical order.
    gated: whether each source is weighted by a learnable sigmoid gate (search).
  """

  sources: tuple[str, ...]
  gated: bool

  @nn.compact
  def __call__(self, x: jax.Array, pooled: Mapping[str, jax.Array]) -> jax.Array:
    """x [B, H, W, C]; pooled maps each source name to [B, D_v]. Returns [B, H, W, C]."""
    if self.gated:
      gates = jax.nn.sigmoid(
          self.variable("arch", "edge_logits", jnp.zeros, (len(self.sources),), jnp.float32).value)
    z = 0.0
    for k, name in enumerate(self.sources):
      projected = nn.Dense(x.shape[-1], kernel_init=layers.fan_in_init(),
                           name=f"proj_{name}")(pooled[name])
      z = z + (gates[k] * projected if self.gated else projected)
    return x * (2.0 * jax.nn.sigmoid(z))[:, None, None, :]

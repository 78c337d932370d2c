"""Building blocks shared by every network: initialisers and conv-norm-ReLU layers.

Normalisation is GroupNorm (convs) and LayerNorm (the action path), not
BatchNorm: their statistics are per sample, so a network computes the same
function under pmap on any number of devices, in training and in evaluation,
and when CEM tiles one state's embedding over N candidate actions. BatchNorm
would need synchronised statistics (`axis_name`) across devices, a separate
`batch_stats` state, and would make a candidate's Q depend on the others.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


def kernel_init(std: float) -> nn.initializers.Initializer:
  """Truncated normal (paper, QT-Opt) with standard deviation `std`."""
  return nn.initializers.truncated_normal(stddev=std)


class ConvNormReLU(nn.Module):
  """conv (no bias) -> GroupNorm -> ReLU. [B, H, W, C_in] -> [B, H', W', features]."""

  features: int
  kernel: int
  stride: int = 1
  dilation: int = 1
  padding: str = "SAME"
  groups: int = 8
  init_std: float = 0.01

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.Conv(self.features, (self.kernel, self.kernel), strides=(self.stride, self.stride),
                kernel_dilation=(self.dilation, self.dilation), padding=self.padding, use_bias=False,
                kernel_init=kernel_init(self.init_std), name="conv")(x)
    x = nn.GroupNorm(num_groups=self.groups, epsilon=1e-3, name="norm")(x)
    return nn.relu(x)


def max_pool(x: jax.Array, window: int) -> jax.Array:
  """VALID max-pool with stride = window. [B, H, W, C] -> [B, H // window, W // window, C]."""
  return nn.max_pool(x, (window, window), strides=(window, window), padding="VALID")


def global_average_pool(x: jax.Array) -> jax.Array:
  """GAP: [B, H, W, C] -> [B, C]."""
  return jnp.mean(x, axis=(1, 2))

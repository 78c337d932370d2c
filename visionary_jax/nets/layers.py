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
  """Truncated normal with a fixed standard deviation `std`."""
  return nn.initializers.truncated_normal(stddev=std)


def fan_in_init() -> nn.initializers.Initializer:
  """Truncated normal with std 1 / sqrt(fan_in): the paper's truncated-normal init, scaled per layer.

  A fixed std of 0.01 (QT-Opt's, for a network with BatchNorm after every
  layer) leaves the un-normalised dense head with a near-constant output and
  vanishing gradients, so every kernel but the action-generated filters' is
  scaled by its fan-in.
  """
  return nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")


class ConvNormReLU(nn.Module):
  """conv (no bias) -> GroupNorm -> ReLU. [B, H, W, C_in] -> [B, H', W', features]."""

  features: int
  kernel: int
  stride: int = 1
  dilation: int = 1
  padding: str = "SAME"
  groups: int = 8

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.Conv(self.features, (self.kernel, self.kernel), strides=(self.stride, self.stride),
                kernel_dilation=(self.dilation, self.dilation), padding=self.padding, use_bias=False,
                kernel_init=fan_in_init(), name="conv")(x)
    x = nn.GroupNorm(num_groups=self.groups, epsilon=1e-3, name="norm")(x)
    return nn.relu(x)


def max_pool(x: jax.Array, window: int) -> jax.Array:
  """VALID max-pool with stride = window. [B, H, W, C] -> [B, H // window, W // window, C].

  Non-overlapping windows are a reshape and a max, whose gradient is a cheap
  mask; XLA's general reduce_window gradient (select-and-scatter) is several
  times slower on CPU.
  """
  b, h, w, c = x.shape
  ho, wo = h // window, w // window
  x = x[:, :ho * window, :wo * window, :].reshape(b, ho, window, wo, window, c)
  return jnp.max(x, axis=(2, 4))


def space_to_depth(x: jax.Array, block: int) -> jax.Array:
  """[B, H, W, C] -> [B, H / block, W / block, block * block * C], channels ordered (dy, dx, c)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // block, block, w // block, block, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // block, w // block, block * block * c)


def strided_conv(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
  """SAME convolution of x [B, H, W, C] with kernel [k, k, C, D] at `stride`.

  Where k and H are multiples of the stride and k / stride is odd, this is
  computed exactly as a stride-1 (k / stride)-sized convolution of the
  space-to-depth input (the TPU trick for a network's first layer); XLA's CPU
  convolution with a 3-channel input and stride 2 is far slower.
  """
  k, s = kernel.shape[0], stride
  dn = ("NHWC", "HWIO", "NHWC")
  if s == 1 or k % s or (k // s) % 2 == 0 or x.shape[1] % s or x.shape[2] % s:
    return jax.lax.conv_general_dilated(x, kernel, (s, s), "SAME", dimension_numbers=dn)
  ks, c, d = k // s, kernel.shape[2], kernel.shape[3]
  folded = kernel.reshape(ks, s, ks, s, c, d).transpose(0, 2, 1, 3, 4, 5).reshape(ks, ks, s * s * c, d)
  return jax.lax.conv_general_dilated(space_to_depth(x, s), folded, (1, 1), "SAME", dimension_numbers=dn)


class Stem(nn.Module):
  """The first layer: strided conv (no bias) -> max-pool -> GroupNorm -> ReLU.

  [B, S, S, 3] -> [B, ceil(S / stride) // pool, ..., features]. Pooling before
  the norm normalises pool*pool times fewer values (max-pool commutes with
  ReLU; the norm's statistics are those of the pooled map).
  """

  features: int
  kernel: int
  stride: int
  pool: int
  groups: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", fan_in_init(), (self.kernel, self.kernel, x.shape[-1], self.features))
    x = max_pool(strided_conv(x, kernel, self.stride), self.pool)
    x = nn.GroupNorm(num_groups=self.groups, epsilon=1e-3, name="norm")(x)
    return nn.relu(x)


def global_average_pool(x: jax.Array) -> jax.Array:
  """GAP: [B, H, W, C] -> [B, C]."""
  return jnp.mean(x, axis=(1, 2))


def append_coordinates(x: jax.Array) -> jax.Array:
  """CoordConv (Liu et al. 2018): [B, H, W, C] -> [B, H, W, C + 2], the last two x (column) and y (row) in [-1, 1]."""
  b, h, w, _ = x.shape
  ys, xs = jnp.meshgrid(jnp.linspace(-1.0, 1.0, h), jnp.linspace(-1.0, 1.0, w), indexing="ij")
  coords = jnp.broadcast_to(jnp.stack([xs, ys], axis=-1).astype(x.dtype), (b, h, w, 2))
  return jnp.concatenate([x, coords], axis=-1)

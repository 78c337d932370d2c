"""Action-merging ops f_j(x, a) (paper IV-B a) and the supernet fusion module (Eq. 3).

Every op maps a feature map x [B, H, W, C] and an action embedding a [B, A]
to a feature map of x's shape [B, H, W, C]:

  noop         x
  add          x + T(W a)                    T broadcasts over H, W
  concat       conv1x1(x || T(a))            back to C channels
  hadamard     x * T(g(a))                   g(a) [B, H, W], broadcast over C
  conv_filter  x (*) c(a)                    c(a) [B, k, k, C]: per-sample depthwise filters

The supernet module F_i(x, a) = sum_j softmax(w_i)_j f_j(x, a) keeps its logits
w_i in the `arch` variable collection, apart from the weights in `params`.
"""

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from visionary_jax.nets import layers


def broadcast_to_map(v: jax.Array) -> jax.Array:
  """T(.): [B, D] -> [B, 1, 1, D], which broadcasts against a [B, H, W, D] map."""
  return v[:, None, None, :]


class AddMerge(nn.Module):
  """x + T(W a): the QT-Opt merge (Grasping44 projects the action to C and adds it)."""

  @nn.compact
  def __call__(self, x: jax.Array, a: jax.Array) -> jax.Array:
    t = nn.Dense(x.shape[-1], kernel_init=layers.fan_in_init(), name="project")(a)
    return x + broadcast_to_map(t)


class ConcatMerge(nn.Module):
  """conv1x1(x || T(a)) back to C channels.

  T(a) is constant over space, so the 1x1 conv over the concatenation splits
  exactly into conv1x1(x) + T(W_a a): the broadcast action is never materialised.
  Params: `conv` (1x1, C -> C, with bias) and `action` (A -> C, no bias), which
  together are the [C + A, C] kernel of the concatenation's 1x1 conv.
  """

  @nn.compact
  def __call__(self, x: jax.Array, a: jax.Array) -> jax.Array:
    c = x.shape[-1]
    y = nn.Conv(c, (1, 1), kernel_init=layers.fan_in_init(), name="conv")(x)
    t = nn.Dense(c, use_bias=False, kernel_init=layers.fan_in_init(), name="action")(a)
    return y + broadcast_to_map(t)


class HadamardMerge(nn.Module):
  """x * T(g(a)) with g a dense layer to x's spatial shape [H, W].

  g's bias starts at 1 and its kernel is small (`init_std`), so that the op
  starts near the identity on x.
  """

  init_std: float

  @nn.compact
  def __call__(self, x: jax.Array, a: jax.Array) -> jax.Array:
    b, h, w, _ = x.shape
    g = nn.Dense(h * w, kernel_init=layers.kernel_init(self.init_std), bias_init=nn.initializers.ones,
                 name="spatial")(a)
    return x * g.reshape(b, h, w, 1)


def identity_filters_init(kernel: int, channels: int) -> Callable:
  """Bias init for ConvFilterMerge: a centred delta per channel, so c(a) starts near the identity."""

  def init(key, shape, dtype=jnp.float32):
    del key
    assert shape == (kernel * kernel * channels,), shape
    delta = jnp.zeros((kernel, kernel, channels), dtype).at[kernel // 2, kernel // 2, :].set(1.0)
    return delta.reshape(shape)

  return init


def depthwise_conv_per_sample(x: jax.Array, filters: jax.Array) -> jax.Array:
  """SAME depthwise convolution with a different filter bank per sample.

  Args:
    x: [B, H, W, C].
    filters: [B, k, k, C], k odd.
  Returns:
    [B, H, W, C] with out[b, i, j, c] = sum_{dy, dx} xpad[b, i + dy, j + dx, c] * filters[b, dy, dx, c].
  """
  _, h, w, _ = x.shape
  k = filters.shape[1]
  if k % 2 != 1 or filters.shape[2] != k:
    raise ValueError(f"filters must be [B, k, k, C] with odd k, got {filters.shape}")
  r = k // 2
  xpad = jnp.pad(x, ((0, 0), (r, r), (r, r), (0, 0)))
  out = jnp.zeros_like(x)
  for dy in range(k):
    for dx in range(k):
      out = out + xpad[:, dy:dy + h, dx:dx + w, :] * filters[:, dy, dx, None, None, :]
  return out


class ConvFilterMerge(nn.Module):
  """x (*) c(a): the action generates a per-sample k x k depthwise filter bank.

  c is a dense layer A -> k*k*C reshaped to [B, k, k, C]; its bias starts at the
  identity (delta) filters and its kernel is small (`init_std`). Batched over
  samples without a loop over the batch.
  """

  kernel: int
  init_std: float

  @nn.compact
  def __call__(self, x: jax.Array, a: jax.Array) -> jax.Array:
    c = x.shape[-1]
    flat = nn.Dense(self.kernel * self.kernel * c, kernel_init=layers.kernel_init(self.init_std),
                    bias_init=identity_filters_init(self.kernel, c), name="filters")(a)
    return depthwise_conv_per_sample(x, flat.reshape(-1, self.kernel, self.kernel, c))


def make_op(name: str, generator_init_std: float, conv_filter_kernel: int) -> nn.Module | None:
  """The merge op called `name` (as a submodule named `name`); None for noop."""
  if name == "noop":
    return None
  if name == "add":
    return AddMerge(name=name)
  if name == "concat":
    return ConcatMerge(name=name)
  if name == "hadamard":
    return HadamardMerge(generator_init_std, name=name)
  if name == "conv_filter":
    return ConvFilterMerge(conv_filter_kernel, generator_init_std, name=name)
  raise ValueError(f"unknown merge op {name!r}")


class FusionModule(nn.Module):
  """F_i(x, a) = sum_j softmax(w_i)_j f_j(x, a) over `ops` (Eq. 3); one op: just that op.

  With one op there are no architecture logits, and the op's parameters sit at
  the same path (`<this module>/<op name>/...`) as in the supernet, so searched
  weights transfer to the derived network by path.

  Attributes:
    ops: names from genotype.OPS.
    generator_init_std: truncated-normal std of the kernels that generate the
      Hadamard map and the conv filters from the action.
    conv_filter_kernel: k of the conv_filter op.
  """

  ops: tuple[str, ...]
  generator_init_std: float
  conv_filter_kernel: int

  @nn.compact
  def __call__(self, x: jax.Array, a: jax.Array) -> jax.Array:
    """x [B, H, W, C], a [B, A] -> [B, H, W, C]."""
    outputs = []
    for name in self.ops:
      op = make_op(name, self.generator_init_std, self.conv_filter_kernel)
      outputs.append(x if op is None else op(x, a))
    if len(outputs) == 1:
      return outputs[0]
    logits = self.variable("arch", "op_logits", jnp.zeros, (len(self.ops),), jnp.float32).value
    weights = jax.nn.softmax(logits)
    return sum(w * y for w, y in zip(weights, outputs))

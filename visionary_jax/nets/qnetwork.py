"""The Q-network: a Grasping44 trunk with 5 merge locations, built from a Genotype or a SearchSpace.

One module builds every network of the paper:
  * QNetwork(spec, genotype.BASELINE): QT-Opt's Grasping44, action added after
    the second pooling (Fig. 5c);
  * QNetwork(spec, some_genotype): a derived (pruned) architecture (Fig. 5a, b);
  * QNetwork(spec, genotype.SearchSpace()): the one-shot search network (Fig. 4)
    with a supernet fusion module (Eq. 3) and sigmoid-gated peer attention
    (Eq. 4) at each location, plus the dilated branches.

The trunk, from image to logit, with the merge locations L0..L4:

  image uint8 [B, S, S, 3] -> /255
  stage 0: conv1 (stride 2), max-pool (Stem), first half of block 2  -> L0
  stage 1: second half of block 2, max-pool                          -> L1   (dilated branches read this)
  stage 2: first half of block 3                                     -> L2
  stage 3: second half of block 3, max-pool                          -> L3
  stage 4: block 4                                                   -> L4
  head:    flatten, dense-ReLU x2, dense-1 -> logit; Q = sigmoid(logit)

At location i: x <- F_i(x, a) (fusion), then x <- G_i(x) (peer attention).
The action a is the embedding of the state-action vector [B, 9]
(visionary_jax.action_space): dense -> LayerNorm -> ReLU, [B, action_width].

CEM scores many actions per state, so the network splits at the first
location that depends on the action: `encode(image)` runs everything before
it once per state, `score(embedding, state_action[B, N, 9])` runs the rest for
N actions per state, and `__call__(image, state_action[B, 9])` is both.
"""

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from visionary_jax import action_space
from visionary_jax import config_fields
from visionary_jax import genotype as genotype_lib
from visionary_jax.nets import attention as attention_lib
from visionary_jax.nets import fusion as fusion_lib
from visionary_jax.nets import layers

Architecture = genotype_lib.Genotype | genotype_lib.SearchSpace
Embedding = dict[str, Any]  # {"features": [B, H, W, C], "pooled": {source: [B, D]}}


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
  """The trunk's hyper-parameters (see experiments/configs/base.py for each field)."""

  image_size: int
  channels: int
  conv1_kernel: int
  conv1_stride: int
  pool1: int
  block2_depth: int
  block2_kernel: int
  pool2: int
  block3_depth: int
  block3_kernel: int
  pool3: int
  block4_depth: int
  block4_kernel: int
  block4_padding: str
  head_widths: tuple[int, ...]
  action_width: int
  norm_groups: int
  generator_init_std: float
  conv_filter_kernel: int
  height_scale: float = 1.0  # the height (metres) is multiplied by this before the action embedding
  initial_q: float = 0.5  # Q of the untrained network: the output bias starts at logit(initial_q)
  coord_channels: bool = False  # append x and y coordinate channels in [-1, 1] to the image (CoordConv)

  def __post_init__(self):
    for f in dataclasses.fields(self):
      v = getattr(self, f.name)
      if f.type is int and (not isinstance(v, int) or v < 1):
        raise ValueError(f"network config field {f.name!r} must be a positive integer, got {v!r}")
    if self.block4_padding not in ("SAME", "VALID"):
      raise ValueError(f"network config field 'block4_padding' must be SAME or VALID, got {self.block4_padding!r}")
    if self.block2_depth < 2 or self.block3_depth < 2:
      raise ValueError("network config fields 'block2_depth' and 'block3_depth' must be >= 2: "
                       "locations L0 and L2 sit in the middle of blocks 2 and 3")
    if self.channels % self.norm_groups:
      raise ValueError(f"network config field 'norm_groups' ({self.norm_groups}) must divide "
                       f"'channels' ({self.channels})")
    if self.conv_filter_kernel % 2 != 1:
      raise ValueError(f"network config field 'conv_filter_kernel' must be odd, got {self.conv_filter_kernel}")
    if not isinstance(self.coord_channels, bool):
      raise ValueError(f"network config field 'coord_channels' must be True or False, got {self.coord_channels!r}")
    if not self.height_scale > 0:
      raise ValueError(f"network config field 'height_scale' must be > 0, got {self.height_scale!r}")
    if not 0 < self.initial_q < 1:
      raise ValueError(f"network config field 'initial_q' must be in (0, 1), got {self.initial_q!r}")
    if not self.generator_init_std > 0:
      raise ValueError(f"network config field 'generator_init_std' must be > 0, got {self.generator_init_std}")
    sizes = self.spatial_sizes()
    if min(sizes) < 1:
      raise ValueError(f"network config: image_size {self.image_size} is too small for this trunk; "
                       f"spatial sizes at L0..L4 would be {sizes}")

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> "NetworkSpec":
    spec = config_fields.dataclass_from_config(cls, config, "network")
    return dataclasses.replace(spec, head_widths=tuple(spec.head_widths))

  def spatial_sizes(self) -> tuple[int, ...]:
    """Spatial size of the feature map at L0..L4."""
    s = -(-self.image_size // self.conv1_stride)  # SAME conv
    l0 = s // self.pool1
    l1 = l0 // self.pool2
    l3 = l1 // self.pool3
    l4 = l3 - self.block4_depth * (self.block4_kernel - 1) if self.block4_padding == "VALID" else l3
    return (l0, l1, l1, l3, l4)


class ActionEncoder(nn.Module):
  """state_action [B, 9] -> a [B, width]: dense -> LayerNorm -> ReLU.

  One dense layer over the concatenated blocks equals Grasping44's one dense
  layer per action block, summed.
  """

  width: int

  @nn.compact
  def __call__(self, state_action: jax.Array) -> jax.Array:
    x = nn.Dense(self.width, kernel_init=layers.fan_in_init(), name="dense")(state_action)
    return nn.relu(nn.LayerNorm(epsilon=1e-3, name="norm")(x))


def check_image(image: jax.Array, image_size: int) -> None:
  if image.ndim != 4 or image.shape[1:] != (image_size, image_size, 3) or image.dtype != jnp.uint8:
    raise ValueError(f"image must be uint8 [B, {image_size}, {image_size}, 3], "
                     f"got {image.dtype} {list(image.shape)}")


def check_state_action(state_action: jax.Array, leading: tuple[int, ...], what: str) -> None:
  expected = (*leading, action_space.STATE_ACTION_DIM)
  ok_shape = state_action.ndim == len(expected) and all(
      e is None or e == s for e, s in zip(expected, state_action.shape))
  if not ok_shape or not jnp.issubdtype(state_action.dtype, jnp.floating):
    dims = ", ".join("B" if e is None and k == 0 else "N" if e is None else str(e) for k, e in enumerate(expected))
    raise ValueError(f"{what} must be float [{dims}], got {state_action.dtype} {list(state_action.shape)}")


class QNetwork(nn.Module):
  """Q(s, a) logits for one architecture (a Genotype) or a search space.

  Attributes:
    spec: trunk hyper-parameters.
    arch: a genotype_lib.Genotype (fixed network) or genotype_lib.SearchSpace
      (search network; architecture logits in the `arch` collection).
  """

  spec: NetworkSpec
  arch: Architecture

  def setup(self):
    s, a = self.spec, self.arch
    conv = lambda k, **kw: layers.ConvNormReLU(s.channels, k, groups=s.norm_groups, **kw)
    self.conv1 = layers.Stem(s.channels, s.conv1_kernel, s.conv1_stride, s.pool1, s.norm_groups)
    self.block2 = [conv(s.block2_kernel) for _ in range(s.block2_depth)]
    self.block3 = [conv(s.block3_kernel) for _ in range(s.block3_depth)]
    self.block4 = [conv(s.block4_kernel, padding=s.block4_padding) for _ in range(s.block4_depth)]
    self.dilated = {str(r): conv(3, dilation=r) for r in a.dilation_rates}
    self.action_encoder = ActionEncoder(s.action_width)
    self.fusion = [fusion_lib.FusionModule(a.fusion_ops(i), s.generator_init_std, s.conv_filter_kernel)
                   for i in range(genotype_lib.NUM_LOCATIONS)]
    self.attention = {str(i): attention_lib.PeerAttention(a.attention_sources(i), a.attention_gated)
                      for i in range(genotype_lib.NUM_LOCATIONS) if a.attention_sources(i)}
    self.head = [nn.Dense(w, kernel_init=layers.fan_in_init()) for w in s.head_widths]
    self.logit = nn.Dense(1, kernel_init=layers.fan_in_init(),
                          bias_init=nn.initializers.constant(math.log(s.initial_q / (1.0 - s.initial_q))))

  @property
  def split_location(self) -> int:
    """The first location that depends on the action: encode stops at its input."""
    return self.arch.first_action_location

  def _stage(self, i: int, x: jax.Array, pooled: dict[str, jax.Array]) -> jax.Array:
    """Trunk layers between location i-1 and location i (stage 0 starts at the image)."""
    s = self.spec
    h2, h3 = s.block2_depth // 2, s.block3_depth // 2
    if i == 0:
      x = self.conv1(x)
      layers_in_stage = self.block2[:h2]
    elif i == 1:
      layers_in_stage = self.block2[h2:]
    elif i == 2:
      layers_in_stage = self.block3[:h3]
    elif i == 3:
      layers_in_stage = self.block3[h3:]
    else:
      layers_in_stage = self.block4
    for layer in layers_in_stage:
      x = layer(x)
    if i == 1:
      x = layers.max_pool(x, s.pool2)
    elif i == 3:
      x = layers.max_pool(x, s.pool3)
    if i == genotype_lib.DILATED_FROM_LOCATION:
      for r in self.arch.dilation_rates:
        pooled[genotype_lib.dilated_name(r)] = layers.global_average_pool(self.dilated[str(r)](x))
    return x

  def _location(self, i: int, x: jax.Array, a: jax.Array | None, pooled: dict[str, jax.Array]) -> jax.Array:
    """Fusion then peer attention at location i; records GAP of the output as source loc{i}."""
    x = self.fusion[i](x, a)
    if str(i) in self.attention:
      sources = dict(pooled, action=a)
      sources[f"loc{i}"] = layers.global_average_pool(x)
      x = self.attention[str(i)](x, sources)
    pooled[f"loc{i}"] = layers.global_average_pool(x)
    return x

  def encode(self, image: jax.Array) -> Embedding:
    """Everything before the first action-dependent layer, once per state.

    Args:
      image: uint8 [B, S, S, 3].
    Returns:
      {"features": [B, H, W, C] at the split location's input,
       "pooled": {source: [B, C]} for earlier locations' and dilated outputs}.
    """
    check_image(image, self.spec.image_size)
    x = image.astype(jnp.float32) / 255.0
    if self.spec.coord_channels:
      x = layers.append_coordinates(x)
    pooled: dict[str, jax.Array] = {}
    k = self.split_location
    for i in range(k):
      x = self._stage(i, x, pooled)
      x = self._location(i, x, None, pooled)
    x = self._stage(k, x, pooled)
    return {"features": x, "pooled": pooled}

  def score(self, embedding: Embedding, state_action: jax.Array) -> jax.Array:
    """Q logits for N state-actions per embedded state.

    Args:
      embedding: from `encode`, batch B.
      state_action: float [B, N, 9].
    Returns:
      logits [B, N]; Q = sigmoid(logits).
    """
    features = embedding["features"]
    b = features.shape[0]
    check_state_action(state_action, (b, None), "state_action")
    n = state_action.shape[1]
    scale = jnp.ones((action_space.STATE_ACTION_DIM,), jnp.float32).at[action_space.HEIGHT].set(self.spec.height_scale)
    a = self.action_encoder(state_action.reshape(b * n, -1).astype(jnp.float32) * scale)
    tile = lambda v: jnp.repeat(v, n, axis=0)
    x = tile(features)
    pooled = {name: tile(v) for name, v in embedding["pooled"].items()}
    k = self.split_location
    for i in range(k, genotype_lib.NUM_LOCATIONS):
      if i > k:
        x = self._stage(i, x, pooled)
      x = self._location(i, x, a, pooled)
    x = x.reshape(b * n, -1)
    for dense in self.head:
      x = nn.relu(dense(x))
    return self.logit(x).reshape(b, n)

  def __call__(self, image: jax.Array, state_action: jax.Array) -> jax.Array:
    """image uint8 [B, S, S, 3], state_action float [B, 9] -> logits [B]."""
    check_state_action(state_action, (image.shape[0],), "state_action")
    return self.score(self.encode(image), state_action[:, None, :])[:, 0]


def build(config: ml_collections.ConfigDict, arch: Architecture) -> QNetwork:
  """A QNetwork from the `network` section of a config."""
  return QNetwork(NetworkSpec.from_config(config), arch)


def init_variables(network: QNetwork, rng: jax.Array, batch: int = 1) -> dict[str, Any]:
  """Initial variables {"params": ..., ["arch": ...]} for a network."""
  image = jnp.zeros((batch, network.spec.image_size, network.spec.image_size, 3), jnp.uint8)
  state_action = jnp.zeros((batch, action_space.STATE_ACTION_DIM), jnp.float32)
  return network.init(rng, image, state_action)


def q_value(logits: jax.Array) -> jax.Array:
  """Q = sigmoid(logit), in [0, 1]."""
  return jax.nn.sigmoid(logits)

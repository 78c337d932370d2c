"""Optimiser with two partitions (paper Eq. 2): network weights theta and architecture logits phi.

The trainable tree is {"params": theta, "arch": phi} (phi is {} for a fixed
network). One loss drives both; `optax.partition` (formerly
`optax.multi_transform`) gives each its own rule, so the architecture's
learning rate and regularisation can differ from the weights'.
"""

from typing import Any

import jax
import ml_collections
import optax

OPTIMIZERS = ("sgd", "adam")
WEIGHTS, ARCHITECTURE = "weights", "architecture"


def _rule(kind: str, learning_rate: float, momentum: float, l2: float, l2_mask, field: str):
  if kind not in OPTIMIZERS:
    raise ValueError(f"train config field {field!r} must be one of {OPTIMIZERS}, got {kind!r}")
  if not learning_rate > 0:
    raise ValueError(f"train config: learning rate for {field!r} must be > 0, got {learning_rate!r}")
  if l2 < 0:
    raise ValueError(f"train config: L2 coefficient for {field!r} must be >= 0, got {l2!r}")
  if kind == "sgd":
    if not 0 <= momentum < 1:
      raise ValueError(f"train config: momentum for {field!r} must be in [0, 1), got {momentum!r}")
    step = optax.sgd(learning_rate, momentum=momentum or None)
  else:
    step = optax.adam(learning_rate)
  # L2 * 0.5 * |w|^2 in the loss is L2 * w in the gradient, added before the momentum or Adam statistics.
  return optax.chain(optax.add_decayed_weights(l2, mask=l2_mask), step) if l2 else step


def labels(trainable: dict[str, Any]) -> dict[str, Any]:
  """The partition label of every leaf: WEIGHTS under "params", ARCHITECTURE under "arch"."""
  return {key: jax.tree_util.tree_map(lambda _: WEIGHTS if key == "params" else ARCHITECTURE, sub)
          for key, sub in trainable.items()}


def make(train: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """The optimiser of a config's `train` section, over {"params": ..., "arch": ...}."""
  kernels_only = lambda params: jax.tree_util.tree_map(lambda x: x.ndim > 1, params)
  weights = _rule(train.optimizer, train.learning_rate, train.momentum, train.l2, kernels_only, "optimizer")
  architecture = _rule(train.arch_optimizer, train.arch_learning_rate, train.arch_momentum, train.arch_l2, None,
                       "arch_optimizer")
  return optax.partition({WEIGHTS: weights, ARCHITECTURE: architecture}, labels)

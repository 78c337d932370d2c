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
SCHEDULES = ("constant", "cosine")
WEIGHTS, ARCHITECTURE = "weights", "architecture"


def weight_learning_rate(train: ml_collections.ConfigDict) -> optax.Schedule:
  """The weights' learning rate against step: constant, or cosine decay over `train.steps`.

  "cosine" falls from `learning_rate` to `learning_rate * lr_final_fraction` at step `train.steps`.
  """
  if train.lr_schedule not in SCHEDULES:
    raise ValueError(f"train config field 'lr_schedule' must be one of {SCHEDULES}, got "
                     f"{train.lr_schedule!r}")
  if train.lr_schedule == "constant":
    return optax.constant_schedule(train.learning_rate)
  if not 0 <= train.lr_final_fraction <= 1:
    raise ValueError(f"train config field 'lr_final_fraction' must be in [0, 1], got "
                     f"{train.lr_final_fraction!r}")
  if not train.steps >= 1:
    raise ValueError(f"train config field 'steps' must be >= 1 for a cosine schedule, got {train.steps!r}")
  return optax.cosine_decay_schedule(train.learning_rate, int(train.steps), alpha=train.lr_final_fraction)


def _rule(kind: str, learning_rate: float, momentum: float, l2: float, l2_mask, field: str,
          schedule: optax.Schedule | None = None):
  """One partition's update rule; `schedule` (starting at `learning_rate`) replaces the constant."""
  if kind not in OPTIMIZERS:
    raise ValueError(f"train config field {field!r} must be one of {OPTIMIZERS}, got {kind!r}")
  if not learning_rate > 0:
    raise ValueError(f"train config: learning rate for {field!r} must be > 0, got {learning_rate!r}")
  if l2 < 0:
    raise ValueError(f"train config: L2 coefficient for {field!r} must be >= 0, got {l2!r}")
  if kind == "sgd":
    if not 0 <= momentum < 1:
      raise ValueError(f"train config: momentum for {field!r} must be in [0, 1), got {momentum!r}")
    step = optax.sgd(schedule or learning_rate, momentum=momentum or None)
  else:
    step = optax.adam(schedule or learning_rate)
  # L2 * 0.5 * |w|^2 in the loss is L2 * w in the gradient, added before the momentum or Adam statistics.
  return optax.chain(optax.add_decayed_weights(l2, mask=l2_mask), step) if l2 else step


def labels(trainable: dict[str, Any]) -> dict[str, Any]:
  """The partition label of every leaf: WEIGHTS under "params", ARCHITECTURE under "arch"."""
  return {key: jax.tree_util.tree_map(lambda _: WEIGHTS if key == "params" else ARCHITECTURE, sub)
          for key, sub in trainable.items()}


def make(train: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """The optimiser of a config's `train` section, over {"params": ..., "arch": ...}."""
  kernels_only = lambda params: jax.tree_util.tree_map(lambda x: x.ndim > 1, params)
  # A constant rate stays a float: a schedule adds a step count to the optimiser state, which would
  # change the checkpoint layout of every constant-rate run.
  schedule = None if train.lr_schedule == "constant" else weight_learning_rate(train)
  weights = _rule(train.optimizer, train.learning_rate, train.momentum, train.l2, kernels_only, "optimizer",
                  schedule=schedule)
  architecture = _rule(train.arch_optimizer, train.arch_learning_rate, train.arch_momentum, train.arch_l2, None,
                       "arch_optimizer")
  return optax.partition({WEIGHTS: weights, ARCHITECTURE: architecture}, labels)

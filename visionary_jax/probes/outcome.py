"""Outcome probe: how well can a network tell successful from failed grasp attempts?

A supervised check that separates perception from Q-learning. The network of
a Genotype is trained, with the log loss and the config's weight optimiser,
to predict the reward of the dataset's grasp attempts (terminal close
commands: success 1, else 0) from the image and action, on the episodes the
held-out split keeps for training; every `eval_every` steps its ranking of the
held-out attempts is scored by the area under the ROC curve, over all of them
and over those made near the tray floor, where only the gripper's alignment
with an object decides the outcome. If this AUC stays low, no Bellman target
will make the Q-function resolve alignment either.
"""

import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from visionary_jax import action_space
from visionary_jax import genotype as genotype_lib
from visionary_jax import metrics
from visionary_jax.episodes import dataset as dataset_lib
from visionary_jax.episodes import summary
from visionary_jax.nets import qnetwork
from visionary_jax.qtopt import augment
from visionary_jax.qtopt import losses
from visionary_jax.qtopt import optimizer as optimizer_lib

LOW_HEIGHT = 0.03  # metres: attempts below this gripper height count as "near the floor"


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
  """Area under the ROC curve of `scores` [N] for bool `labels` [N] (ties count 1/2); None if one class is empty."""
  scores, labels = np.asarray(scores, np.float64), np.asarray(labels, bool)
  positive, negative = scores[labels], scores[~labels]
  if not len(positive) or not len(negative):
    return None
  order = np.sort(negative)
  below = np.searchsorted(order, positive, side="left")
  ties = np.searchsorted(order, positive, side="right") - below
  return float((below + 0.5 * ties).sum() / (len(positive) * len(negative)))


def attempt_split(data: dataset_lib.Dataset, holdout_every: int) -> tuple[np.ndarray, np.ndarray]:
  """(training, held-out) transition indices of the grasp attempts, split by episode."""
  attempts = summary.grasp_attempts(data)
  train, held = dataset_lib.holdout_split(data, holdout_every)
  train, held = train[attempts[train]], held[attempts[held]]
  if not len(train) or not len(held):
    raise ValueError(f"the dataset has {len(train)} training and {len(held)} held-out grasp attempts; "
                     "the probe needs both")
  return train, held


def _inputs(t: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
  return t["image"], action_space.state_action(t["action"], t["gripper_closed"], t["height"])


def run(config: ml_collections.ConfigDict, data: dataset_lib.Dataset, genotype: genotype_lib.Genotype,
        steps: int, eval_every: int, augment_shift: int = 0, holdout_every: int = 5,
        log: Callable[[str], None] = print) -> list[dict[str, Any]]:
  """Trains the probe; returns the curve [{step, loss, auc, auc_low, ...}] of the held-out attempts.

  Uses config.seed, config.network, config.replay.batch_size and the weight
  optimiser of config.train (the architecture partition is empty here).
  """
  for name, value in (("steps", steps), ("eval_every", eval_every)):
    if not isinstance(value, int) or value < 1:
      raise ValueError(f"{name} must be a positive integer, got {value!r}")
  train_idx, held_idx = attempt_split(data, holdout_every)
  train, held = data.transitions(train_idx), data.transitions(held_idx)
  train_images, train_sa = _inputs(train)
  train_y = (train["reward"] > 0).astype(np.float32)
  held_images, held_sa = _inputs(held)
  held_y, held_low = held["reward"] > 0, held["height"] < LOW_HEIGHT
  log(f"probe: {len(train_idx)} training and {len(held_idx)} held-out attempts "
      f"({int(held_low.sum())} below {LOW_HEIGHT} m), success {held_y.mean():.3f}")

  network = qnetwork.build(config.network, genotype)
  trainable = {"params": qnetwork.init_variables(network, jax.random.PRNGKey(config.seed))["params"], "arch": {}}
  optimizer = optimizer_lib.make(config.train)
  opt_state = optimizer.init(trainable)

  @jax.jit
  def step_fn(trainable, opt_state, images, state_action, y, key):
    if augment_shift:
      images = augment.random_shift(images, jax.random.split(key, images.shape[0]), augment_shift)
    def loss_fn(t):
      return losses.log_loss(network.apply({"params": t["params"]}, images, state_action), y)[0]
    loss, grads = jax.value_and_grad(loss_fn)(trainable)
    updates, opt_state = optimizer.update(grads, opt_state, trainable)
    return optax.apply_updates(trainable, updates), opt_state, loss

  logits_fn = jax.jit(lambda params, images, sa: network.apply({"params": params}, images, sa))
  batch = int(config.replay.batch_size)
  rng = np.random.default_rng(config.seed)
  key = jax.random.PRNGKey(config.seed + 1)
  curve, start = [], time.time()
  for step in range(1, steps + 1):
    pick = rng.integers(0, len(train_idx), batch)
    trainable, opt_state, loss = step_fn(trainable, opt_state, jnp.asarray(train_images[pick]),
                                         jnp.asarray(train_sa[pick]), jnp.asarray(train_y[pick]),
                                         jax.random.fold_in(key, step))
    if step % eval_every == 0 or step == steps:
      scores = np.concatenate([np.asarray(logits_fn(trainable["params"], held_images[i:i + batch],
                                                    held_sa[i:i + batch]))
                               for i in range(0, len(held_idx), batch)])
      point = {"step": step, "loss": float(loss), "auc": auc(scores, held_y),
               "auc_low": auc(scores[held_low], held_y[held_low]), "seconds": time.time() - start}
      curve.append(point)
      fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
      rate = step / point["seconds"]
      log(f"probe step {step}/{steps}: loss {point['loss']:.3f}, held-out AUC {fmt(point['auc'])}, "
          f"below {LOW_HEIGHT} m {fmt(point['auc_low'])} | {rate:.2f} steps/s, "
          f"ETA {metrics.format_duration((steps - step) / rate)}")
  return curve

"""One QT-Opt update: clipped double-Q target by CEM, log loss, joint step on weights and architecture.

`train_step` is pure and module-level; `make_pmapped_step` binds the network,
optimiser and hyper-parameters and maps it over local devices (axis 'devices'):
each device holds a slice of the global batch, gradients and metrics are
averaged with `lax.pmean`. The networks use Group/LayerNorm, so nothing else
needs synchronising.

Transition i of step k has the key fold_in(fold_in(rng, k), i), i its index in
the global batch, so an update does not depend on how the batch is split over
devices; that key splits into the augmentation's key and the target CEM's, and its
fold_in 3 draws the conservative term's sampled actions.
"""

import dataclasses
from typing import Any, Mapping

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from visionary_jax import action_space
from visionary_jax.nets import qnetwork
from visionary_jax.qtopt import augment
from visionary_jax.qtopt import cem
from visionary_jax.qtopt import losses
from visionary_jax.qtopt import train_state as train_state_lib

AXIS = "devices"
BATCH_KEYS = ("image", "gripper_closed", "height", "action", "reward", "done", "next_image",
              "next_gripper_closed", "next_height", "next_action", "episode_end")
TARGETS = ("cem", "data", "local")
Batch = Mapping[str, jax.Array]
Metrics = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class UpdateConfig:
  """Hyper-parameters of the Bellman update (experiments/configs/base.py:train)."""

  gamma: float
  polyak: float
  lag: int
  target_cem: cem.CEMConfig  # the policy's CEM (config.cem), used when target == "cem"
  augment_shift: int = 0  # pixels; s and s' are shifted independently (augment.py), 0: off
  # "cem": a* = CEM argmax of Q_target1 at s' (QT-Opt); "data": a* = the data's next action (SARSA);
  # "local": a* = argmax of Q_target1 over the data's next action and `local_actions` perturbations of it
  # (cem.local_candidates, translation std `local_std`).
  target: str = "cem"
  local_actions: int = 8
  local_std: float = 0.3
  # Leading transitions of each device's slice that bootstrap (the sampler's `bootstrap_per_device`):
  # next-state values are computed for those only. None: for all, weighted by (1 - done).
  bootstrap_size: int | None = None
  # Conservative term (losses.conservative_penalty) against `conservative_actions` uniform actions per
  # state (yaw as the CEM searches it) and the data actions of the `conservative_batch_actions` next
  # transitions of the device's slice; weight 0: off.
  conservative_weight: float = 0.0
  conservative_actions: int = 8
  conservative_batch_actions: int = 0
  # tau of the log loss on bootstrapping transitions (losses.expectile_weights); 0.5: the plain log loss.
  expectile: float = 0.5

  def __post_init__(self):
    if not 0 <= self.gamma <= 1:
      raise ValueError(f"train config field 'gamma' must be in [0, 1], got {self.gamma!r}")
    if not 0 <= self.polyak < 1:
      raise ValueError(f"train config field 'polyak' must be in [0, 1), got {self.polyak!r}")
    if not isinstance(self.lag, int) or self.lag < 1:
      raise ValueError(f"train config field 'lag' must be a positive integer, got {self.lag!r}")
    if self.target not in TARGETS:
      raise ValueError(f"train config field 'target' must be one of {TARGETS}, got {self.target!r}")
    if not isinstance(self.local_actions, int) or isinstance(self.local_actions, bool) or self.local_actions < 0:
      raise ValueError(f"train config field 'local_actions' must be an integer >= 0, got {self.local_actions!r}")
    if not (isinstance(self.local_std, (int, float)) and self.local_std >= 0):
      raise ValueError(f"train config field 'local_std' must be >= 0 (action units), got {self.local_std!r}")
    if self.bootstrap_size is not None and (not isinstance(self.bootstrap_size, int) or self.bootstrap_size < 0):
      raise ValueError(f"bootstrap_size must be None or an integer >= 0, got {self.bootstrap_size!r}")
    if not isinstance(self.augment_shift, int) or self.augment_shift < 0:
      raise ValueError(f"train config field 'augment_shift' must be an integer >= 0 (pixels), "
                       f"got {self.augment_shift!r}")
    if not (isinstance(self.conservative_weight, (int, float)) and self.conservative_weight >= 0):
      raise ValueError(f"train config field 'conservative_weight' must be >= 0, got {self.conservative_weight!r}")
    if (not isinstance(self.conservative_actions, int) or isinstance(self.conservative_actions, bool)
        or self.conservative_actions < 0):
      raise ValueError(f"train config field 'conservative_actions' must be an integer >= 0, "
                       f"got {self.conservative_actions!r}")
    if (not isinstance(self.conservative_batch_actions, int) or isinstance(self.conservative_batch_actions, bool)
        or self.conservative_batch_actions < 0):
      raise ValueError(f"train config field 'conservative_batch_actions' must be an integer >= 0, "
                       f"got {self.conservative_batch_actions!r}")
    if not (isinstance(self.expectile, (int, float)) and 0 < self.expectile < 1):
      raise ValueError(f"train config field 'expectile' must be in (0, 1), got {self.expectile!r}")
    if self.conservative_weight > 0 and self.conservative_actions + self.conservative_batch_actions < 1:
      raise ValueError("train config fields 'conservative_actions' + 'conservative_batch_actions' must be >= 1 "
                       "when 'conservative_weight' > 0")

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, bootstrap_size: int | None = None) -> "UpdateConfig":
    """From a task config's `train` and `cem` sections."""
    train = config.train
    return cls(gamma=float(train.gamma), polyak=float(train.polyak), lag=train.lag,
               target_cem=cem.CEMConfig.from_config(config.cem), augment_shift=train.augment_shift,
               target=train.target, local_actions=train.local_actions, local_std=float(train.local_std),
               bootstrap_size=bootstrap_size,
               conservative_weight=float(train.conservative_weight),
               conservative_actions=train.conservative_actions,
               conservative_batch_actions=train.conservative_batch_actions,
               expectile=float(train.expectile))


def random_batch(image_size: int, global_batch: int, num_devices: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
  """Random transitions with every key of BATCH_KEYS, shaped [num_devices, B / num_devices, ...].

  For benchmarks and tests: uint8 images, actions in [-1, 1], 30 % rewards of
  1 (else -0.01), 40 % terminal transitions (each also an episode end, as are 10 % of the
  others), heights in [0, 0.3] m.
  """
  rng = np.random.default_rng(seed)
  b = global_batch
  flat = {
      "image": rng.integers(0, 256, (b, image_size, image_size, 3), dtype=np.uint8),
      "next_image": rng.integers(0, 256, (b, image_size, image_size, 3), dtype=np.uint8),
      "gripper_closed": (rng.uniform(size=b) < 0.5).astype(np.float32),
      "height": rng.uniform(0.0, 0.3, b).astype(np.float32),
      "action": rng.uniform(-1, 1, (b, 7)).astype(np.float32),
      "reward": np.where(rng.uniform(size=b) < 0.3, 1.0, -0.01).astype(np.float32),
      "done": (rng.uniform(size=b) < 0.4).astype(np.float32),
      "next_gripper_closed": (rng.uniform(size=b) < 0.5).astype(np.float32),
      "next_height": rng.uniform(0.0, 0.3, b).astype(np.float32),
      "next_action": rng.uniform(-1, 1, (b, 7)).astype(np.float32),
  }
  flat["episode_end"] = np.maximum(flat["done"], rng.uniform(size=b) < 0.1).astype(np.float32)
  return {k: v.reshape((num_devices, b // num_devices) + v.shape[1:]) for k, v in flat.items()}


def check_batch(batch: Mapping[str, Any], leading: int | None = None, config: UpdateConfig | None = None) -> None:
  """Raises ValueError naming the first missing key, inconsistent leading shape or misordered slice.

  With `config.bootstrap_size` n, the first n transitions of every device's
  slice (the last batch axis before the per-transition shape) must bootstrap and
  the others must not: the update computes next-state values for the first n only.
  """
  missing = [k for k in BATCH_KEYS if k not in batch]
  if missing:
    raise ValueError(f"batch is missing keys {missing}; expected {list(BATCH_KEYS)}")
  shape = batch["reward"].shape
  for k in BATCH_KEYS:
    if batch[k].shape[:len(shape)] != shape:
      raise ValueError(f"batch key {k!r} has shape {batch[k].shape}, expected leading dims {shape}")
  if leading is not None and shape[0] != leading:
    raise ValueError(f"batch leading axis is {shape[0]}, expected one slice per local device ({leading})")
  if config is not None and config.bootstrap_size is not None:
    done = np.asarray(batch["done"], np.float32)
    if needs_next_action(config.target):
      done = np.maximum(done, np.asarray(batch["episode_end"], np.float32))
    n = config.bootstrap_size
    if np.any(done[..., :n] != 0) or np.any(done[..., n:] != 1):
      raise ValueError(f"batch slices must start with exactly {n} bootstrapping transitions (target "
                       f"{config.target!r}), then only non-bootstrapping ones")


def _state(gripper_closed: jax.Array, height: jax.Array) -> jax.Array:
  """[B] or [B, 1] scalars -> state [B, 2]."""
  b = gripper_closed.shape[0]
  return jnp.concatenate([gripper_closed.reshape(b, 1), height.reshape(b, 1)], axis=-1).astype(jnp.float32)


def transition_keys(rng: jax.Array, step: jax.Array, batch_size: int, axis_name: str | None) -> jax.Array:
  """[B] keys of this device's transitions: fold_in(fold_in(rng, step), global index)."""
  offset = jax.lax.axis_index(axis_name) * batch_size if axis_name else 0
  step_key = jax.random.fold_in(rng, step)
  return jax.vmap(lambda i: jax.random.fold_in(step_key, i))(offset + jnp.arange(batch_size))


def augment_and_cem_keys(keys: jax.Array) -> tuple[jax.Array, jax.Array]:
  """[B] transition keys -> ([B] augmentation keys, [B] target-CEM keys), independent streams."""
  split = jax.vmap(jax.random.split)(keys)
  return split[:, 0], split[:, 1]


def augment_batch(batch: Batch, keys: jax.Array, pad: int) -> Batch:
  """The batch with `image` and `next_image` randomly shifted by up to `pad` pixels, independently.

  The shifts of transition i derive from keys[i] (fold_in 1 and 2), so they do
  not depend on how the batch is split over devices.
  """
  if not pad:
    return batch
  fold = lambda n: jax.vmap(lambda k: jax.random.fold_in(k, n))(keys)
  return dict(batch, image=augment.random_shift(batch["image"], fold(1), pad),
              next_image=augment.random_shift(batch["next_image"], fold(2), pad))


def needs_next_action(target: str) -> bool:
  """Whether the target reads the data's next action, so that a truncated episode's end cannot bootstrap."""
  return target in ("data", "local")


def no_bootstrap(batch: Batch, target: str) -> jax.Array:
  """[B] 1.0 where the target does not bootstrap: terminal, or (targets "data", "local") no next action."""
  done = batch["done"].astype(jnp.float32)
  return jnp.maximum(done, batch["episode_end"].astype(jnp.float32)) if needs_next_action(target) else done


def bellman_targets(network: qnetwork.QNetwork, config: UpdateConfig, target: Any, lagged: Any, batch: Batch,
                    keys: jax.Array) -> tuple[jax.Array, Metrics]:
  """y [B] = clip(r + gamma (1 - done) min(Q_target1, Q_target2)(s', a*), 0, 1).

  a* is the CEM argmax of Q_target1 at s' (target "cem"), the data's next
  action (target "data") or the best of it and its perturbations under Q_target1
  (target "local"). With `config.bootstrap_size` n, next-state values are
  computed for the first n transitions only and the others' targets are their
  rewards (clipped), which is the same target when exactly those n bootstrap.

  Args:
    network: the Q-network.
    config: update hyper-parameters (gamma, target, target CEM, bootstrap size).
    target, lagged: {"params", "arch"} of the two target networks.
    batch: one device's batch (BATCH_KEYS, leading axis B).
    keys: [B] PRNG keys for CEM.
  """
  n = batch["reward"].shape[0] if config.bootstrap_size is None else config.bootstrap_size
  if n == 0:
    y = jnp.clip(batch["reward"].astype(jnp.float32), 0.0, 1.0)
    zero = jnp.zeros((), jnp.float32)
    return y, {"target_mean": jnp.mean(y), "v_next_mean": zero, "q_target1_mean": zero, "q_target2_mean": zero}
  head = {k: v[:n] for k, v in batch.items()}
  state_t = _state(head["next_gripper_closed"], head["next_height"])
  target_vars = train_state_lib.as_variables(target)
  data_action = head["next_action"].reshape(n, action_space.ACTION_DIM).astype(jnp.float32)
  if config.target == "cem":
    a_star, logit_t1 = cem.argmax_q(network, target_vars, head["next_image"], state_t, keys[:n], config.target_cem)
  elif config.target == "local":
    candidates = jax.vmap(lambda k, a: cem.local_candidates(k, a, config.local_actions, config.local_std))(
        keys[:n], data_action)  # [n, K + 2, 7]
    logits = network.apply(target_vars, head["next_image"], cem.with_state(candidates, state_t),
                           method=_encode_and_score)  # [n, K + 2]
    best = jnp.argmax(logits, axis=1)
    a_star = jnp.take_along_axis(candidates, best[:, None, None], axis=1)[:, 0]
    logit_t1 = jnp.take_along_axis(logits, best[:, None], axis=1)[:, 0]
  else:
    a_star = data_action
    logit_t1 = network.apply(target_vars, head["next_image"], jnp.concatenate([a_star, state_t], axis=-1))
  state_action_t = jnp.concatenate([a_star, state_t], axis=-1)
  logit_t2 = network.apply(train_state_lib.as_variables(lagged), head["next_image"], state_action_t)
  y_head, metrics = losses.clipped_double_q_target(
      head["reward"].astype(jnp.float32), no_bootstrap(head, config.target), qnetwork.q_value(logit_t1),
      qnetwork.q_value(logit_t2), config.gamma)
  y_tail = jnp.clip(batch["reward"][n:].astype(jnp.float32), 0.0, 1.0)
  y = jnp.concatenate([y_head, y_tail])
  metrics["target_mean"] = jnp.mean(y)
  return y, metrics


def _encode_and_score(module: qnetwork.QNetwork, image: jax.Array, state_action: jax.Array) -> jax.Array:
  return module.score(module.encode(image), state_action)


def bootstrap_mask(batch: Batch, config: UpdateConfig) -> jax.Array:
  """[B] 1.0 on the transitions whose target bootstraps (the slice's first `bootstrap_size`, if set)."""
  b = batch["reward"].shape[0]
  if config.bootstrap_size is not None:
    return (jnp.arange(b) < config.bootstrap_size).astype(jnp.float32)
  return 1.0 - no_bootstrap(batch, config.target)


def loss_fn(trainable: dict[str, Any], network: qnetwork.QNetwork, batch: Batch, y: jax.Array,
            sampled_actions: jax.Array | None = None, conservative_weight: float = 0.0,
            expectile: float = 0.5, asymmetric: jax.Array | None = None) -> tuple[jax.Array, Metrics]:
  """Log loss of Q(s, a) against fixed targets y [B]; differentiable in weights and architecture.

  With sampled_actions [B, M, 7], adds conservative_weight times the
  conservative penalty of the data's action against them (one image encoding per state).
  With expectile != 0.5, the log loss of the transitions where asymmetric [B]
  is 1 is expectile-weighted (losses.expectile_weights).
  """
  b = y.shape[0]
  action = batch["action"].reshape(b, action_space.ACTION_DIM).astype(jnp.float32)
  state = _state(batch["gripper_closed"], batch["height"])
  variables = train_state_lib.as_variables(trainable)
  if sampled_actions is None:
    logits = network.apply(variables, batch["image"], jnp.concatenate([action, state], axis=-1))
  else:
    candidates = cem.with_state(jnp.concatenate([action[:, None], sampled_actions], axis=1), state)
    all_logits = network.apply(variables, batch["image"], candidates, method=_encode_and_score)  # [B, 1 + M]
    logits = all_logits[:, 0]
  weights = None
  if expectile != 0.5:
    weights = losses.expectile_weights(qnetwork.q_value(logits), y, expectile, asymmetric)
  loss, metrics = losses.log_loss(logits, y, weights)
  if sampled_actions is None:
    return loss, metrics
  penalty, penalty_metrics = losses.conservative_penalty(all_logits)
  metrics.update(penalty_metrics)
  return loss + conservative_weight * penalty, metrics


def _norm(tree) -> jax.Array:
  leaves = jax.tree_util.tree_leaves(tree)
  return optax.tree.norm(leaves) if leaves else jnp.zeros((), jnp.float32)


def gradient_step(state: train_state_lib.TrainState, batch: Batch, y: jax.Array, *, network: qnetwork.QNetwork,
                  optimizer: optax.GradientTransformation, config: UpdateConfig,
                  axis_name: str | None = None,
                  sampled_actions: jax.Array | None = None) -> tuple[train_state_lib.TrainState, Metrics]:
  """Forward, backward and optimiser step against given targets, then the target-network updates.

  sampled_actions [B, M, 7]: the conservative term's actions (loss_fn), None: no conservative term.
  """
  (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.trainable, network, batch, y, sampled_actions, config.conservative_weight, config.expectile,
      bootstrap_mask(batch, config))
  if axis_name:
    grads = jax.lax.pmean(grads, axis_name)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.trainable)
  trainable = optax.apply_updates(state.trainable, updates)
  p = config.polyak
  target = jax.tree_util.tree_map(lambda t, o: p * t + (1.0 - p) * o, state.target, trainable)
  step = state.step + 1
  refresh = step % config.lag == 0
  lagged = jax.tree_util.tree_map(lambda l, t: jnp.where(refresh, t, l), state.lagged, target)
  metrics.update(grad_norm=_norm(grads["params"]), arch_grad_norm=_norm(grads["arch"]),
                 param_norm=_norm(trainable["params"]), arch_param_norm=_norm(trainable["arch"]),
                 update_norm=_norm(updates["params"]))
  new_state = state.replace(params=trainable["params"], arch=trainable["arch"], target=target, lagged=lagged,
                            opt_state=opt_state, step=step)
  return new_state, metrics


def _reduce(metrics: Metrics, axis_name: str | None) -> Metrics:
  if not axis_name:
    return metrics
  reduce = {"q_min": jax.lax.pmin, "q_max": jax.lax.pmax}
  out = {k: reduce.get(k, jax.lax.pmean)(v, axis_name) for k, v in metrics.items()}
  # Equal slices: global E[q^2] is the mean of the devices' E[q^2] = std^2 + mean^2.
  second_moment = jax.lax.pmean(metrics["q_std"] ** 2 + metrics["q_mean"] ** 2, axis_name)
  out["q_std"] = jnp.sqrt(jnp.maximum(second_moment - out["q_mean"] ** 2, 0.0))
  return out


def conservative_actions(batch: Batch, keys: jax.Array, config: UpdateConfig) -> jax.Array:
  """[B, M, 7]: per transition, `conservative_actions` uniform actions (from fold_in(key, 3)), then the data
  actions of the `conservative_batch_actions` transitions after it in the slice (cyclically).

  Batch actions share the data's marginal distribution, so only the state tells them from the data's own
  action: they make the term contrast actions given the image, not in-support against out-of-support.
  """
  action = batch["action"].reshape(-1, action_space.ACTION_DIM).astype(jnp.float32)
  parts = []
  if config.conservative_actions:
    parts.append(jax.vmap(lambda k: cem.uniform_actions(
        jax.random.fold_in(k, 3), config.conservative_actions, config.target_cem.search_yaw))(keys))
  if config.conservative_batch_actions:
    parts.append(jnp.stack([jnp.roll(action, -j, axis=0) for j in range(1, config.conservative_batch_actions + 1)],
                           axis=1))
  return jnp.concatenate(parts, axis=1)


def train_step(state: train_state_lib.TrainState, batch: Batch, *, network: qnetwork.QNetwork,
               optimizer: optax.GradientTransformation, config: UpdateConfig,
               axis_name: str | None = None) -> tuple[train_state_lib.TrainState, Metrics]:
  """One QT-Opt update on this device's slice of the batch.

  Args:
    state: the train state (replicated across devices under pmap).
    batch: BATCH_KEYS with leading axis B (this device's transitions): image uint8 [B, S, S, 3],
      gripper_closed [B], height [B], action [B, 7], reward [B], done [B], next_image, next_gripper_closed,
      next_height.
    network, optimizer, config: bound by `make_pmapped_step`.
    axis_name: the pmap axis to average over, None on one device without pmap.
  Returns:
    (new state, metrics of scalars averaged over the global batch).
  """
  b = batch["reward"].shape[0]
  keys = transition_keys(state.rng, state.step, b, axis_name)
  augment_keys, cem_keys = augment_and_cem_keys(keys)
  batch = augment_batch(batch, augment_keys, config.augment_shift)
  y, target_metrics = bellman_targets(network, config, state.target, state.lagged, batch, cem_keys)
  sampled_actions = None
  if config.conservative_weight > 0:
    sampled_actions = conservative_actions(batch, keys, config)
  state, metrics = gradient_step(state, batch, y, network=network, optimizer=optimizer, config=config,
                                 axis_name=axis_name, sampled_actions=sampled_actions)
  metrics.update(target_metrics)
  return state, _reduce(metrics, axis_name)


def make_pmapped_step(network: qnetwork.QNetwork, optimizer: optax.GradientTransformation, config: UpdateConfig,
                      devices, max_traces: int | None = None):
  """(replicated state, batch [D, B/D, ...]) -> (replicated state, metrics [D]); the state is donated.

  Args:
    network, optimizer, config: bound into the step.
    devices: the local devices to map over.
    max_traces: if set, tracing the step more often (a changed batch shape or
      state layout, which would silently recompile) raises AssertionError.
  """
  def step(state, batch):
    return train_step(state, batch, network=network, optimizer=optimizer, config=config, axis_name=AXIS)

  if max_traces is not None:
    step = chex.assert_max_traces(step, n=max_traces)
  return jax.pmap(step, axis_name=AXIS, devices=devices, donate_argnums=(0,))


def replicate(tree, devices):
  """One copy of every leaf per device, laid out as pmap outputs are, so the step compiles once."""
  stacked = jax.tree_util.tree_map(lambda x: np.repeat(np.asarray(x)[None], len(devices), axis=0), tree)
  return jax.pmap(lambda x: x, axis_name=AXIS, devices=devices)(stacked)


def unreplicate(tree):
  """The first device's copy of a replicated tree, as host numpy arrays."""
  return jax.device_get(jax.tree_util.tree_map(lambda x: x[0], tree))

"""Cross-entropy method (CEM): argmax_a Q(s, a) over the robot's action, batched over states.

The action (visionary_jax.action_space) has a continuous part and a discrete one:
  * continuous, 4 dimensions in [-1, 1]: translation [tx, ty, tz] and a yaw
    parameter u, encoded in the action as (sin(pi u), cos(pi u)) which is how
    the env decodes it (yaw = atan2(sin, cos) / pi * max_rotation);
  * discrete: the gripper command, open or close, written one-hot.
Each state keeps a diagonal Gaussian over the continuous part (samples clipped
to the bounds, variance floored after every refit) and a Bernoulli over the
gripper command (probability floored so neither command disappears). Every
iteration draws `num_samples` candidates per state, scores them in ONE call,
refits both distributions to the `num_elites` best, and the best candidate
seen over all iterations is returned. With `search_yaw` False, u is held at 0
(no rotation), for tasks whose data never rotates.

Randomness is one PRNG key per state, so the result for a state does not
depend on which other states share its batch or device.
"""

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections

from visionary_jax import action_space
from visionary_jax import config_fields
from visionary_jax.nets import qnetwork

CONTINUOUS_DIM = 4  # tx, ty, tz, yaw parameter u
YAW = 3  # index of u in the continuous part
LOW, HIGH = -1.0, 1.0  # bounds of every continuous dimension (the env clips to them too)
INITIAL_STD = 0.6  # first-iteration std, about that of the uniform data policy on [-1, 1]


@dataclasses.dataclass(frozen=True)
class CEMConfig:
  """See experiments/configs/base.py:cem for each field."""

  num_samples: int
  num_elites: int
  iterations: int
  variance_floor: float
  probability_floor: float
  search_yaw: bool = True  # False: every candidate keeps the yaw (u = 0, sin 0, cos 1)

  def __post_init__(self):
    for name in ("num_samples", "num_elites", "iterations"):
      v = getattr(self, name)
      if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"cem config field {name!r} must be a positive integer, got {v!r}")
    if self.num_elites > self.num_samples:
      raise ValueError(f"cem config field 'num_elites' ({self.num_elites}) must not exceed "
                       f"'num_samples' ({self.num_samples})")
    if not (isinstance(self.variance_floor, (int, float)) and self.variance_floor >= 0):
      raise ValueError(f"cem config field 'variance_floor' must be >= 0, got {self.variance_floor!r}")
    if not (isinstance(self.probability_floor, (int, float)) and 0 <= self.probability_floor <= 0.5):
      raise ValueError(f"cem config field 'probability_floor' must be in [0, 0.5], got {self.probability_floor!r}")
    if not isinstance(self.search_yaw, bool):
      raise ValueError(f"cem config field 'search_yaw' must be True or False, got {self.search_yaw!r}")

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> "CEMConfig":
    return config_fields.dataclass_from_config(cls, config, "cem")


def to_action(continuous: jax.Array, close: jax.Array) -> jax.Array:
  """continuous [..., 4] in bounds and close [...] (bool or 0/1) -> action [..., 7]."""
  theta = math.pi * continuous[..., 3:4]
  close = close.astype(jnp.float32)[..., None]
  return jnp.concatenate([continuous[..., :3], jnp.sin(theta), jnp.cos(theta), 1.0 - close, close], axis=-1)


def with_state(action: jax.Array, state: jax.Array) -> jax.Array:
  """action [B, N, 7] and state [B, 2] (gripper_closed, height) -> state_action [B, N, 9]."""
  state = jnp.broadcast_to(state[:, None, :], action.shape[:-1] + (action_space.STATE_DIM,))
  return jnp.concatenate([action, state.astype(action.dtype)], axis=-1)


def uniform_actions(key: jax.Array, num: int, search_yaw: bool = True) -> jax.Array:
  """[num, 7] actions: continuous part uniform on the bounds (u = 0 without `search_yaw`), fair gripper coin."""
  k_continuous, k_gripper = jax.random.split(key)
  continuous = jax.random.uniform(k_continuous, (num, CONTINUOUS_DIM), jnp.float32, LOW, HIGH)
  if not search_yaw:
    continuous = continuous.at[:, YAW].set(0.0)
  return to_action(continuous, jax.random.uniform(k_gripper, (num,)) < 0.5)


def local_candidates(key: jax.Array, action: jax.Array, num: int, std: float) -> jax.Array:
  """[num + 2, 7] actions near one the data took: it with either gripper command, then `num` perturbations.

  A perturbation adds N(0, std^2) to each translation component (clipped to the bounds), keeps the
  rotation, and takes the gripper command by a fair coin.

  Args:
    key: PRNG key.
    action: [7], the data's action.
  """
  k_translation, k_gripper = jax.random.split(key)
  command = action_space.GRIPPER_COMMAND
  with_open = action.at[command].set(jnp.array([1.0, 0.0], action.dtype))
  with_close = action.at[command].set(jnp.array([0.0, 1.0], action.dtype))
  translation = jnp.clip(action[action_space.TRANSLATION] + std * jax.random.normal(k_translation, (num, 3)),
                         LOW, HIGH)
  close = (jax.random.uniform(k_gripper, (num,)) < 0.5).astype(action.dtype)[:, None]
  perturbed = jnp.concatenate([translation, jnp.broadcast_to(action[action_space.ROTATION], (num, 2)),
                               1.0 - close, close], axis=-1)
  return jnp.concatenate([with_open[None], with_close[None], perturbed.astype(action.dtype)])


ScoreFn = Callable[[jax.Array], jax.Array]  # state_action [B, N, 9] -> logits [B, N]


def maximize(score_fn: ScoreFn, state: jax.Array, keys: jax.Array, config: CEMConfig) -> tuple[jax.Array, jax.Array]:
  """Approximate argmax over actions of score_fn for every state.

  Args:
    score_fn: state_action [B, N, 9] -> scores [B, N] (higher is better), N = num_samples.
    state: [B, 2] float, (gripper_closed, height) per state.
    keys: [B] PRNG keys (raw uint32 [B, 2]), one per state.
    config: CEM sizes.
  Returns:
    (action [B, 7], score [B]): the best candidate seen and its score.
  """
  b, n, e = state.shape[0], config.num_samples, config.num_elites
  floor_std = math.sqrt(config.variance_floor)
  p_floor = config.probability_floor

  yaw_mask = jnp.ones((CONTINUOUS_DIM,), jnp.float32).at[YAW].set(1.0 if config.search_yaw else 0.0)

  def sample(key, mean, std, p_close):
    k_normal, k_gripper = jax.random.split(key)
    continuous = jnp.clip(mean + std * jax.random.normal(k_normal, (n, CONTINUOUS_DIM)), LOW, HIGH) * yaw_mask
    close = jax.random.uniform(k_gripper, (n,)) < p_close
    return continuous, close

  def iteration(carry, it):
    mean, std, p_close, best_action, best_score = carry
    iter_keys = jax.vmap(lambda k: jax.random.fold_in(k, it))(keys)
    continuous, close = jax.vmap(sample)(iter_keys, mean, std, p_close)  # [B, N, 4], [B, N]
    actions = to_action(continuous, close)  # [B, N, 7]
    scores = score_fn(with_state(actions, state))  # [B, N]
    elite_scores, elite_idx = jax.lax.top_k(scores, e)  # [B, E], best first
    elites = jnp.take_along_axis(continuous, elite_idx[..., None], axis=1)  # [B, E, 4]
    elite_close = jnp.take_along_axis(close, elite_idx, axis=1).astype(jnp.float32)
    mean = jnp.mean(elites, axis=1)
    std = jnp.maximum(jnp.std(elites, axis=1), floor_std)
    p_close = jnp.clip(jnp.mean(elite_close, axis=1), p_floor, 1.0 - p_floor)
    top_action = jnp.take_along_axis(actions, elite_idx[:, :1, None], axis=1)[:, 0]
    better = elite_scores[:, 0] > best_score
    best_action = jnp.where(better[:, None], top_action, best_action)
    best_score = jnp.where(better, elite_scores[:, 0], best_score)
    return (mean, std, p_close, best_action, best_score), None

  init = (jnp.full((b, CONTINUOUS_DIM), 0.5 * (LOW + HIGH), jnp.float32),
          jnp.full((b, CONTINUOUS_DIM), INITIAL_STD, jnp.float32),
          jnp.full((b,), 0.5, jnp.float32),
          jnp.zeros((b, action_space.ACTION_DIM), jnp.float32),
          jnp.full((b,), -jnp.inf, jnp.float32))
  (_, _, _, best_action, best_score), _ = jax.lax.scan(iteration, init, jnp.arange(config.iterations))
  return best_action, best_score


def argmax_q(network: qnetwork.QNetwork, variables, image: jax.Array, state: jax.Array, keys: jax.Array,
             config: CEMConfig) -> tuple[jax.Array, jax.Array]:
  """CEM on a Q-network: `encode` once per state, `score` all candidates of an iteration at once.

  Args:
    network: the Q-network.
    variables: its variables {"params": ..., ["arch": ...]}.
    image: uint8 [B, S, S, 3].
    state: [B, 2] (gripper_closed, height).
    keys: [B] PRNG keys.
    config: CEM sizes.
  Returns:
    (action [B, 7], logit [B]) of the best candidate per state.
  """
  embedding = network.apply(variables, image, method=qnetwork.QNetwork.encode)
  score = lambda state_action: network.apply(variables, embedding, state_action, method=qnetwork.QNetwork.score)
  return maximize(score, state, keys, config)

"""CEM on known functions of the action: maximiser, bounds, gripper choice, batching; on a Q-network."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import random_inputs
from experiments.configs import base
from visionary_jax import genotype as G
from visionary_jax.nets import qnetwork
from visionary_jax.qtopt import cem

WIDE = cem.CEMConfig(num_samples=256, num_elites=16, iterations=6, variance_floor=1e-6, probability_floor=0.05)


def concave(translation, yaw, close_bonus):
  """score(state_action [B, N, 9]) = -|t - t*|^2 - |(sin, cos) - (sin, cos)(pi yaw*)|^2 + bonus * close."""
  t_star = jnp.asarray(translation, jnp.float32)
  rot_star = jnp.array([math.sin(math.pi * yaw), math.cos(math.pi * yaw)], jnp.float32)

  def score(state_action):
    close = (state_action[..., 6] > state_action[..., 5]).astype(jnp.float32)
    return (-jnp.sum((state_action[..., :3] - t_star) ** 2, -1)
            - jnp.sum((state_action[..., 3:5] - rot_star) ** 2, -1) + close_bonus * close)
  return score


def run(score, batch=1, config=WIDE, seed=0, state=None):
  state = jnp.zeros((batch, 2), jnp.float32) if state is None else state
  keys = jax.random.split(jax.random.PRNGKey(seed), batch)
  return jax.jit(lambda s, k: cem.maximize(score, s, k, config))(state, keys)


@pytest.mark.parametrize("close_bonus", [0.3, -0.3])
def test_finds_interior_maximiser_and_better_gripper_command(close_bonus):
  action, value = run(concave([0.3, -0.5, 0.1], 0.25, close_bonus), batch=3)
  action = np.asarray(action)
  np.testing.assert_allclose(action[:, :3], np.tile([0.3, -0.5, 0.1], (3, 1)), atol=0.05)
  np.testing.assert_allclose(action[:, 3:5], np.tile([math.sin(math.pi / 4), math.cos(math.pi / 4)], (3, 1)), atol=0.05)
  expected_gripper = [0.0, 1.0] if close_bonus > 0 else [1.0, 0.0]
  np.testing.assert_array_equal(action[:, 5:7], np.tile(expected_gripper, (3, 1)))
  # The returned value is the score of the returned action.
  state_action = np.concatenate([action, np.zeros((3, 2), np.float32)], -1)[:, None]
  np.testing.assert_allclose(value, np.asarray(concave([0.3, -0.5, 0.1], 0.25, close_bonus)(state_action))[:, 0],
                             rtol=1e-5)
  assert np.all(np.asarray(value) > max(close_bonus, 0) - 0.01)


def _scored_candidates(score, batch, config, seed=0):
  """Runs CEM under jit and returns the candidates scored by every iteration, [iterations, B, N, 9]."""
  collected = []

  def recording(state_action):
    jax.debug.callback(lambda sa: collected.append(np.asarray(sa)), state_action)
    return score(state_action)

  keys = jax.random.split(jax.random.PRNGKey(seed), batch)
  action, _ = jax.jit(lambda k: cem.maximize(recording, jnp.zeros((batch, 2)), k, config))(keys)
  jax.block_until_ready(action)
  jax.effects_barrier()
  return np.asarray(action), np.stack(collected)


def test_respects_bounds_when_maximiser_is_outside():
  action, candidates = _scored_candidates(concave([2.0, -3.0, 0.5], -0.5, 0.1), 2, WIDE)
  np.testing.assert_allclose(action[:, :3], [[1.0, -1.0, 0.5]] * 2, atol=0.03)
  assert candidates.shape == (WIDE.iterations, 2, WIDE.num_samples, 9)
  assert np.all(np.abs(candidates[..., :3]) <= 1.0)
  assert np.any(candidates[..., 0] == 1.0)  # clipped onto the bound, not resampled
  np.testing.assert_allclose(np.sum(candidates[..., 3:5] ** 2, -1), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(np.sort(candidates[..., 5:7], -1), np.broadcast_to([0.0, 1.0], candidates.shape[:-1] + (2,)))


def test_state_is_appended_to_candidates():
  state = jnp.array([[1.0, 0.25], [0.0, 0.75]], jnp.float32)
  # The best action depends on the state: translation x should equal the height.
  score = lambda sa: -(sa[..., 0] - sa[..., 8]) ** 2 - 0.1 * (sa[..., 7] - 1.0) ** 2
  action, _ = run(score, batch=2, state=state)
  np.testing.assert_allclose(np.asarray(action)[:, 0], [0.25, 0.75], atol=0.05)


def test_result_of_a_state_does_not_depend_on_its_batch():
  score = concave([0.1, 0.2, -0.3], 0.6, 0.2)
  keys = jax.random.split(jax.random.PRNGKey(3), 4)
  fn = jax.jit(lambda s, k: cem.maximize(score, s, k, cem.CEMConfig(16, 4, 2, 1e-4, 0.05)))
  full, _ = fn(jnp.zeros((4, 2)), keys)
  part, _ = fn(jnp.zeros((2, 2)), keys[2:])
  np.testing.assert_allclose(np.asarray(full)[2:], np.asarray(part), atol=1e-6)


@pytest.mark.parametrize("floor,low,high", [(0.0, 0.0, 0.02), (0.04, 0.15, 1.0)])
def test_variance_floor_keeps_sampling_spread(floor, low, high):
  config = cem.CEMConfig(64, 4, 8, variance_floor=floor, probability_floor=0.05)
  _, candidates = _scored_candidates(concave([0.2, 0.0, 0.0], 0.0, 0.0), 1, config)
  spread = float(np.std(candidates[-1, 0, :, 0]))
  assert low <= spread <= high


def test_probability_floor_keeps_both_gripper_commands():
  config = cem.CEMConfig(200, 10, 4, variance_floor=1e-4, probability_floor=0.2)
  _, candidates = _scored_candidates(concave([0.0, 0.0, 0.0], 0.0, 1.0), 1, config)
  close_fraction = np.mean(candidates[-1, 0, :, 6])
  assert 0.65 < close_fraction < 0.92  # p(close) is capped at 1 - 0.2


@pytest.mark.parametrize("field,value,message", [
    ("num_elites", 100, "num_elites"), ("num_samples", 0, "num_samples"), ("iterations", 1.5, "iterations"),
    ("variance_floor", -1.0, "variance_floor"), ("probability_floor", 0.7, "probability_floor")])
def test_bad_config_names_the_field(field, value, message):
  values = dict(base.cem("smoke", "grasping"))
  values[field] = value
  with pytest.raises(ValueError, match=message):
    cem.CEMConfig(**values)


def test_unknown_config_field_is_rejected():
  c = base.cem("smoke", "grasping")
  c.num_samplez = 3
  with pytest.raises(ValueError, match="num_samplez"):
    cem.CEMConfig.from_config(c)


def test_argmax_q_on_network_scores_its_action(smoke_spec):
  """The logit CEM returns is the network's forward logit of the action it returns."""
  net = qnetwork.QNetwork(smoke_spec, G.BASELINE)
  variables = qnetwork.init_variables(net, jax.random.PRNGKey(0))
  image, state_action = random_inputs(smoke_spec, batch=3)
  state = jnp.asarray(state_action[:, 7:])
  config = cem.CEMConfig.from_config(base.cem("smoke", "grasping"))
  action, logit = jax.jit(lambda v, i, s, k: cem.argmax_q(net, v, i, s, k, config))(
      variables, image, state, jax.random.split(jax.random.PRNGKey(2), 3))
  forward = net.apply(variables, image, jnp.concatenate([action, state], -1))
  np.testing.assert_allclose(logit, forward, rtol=1e-4, atol=1e-6)


def test_local_candidates_by_hand():
  action = jnp.array([0.5, -0.2, 0.9, 0.3, 0.95, 1.0, 0.0])
  fixed = cem.local_candidates(jax.random.PRNGKey(0), action, num=3, std=0.0)
  np.testing.assert_allclose(fixed[0], action)
  np.testing.assert_allclose(fixed[1], [0.5, -0.2, 0.9, 0.3, 0.95, 0.0, 1.0])  # the same move, closing
  np.testing.assert_allclose(fixed[2:, :5], np.tile(action[:5], (3, 1)))  # std 0: the data's move
  spread = cem.local_candidates(jax.random.PRNGKey(1), action, num=4000, std=0.3)
  assert spread.shape == (4002, 7)
  translation = np.asarray(spread[2:, :3])
  assert translation.min() >= -1.0 and translation.max() <= 1.0
  assert np.mean(translation[:, 2] == 1.0) == pytest.approx(0.37, abs=0.03)  # P(0.9 + 0.3 z >= 1) = 0.37
  np.testing.assert_allclose(np.std(translation[:, 1]), 0.3, rtol=0.05)  # -0.2 + 0.3 z clips beyond |z| > 2.6
  np.testing.assert_allclose(spread[2:, 3:5], np.tile(action[3:5], (4000, 1)))  # rotation kept
  command = np.asarray(spread[2:, 5:7])
  np.testing.assert_array_equal(command.sum(axis=1), 1.0)
  assert np.mean(command[:, 1]) == pytest.approx(0.5, abs=0.03)

"""Bellman target (clipped double Q, terminal transitions, clipping) and log loss, against hand-computed values."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from visionary_jax.qtopt import losses


def test_clipped_double_q_target_by_hand():
  r_t = jnp.array([-0.01, -0.01, 1.0, -0.01, 0.5])
  d_t = jnp.array([0.0, 0.0, 1.0, 1.0, 0.0])
  q1 = jnp.array([0.8, 0.3, 0.9, 0.9, 1.0])
  q2 = jnp.array([0.6, 0.7, 0.9, 0.9, 0.9])
  y, metrics = losses.clipped_double_q_target(r_t, d_t, q1, q2, gamma=0.9)
  expected = [
      -0.01 + 0.9 * 0.6,  # min picks target 2
      -0.01 + 0.9 * 0.3,  # min picks target 1
      1.0,  # terminal success: no bootstrap
      0.0,  # terminal failure: -0.01 clipped to 0
      1.0,  # 0.5 + 0.9 * 0.9 = 1.31 clipped to 1
  ]
  np.testing.assert_allclose(y, expected, rtol=1e-6)
  np.testing.assert_allclose(metrics["target_mean"], np.mean(expected), rtol=1e-6)
  np.testing.assert_allclose(metrics["v_next_mean"], np.mean([0.6, 0.3, 0.9, 0.9, 0.9]), rtol=1e-6)


def test_target_carries_no_gradient():
  g = jax.grad(lambda q: jnp.sum(losses.clipped_double_q_target(jnp.zeros(2), jnp.zeros(2), q, q, 0.9)[0]))(
      jnp.array([0.5, 0.5]))
  np.testing.assert_array_equal(g, 0.0)


def test_log_loss_by_hand():
  logits = jnp.array([0.0, math.log(3.0), -math.log(3.0)])  # Q = 0.5, 0.75, 0.25
  y = jnp.array([1.0, 0.25, 0.0])
  loss, metrics = losses.log_loss(logits, y)
  per_example = [math.log(2.0),
                 -(0.25 * math.log(0.75) + 0.75 * math.log(0.25)),
                 -math.log(0.75)]
  np.testing.assert_allclose(loss, np.mean(per_example), rtol=1e-6)
  np.testing.assert_allclose(metrics["q_mean"], 0.5, rtol=1e-6)
  np.testing.assert_allclose(metrics["q_min"], 0.25, rtol=1e-6)
  np.testing.assert_allclose(metrics["q_max"], 0.75, rtol=1e-6)
  np.testing.assert_allclose(metrics["td_abs_error"], (0.5 + 0.5 + 0.25) / 3, rtol=1e-6)


def test_log_loss_gradient_is_q_minus_target():
  logits = jnp.array([0.3, -1.2, 2.0])
  y = jnp.array([0.9, 0.1, 0.4])
  g = jax.grad(lambda l: losses.log_loss(l, y)[0])(logits)
  np.testing.assert_allclose(g, (jax.nn.sigmoid(logits) - y) / 3, rtol=1e-5)


def test_expectile_weights_by_hand():
  q = jnp.array([0.5, 0.5, 0.5, 0.5])
  y = jnp.array([0.9, 0.1, 0.5, 0.9])
  w = losses.expectile_weights(q, y, 0.8, asymmetric=jnp.array([1.0, 1.0, 1.0, 0.0]))
  np.testing.assert_allclose(w, [1.6, 0.4, 0.4, 1.0], rtol=1e-6)  # above, below, tie (below), symmetric
  np.testing.assert_allclose(losses.expectile_weights(q, y, 0.5, jnp.ones(4)), 1.0)


def test_weighted_log_loss_by_hand():
  logits, y = jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0])
  loss, _ = losses.log_loss(logits, y, jnp.array([1.6, 0.4]))
  np.testing.assert_allclose(loss, (1.6 + 0.4) * math.log(2.0) / 2, rtol=1e-6)


def test_expectile_log_loss_is_stationary_at_the_expectile_of_its_targets():
  # Targets 0 and 1 equally often: the tau-expectile q solves tau (1 - q) = (1 - tau) q, so q = tau.
  y = jnp.array([0.0, 1.0])
  def loss(logit):
    logits = jnp.full(2, logit)
    return losses.log_loss(logits, y, losses.expectile_weights(jax.nn.sigmoid(logits), y, 0.8, jnp.ones(2)))[0]
  grad = jax.grad(loss)
  # d/dlogit: (2 (1 - tau) q - 2 tau (1 - q)) / 2 = q - tau.
  for q in (0.3, 0.8, 0.95):
    np.testing.assert_allclose(grad(math.log(q / (1 - q))), q - 0.8, atol=1e-6)


def test_conservative_penalty_by_hand():
  # State 0: three equal logits -> log 3. State 1: data logit 2 against 0 and 0 -> log(e^2 + 2) - 2.
  penalty, metrics = losses.conservative_penalty(jnp.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]]))
  np.testing.assert_allclose(penalty, (math.log(3) + math.log(math.exp(2) + 2) - 2) / 2, rtol=1e-6)
  np.testing.assert_allclose(metrics["q_sampled_mean"], 0.5, rtol=1e-6)


def test_conservative_penalty_gradient_lowers_sampled_and_raises_data_logits():
  # d/dl_j = softmax_j / B - [j == 0] / B: for [0, 0] it is (-1/2, 1/2).
  grad = jax.grad(lambda l: losses.conservative_penalty(l)[0])(jnp.array([[0.0, 0.0]]))
  np.testing.assert_allclose(grad, [[-0.5, 0.5]], rtol=1e-6)

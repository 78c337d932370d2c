"""QT-Opt's Bellman target (clipped double Q) and log loss, as small callables returning (value, metrics).

Names follow the time index of the transition (s_tm1, a_tm1, r_t, d_t, s_t):
  q_t_target1   Q_target1(s_t, a*) with a* = CEM argmax_a Q_target1(s_t, a)  (Polyak average)
  q_t_target2   Q_target2(s_t, a*)                                          (lagged copy)
  y = clip(r_t + gamma * (1 - d_t) * min(q_t_target1, q_t_target2), 0, 1)
Q is a sigmoid output, so the target is a probability and the loss is the
cross-entropy between y and Q(s_tm1, a_tm1).

The optional conservative term (CQL, Kumar et al. 2020) pushes Q down on
sampled actions and up on the data's: logsumexp over the candidates' logits
minus the data action's logit, the cross-entropy of picking the data action
out of the candidates.
"""

import jax
import jax.numpy as jnp
import optax

Metrics = dict[str, jax.Array]


def clipped_double_q_target(r_t: jax.Array, d_t: jax.Array, q_t_target1: jax.Array, q_t_target2: jax.Array,
                            gamma: float) -> tuple[jax.Array, Metrics]:
  """Bellman target y [B] in [0, 1].

  Args:
    r_t: [B] rewards.
    d_t: [B] 1.0 where s_t is terminal (no bootstrap), else 0.0.
    q_t_target1, q_t_target2: [B] Q values in [0, 1] of the two target networks at (s_t, a*).
    gamma: discount.
  Returns:
    (y [B], metrics).
  """
  v_t = jnp.minimum(q_t_target1, q_t_target2)
  y = jnp.clip(r_t + gamma * (1.0 - d_t) * v_t, 0.0, 1.0)
  metrics = {"target_mean": jnp.mean(y), "v_next_mean": jnp.mean(v_t),
             "q_target1_mean": jnp.mean(q_t_target1), "q_target2_mean": jnp.mean(q_t_target2)}
  return jax.lax.stop_gradient(y), metrics


def expectile_weights(q_tm1: jax.Array, y: jax.Array, expectile: float, asymmetric: jax.Array) -> jax.Array:
  """[B] weights 2 tau where y > Q and 2 (1 - tau) where y <= Q on transitions where `asymmetric` [B] is 1.

  The weighted cross-entropy's gradient in the logit, w (Q - y), vanishes in
  expectation where Q is the tau-expectile of the targets, so tau > 0.5 fits
  the upper range of the values the data's next actions reach (the in-sample
  maximum of IQL, Kostrikov et al. 2022, on the Q-function itself). Elsewhere
  (and everywhere at tau 0.5) the weight is 1.
  """
  upper = jnp.where(y > q_tm1, 2.0 * expectile, 2.0 * (1.0 - expectile))
  return jax.lax.stop_gradient(jnp.where(asymmetric > 0, upper, 1.0))


def log_loss(logits_tm1: jax.Array, y: jax.Array, weights: jax.Array | None = None) -> tuple[jax.Array, Metrics]:
  """Mean cross-entropy between targets y [B] and Q = sigmoid(logits_tm1 [B]), each weighted by weights [B]."""
  per_example = optax.sigmoid_binary_cross_entropy(logits_tm1, y)
  loss = jnp.mean(per_example if weights is None else weights * per_example)
  q_tm1 = jax.nn.sigmoid(logits_tm1)
  metrics = {"loss": loss, "q_mean": jnp.mean(q_tm1), "q_std": jnp.std(q_tm1), "q_min": jnp.min(q_tm1),
             "q_max": jnp.max(q_tm1), "td_abs_error": jnp.mean(jnp.abs(q_tm1 - y))}
  return loss, metrics


def conservative_penalty(logits: jax.Array) -> tuple[jax.Array, Metrics]:
  """Mean over states of logsumexp_j logits[:, j] - logits[:, 0], >= 0.

  Args:
    logits: [B, 1 + M]; column 0 is the data's action, columns 1.. sampled actions at the same state.
  Returns:
    (penalty, metrics).
  """
  penalty = jnp.mean(jax.nn.logsumexp(logits, axis=1) - logits[:, 0])
  metrics = {"conservative_penalty": penalty, "q_sampled_mean": jnp.mean(jax.nn.sigmoid(logits[:, 1:]))}
  return penalty, metrics

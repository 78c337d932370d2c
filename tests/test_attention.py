"""Peer attention (Eq. 4) against a hand-computed case, and its pruning invariants."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from visionary_jax.nets import attention


def _sigmoid(v):
  return 1.0 / (1.0 + np.exp(-v))


def test_gated_attention_hand_computed():
  x = jnp.array([[[[1.0, -2.0]]], ]).reshape(1, 1, 1, 2)
  pooled = {"action": jnp.array([[1.0]]), "loc0": jnp.array([[2.0, 0.0]])}
  params = {"proj_action": {"kernel": jnp.array([[1.0, -1.0]]), "bias": jnp.array([0.0, 0.5])},
            "proj_loc0": {"kernel": jnp.array([[0.5, 0.0], [0.0, 3.0]]), "bias": jnp.array([1.0, 0.0])}}
  h = jnp.array([0.0, np.log(3.0)])  # gates 0.5 and 0.75
  module = attention.PeerAttention(("action", "loc0"), gated=True)
  out = module.apply({"params": params, "arch": {"edge_logits": h}}, x, pooled)
  # z = 0.5 * [1, -0.5] + 0.75 * ([1, 0] + [1, 0]) = [2.0, -0.25]
  expected = np.array([1.0, -2.0]) * 2 * _sigmoid(np.array([2.0, -0.25]))
  chex.assert_trees_all_close(out, jnp.asarray(expected, jnp.float32).reshape(1, 1, 1, 2), atol=1e-6)


def test_all_gates_closed_is_identity():
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 4, 5))
  pooled = {"action": jnp.ones((3, 7)), "loc0": jnp.ones((3, 5))}
  module = attention.PeerAttention(("action", "loc0"), gated=True)
  variables = module.init(jax.random.PRNGKey(1), x, pooled)
  closed = {"params": variables["params"], "arch": {"edge_logits": jnp.full((2,), -1e4)}}
  chex.assert_trees_all_equal(module.apply(closed, x, pooled), x)


def test_attention_is_channelwise():
  x = jnp.ones((2, 3, 3, 4))
  pooled = {"action": jax.random.normal(jax.random.PRNGKey(0), (2, 6))}
  module = attention.PeerAttention(("action",), gated=False)
  out = module.apply(module.init(jax.random.PRNGKey(1), x, pooled), x, pooled)
  # The same scale at every pixel of a channel, different across samples.
  chex.assert_trees_all_close(out, jnp.broadcast_to(out[:, :1, :1, :], out.shape))
  assert not np.allclose(out[0], out[1])

"""Each action-merging op against hand-computed values, shapes, and the supernet mixture (Eq. 3)."""

import chex
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from visionary_jax import genotype
from visionary_jax.nets import fusion

STD = 0.01


def test_add_hand_computed():
  x = jnp.array([[[[1.0, 2.0]]]])  # [1, 1, 1, 2]
  a = jnp.array([[3.0]])  # [1, 1]
  params = {"project": {"kernel": jnp.array([[10.0, 20.0]]), "bias": jnp.array([0.5, -0.5])}}
  out = fusion.AddMerge().apply({"params": params}, x, a)
  chex.assert_trees_all_close(out, jnp.array([[[[31.5, 61.5]]]]))


def test_concat_hand_computed_equals_explicit_concatenation():
  x = jnp.array([[[[1.0, 2.0]], [[-1.0, 0.0]]]])  # [1, 2, 1, 2]
  a = jnp.array([[3.0]])
  conv = jnp.array([[[[1.0, 2.0], [0.0, 1.0]]]])  # 1x1, [1, 1, 2, 2]
  action = jnp.array([[10.0, 20.0]])
  bias = jnp.array([0.0, 1.0])
  params = {"conv": {"kernel": conv, "bias": bias}, "action": {"kernel": action}}
  out = fusion.ConcatMerge().apply({"params": params}, x, a)
  # By hand: pixel (0,0): [1, 2] @ [[1, 2], [0, 1]] = [1, 4]; + 3 * [10, 20] + [0, 1] = [31, 65].
  #          pixel (1,0): [-1, 0] @ ... = [-1, -2]; + [30, 60] + [0, 1] = [29, 59].
  chex.assert_trees_all_close(out, jnp.array([[[[31.0, 65.0]], [[29.0, 59.0]]]]))
  # The same as a 1x1 conv over x || T(a) with the stacked [C + A, C] kernel.
  stacked = jnp.concatenate([conv[0, 0], action], axis=0)
  xa = jnp.concatenate([x, jnp.broadcast_to(a[:, None, None, :], (1, 2, 1, 1))], axis=-1)
  chex.assert_trees_all_close(out, jnp.einsum("bhwc,cd->bhwd", xa, stacked) + bias)


def test_hadamard_hand_computed():
  x = jnp.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
  a = jnp.array([[1.0, 5.0]])
  kernel = jnp.array([[0.5, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.1]])
  bias = jnp.array([0.0, 0.0, 0.0, 0.5])
  out = fusion.HadamardMerge(STD).apply({"params": {"spatial": {"kernel": kernel, "bias": bias}}}, x, a)
  # g(a) = [0.5, 1, 2, 0.5 + 0.5] laid out over the 2x2 grid, times x.
  chex.assert_trees_all_close(out, jnp.array([[0.5, 2.0], [6.0, 4.0]]).reshape(1, 2, 2, 1))


def test_conv_filter_hand_computed():
  x = jnp.arange(1.0, 10.0).reshape(1, 3, 3, 1)
  a = jnp.array([[2.0]])
  # Filter = bias (centre and right tap) + 2 * kernel (bottom tap).
  bias = jnp.zeros((3, 3, 1)).at[1, 1, 0].set(1.0).at[1, 2, 0].set(1.0).reshape(-1)
  kernel = jnp.zeros((1, 9)).at[0, 7].set(0.5)  # tap (2, 1) = 0.5 * a = 1
  out = fusion.ConvFilterMerge(3, STD).apply({"params": {"filters": {"kernel": kernel, "bias": bias}}}, x, a)
  # out[i, j] = x[i, j] + x[i, j + 1] + x[i + 1, j], zero outside.
  expected = jnp.array([[1 + 2 + 4, 2 + 3 + 5, 3 + 0 + 6],
                        [4 + 5 + 7, 5 + 6 + 8, 6 + 0 + 9],
                        [7 + 8 + 0, 8 + 9 + 0, 9 + 0 + 0]], jnp.float32).reshape(1, 3, 3, 1)
  chex.assert_trees_all_close(out, expected)


def test_conv_filter_differs_per_sample():
  x = jnp.ones((2, 4, 4, 3))
  filters = jnp.stack([jnp.ones((3, 3, 3)), 2 * jnp.ones((3, 3, 3))])
  out = fusion.depthwise_conv_per_sample(x, filters)
  # Interior pixels see 9 taps, corners 4.
  assert float(out[0, 1, 1, 0]) == 9.0 and float(out[1, 1, 1, 0]) == 18.0
  assert float(out[0, 0, 0, 2]) == 4.0 and float(out[1, 0, 0, 2]) == 8.0


def test_identity_initialisations():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 5, 4))
  a = jnp.zeros((2, 6))  # with a = 0 only the biases act
  for op in (fusion.HadamardMerge(STD), fusion.ConvFilterMerge(3, STD)):
    variables = op.init(jax.random.PRNGKey(1), x, a)
    chex.assert_trees_all_close(op.apply(variables, x, a), x, atol=1e-6)


@settings(max_examples=8, deadline=None)
@given(batch=st.integers(1, 3), size=st.integers(1, 7), channels=st.integers(1, 6), action=st.integers(1, 5),
       op=st.sampled_from(genotype.OPS))
def test_every_op_keeps_shape(batch, size, channels, action, op):
  x = jnp.ones((batch, size, size + 1, channels))
  a = jnp.ones((batch, action))
  module = fusion.FusionModule((op,), STD, 3)
  variables = module.init(jax.random.PRNGKey(0), x, a)
  chex.assert_shape(module.apply(variables, x, a), x.shape)


def test_supernet_is_softmax_weighted_sum_of_ops():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 4, 3))
  a = jax.random.normal(jax.random.PRNGKey(1), (2, 5))
  supernet = fusion.FusionModule(genotype.OPS, STD, 3)
  variables = supernet.init(jax.random.PRNGKey(2), x, a)
  logits = jnp.array([0.3, -1.0, 2.0, 0.0, 0.7])
  variables = {"params": variables["params"], "arch": {"op_logits": logits}}
  out = supernet.apply(variables, x, a)
  weights = np.exp(logits) / np.exp(logits).sum()
  expected = 0.0
  for w, op in zip(weights, genotype.OPS):
    single = fusion.FusionModule((op,), STD, 3)
    params = {op: variables["params"][op]} if op in variables["params"] else {}
    expected = expected + w * single.apply({"params": params}, x, a)
  chex.assert_trees_all_close(out, expected, atol=1e-5)


def test_supernet_logits_are_not_weights():
  x, a = jnp.ones((1, 2, 2, 2)), jnp.ones((1, 3))
  variables = fusion.FusionModule(genotype.OPS, STD, 3).init(jax.random.PRNGKey(0), x, a)
  assert set(variables) == {"params", "arch"}
  chex.assert_shape(variables["arch"]["op_logits"], (len(genotype.OPS),))
  assert "op_logits" not in variables["params"]


def test_unknown_op_is_rejected():
  with pytest.raises(ValueError, match="unknown merge op 'mul'"):
    fusion.make_op("mul", STD, 3)

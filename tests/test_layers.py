"""Building blocks: the space-to-depth stem convolution and the reshape max-pool against XLA's own ops."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from visionary_jax.nets import layers


@pytest.mark.parametrize("size,kernel,stride", [(64, 6, 2), (12, 6, 2), (18, 9, 3), (16, 3, 2), (15, 6, 2), (8, 4, 2)])
def test_strided_conv_equals_xla_conv(size, kernel, stride):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, size, size, 3))
  w = jax.random.normal(jax.random.PRNGKey(1), (kernel, kernel, 3, 5))
  expected = jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  chex.assert_trees_all_close(layers.strided_conv(x, w, stride), expected, atol=1e-4)


def test_space_to_depth_hand_computed():
  x = jnp.arange(16.0).reshape(1, 4, 4, 1)
  y = layers.space_to_depth(x, 2)
  chex.assert_shape(y, (1, 2, 2, 4))
  chex.assert_trees_all_equal(y[0, 0, 0], jnp.array([0.0, 1.0, 4.0, 5.0]))
  chex.assert_trees_all_equal(y[0, 1, 1], jnp.array([10.0, 11.0, 14.0, 15.0]))


@pytest.mark.parametrize("size,window", [(9, 3), (10, 3), (8, 2), (5, 2)])
def test_max_pool_equals_reduce_window(size, window):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, size, size, 3))
  expected = nn.max_pool(x, (window, window), strides=(window, window), padding="VALID")
  chex.assert_trees_all_equal(layers.max_pool(x, window), expected)


def test_max_pool_gradient_goes_to_the_maximum():
  x = jnp.array([[1.0, 5.0], [2.0, 3.0]]).reshape(1, 2, 2, 1)
  grad = jax.grad(lambda v: layers.max_pool(v, 2).sum())(x)
  chex.assert_trees_all_equal(grad, jnp.array([[0.0, 1.0], [0.0, 0.0]]).reshape(1, 2, 2, 1))


def test_append_coordinates_by_hand():
  x = jnp.zeros((2, 3, 2, 1))
  out = layers.append_coordinates(x)
  assert out.shape == (2, 3, 2, 3)
  np.testing.assert_allclose(out[1, :, :, 1], [[-1, 1], [-1, 1], [-1, 1]])  # x: column
  np.testing.assert_allclose(out[1, :, :, 2], [[-1, -1], [0, 0], [1, 1]])  # y: row

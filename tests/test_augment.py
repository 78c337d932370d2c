"""Random-shift augmentation of the Bellman update's images."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from visionary_jax.qtopt import augment
from visionary_jax.qtopt import update


def test_shift_hand_computed():
  image = jnp.arange(9, dtype=jnp.uint8).reshape(1, 3, 3, 1)  # rows [0 1 2] [3 4 5] [6 7 8]
  up_left = augment.shift(image, jnp.array([[0, 0]]), pad=1)  # window starts in the padding
  np.testing.assert_array_equal(up_left[0, :, :, 0], [[0, 0, 1], [0, 0, 1], [3, 3, 4]])
  down_right = augment.shift(image, jnp.array([[2, 2]]), pad=1)
  np.testing.assert_array_equal(down_right[0, :, :, 0], [[4, 5, 5], [7, 8, 8], [7, 8, 8]])
  centre = augment.shift(image, jnp.array([[1, 1]]), pad=1)
  np.testing.assert_array_equal(centre, image)
  assert up_left.dtype == jnp.uint8


def test_random_shift_offsets_cover_the_range_and_keep_shape():
  keys = jax.random.split(jax.random.PRNGKey(0), 400)
  offsets = np.asarray(augment.shift_offsets(keys, pad=2))
  assert offsets.min() == 0 and offsets.max() == 4
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (400, 8, 8, 3), dtype=np.uint8))
  shifted = augment.random_shift(images, keys, pad=2)
  chex.assert_shape(shifted, images.shape)
  chex.assert_type(shifted, jnp.uint8)
  unmoved = np.all(offsets == 2, axis=1)
  np.testing.assert_array_equal(np.asarray(shifted)[unmoved], np.asarray(images)[unmoved])
  assert not np.array_equal(np.asarray(shifted)[~unmoved], np.asarray(images)[~unmoved])


def test_zero_pad_is_identity_and_negative_pad_is_rejected():
  images = jnp.ones((2, 4, 4, 3), jnp.uint8)
  keys = jax.random.split(jax.random.PRNGKey(1), 2)
  assert augment.random_shift(images, keys, 0) is images
  with pytest.raises(ValueError, match="augment_shift"):
    augment.random_shift(images, keys, -1)


def test_augment_batch_shifts_both_images_independently():
  batch = update.random_batch(image_size=8, global_batch=64, seed=3)
  batch = {k: jnp.asarray(v[0]) for k, v in batch.items()}
  batch["next_image"] = batch["image"]
  keys = jax.random.split(jax.random.PRNGKey(2), 64)
  out = update.augment_batch(batch, keys, pad=2)
  assert not np.array_equal(out["image"], out["next_image"])
  for k in update.BATCH_KEYS:
    chex.assert_equal_shape([out[k], batch[k]])
    if k not in ("image", "next_image"):
      assert out[k] is batch[k]
  assert update.augment_batch(batch, keys, pad=0) is batch

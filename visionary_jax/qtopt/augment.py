"""Image augmentation for the Bellman update: random shifts (QT-Opt's random crops, DrQ's shifts).

Each image is padded by `pad` pixels on every side with copies of its border
pixels, and a window of the original size is cut at a random offset in
[0, 2 * pad] along each axis. Offsets are drawn per image from its own key, so
the result does not depend on how a batch is split over devices.
"""

import jax
import jax.numpy as jnp


def shift_offsets(keys: jax.Array, pad: int) -> jax.Array:
  """[B] keys -> [B, 2] integer (row, column) offsets in [0, 2 * pad]."""
  return jax.vmap(lambda k: jax.random.randint(k, (2,), 0, 2 * pad + 1))(keys)


def shift(images: jax.Array, offsets: jax.Array, pad: int) -> jax.Array:
  """Cuts images [B, H, W, C] at offsets [B, 2] out of their edge-padded copies [B, H + 2 pad, W + 2 pad, C].

  An offset of (pad, pad) returns the image unchanged; the dtype is kept.
  """
  if pad == 0:
    return images
  _, h, w, c = images.shape
  padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
  cut = lambda image, offset: jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (h, w, c))
  return jax.vmap(cut)(padded, offsets)


def random_shift(images: jax.Array, keys: jax.Array, pad: int) -> jax.Array:
  """Images [B, H, W, C] each shifted by up to `pad` pixels along each axis (edge pixels fill in)."""
  if pad < 0:
    raise ValueError(f"train config field 'augment_shift' must be >= 0 pixels, got {pad}")
  return shift(images, shift_offsets(keys, pad), pad)

"""Synthetic episodes for the shard, dataset and sampler tests (no simulator needed)."""

import numpy as np

from visionary_jax.episodes import shards


def make_episode(index: int, length: int, image_size: int = 8, success: bool = False,
                 terminated: bool = True) -> shards.Episode:
  """An episode whose frame t has every pixel = (index * 16 + t) % 256: frames identify themselves."""
  frames = np.arange(length + 1)
  image = np.broadcast_to(((index * 16 + frames) % 256).astype(np.uint8)[:, None, None, None],
                          (length + 1, image_size, image_size, 3)).copy()
  term = np.zeros(length, bool)
  term[-1] = terminated
  return shards.Episode(
      image=image,
      gripper_closed=(frames % 2).astype(np.float32),
      height=(0.3 - 0.01 * frames).astype(np.float32),
      action=np.tile(np.arange(7, dtype=np.float32) / 10, (length, 1)) + index,
      reward=np.where((np.arange(length) == length - 1) & success, 1.0, -0.01).astype(np.float32),
      terminated=term,
      truncated=~term & (np.arange(length) == length - 1),
      index=index, seed=1000 + index, success=success, scripted=index % 2 == 0,
      physics_failure=False)


def write_dataset(directory, num_episodes=10, per_shard=4, image_size=8):
  episodes = [make_episode(i, 1 + i % 5, image_size, success=i % 3 == 0)
              for i in range(num_episodes)]
  paths = []
  for start in range(0, num_episodes, per_shard):
    paths.append(shards.write_shard(str(directory), episodes[start:start + per_shard], "grasping"))
  return episodes, paths



"""Object sets of the tasks: pybullet_data's 1000 random_urdfs and the stacking blocks.

The grasping objects are split 900 / 100 by folder name as in Quillen et al.
(2018): test objects are the folders whose name ends in "0". The split is
computed by explicit filtering of folder names, not by a glob character class
(`*[^0]` is not a negation for Python's glob).
"""

import functools
import os

import pybullet_data

SPLITS = ("train", "test")
NUM_TRAIN_OBJECTS = 900
NUM_TEST_OBJECTS = 100


def data_path() -> str:
  return pybullet_data.getDataPath()


@functools.lru_cache(maxsize=None)
def _all_random_objects() -> tuple[tuple[str, str], ...]:
  """(folder name, absolute urdf path) for every random object, sorted by folder."""
  root = os.path.join(data_path(), "random_urdfs")
  pairs = []
  for folder in sorted(os.listdir(root)):
    urdf = os.path.join(root, folder, f"{folder}.urdf")
    if os.path.isfile(urdf):
      pairs.append((folder, urdf))
  if len(pairs) != NUM_TRAIN_OBJECTS + NUM_TEST_OBJECTS:
    raise RuntimeError(
        f"{root}: expected {NUM_TRAIN_OBJECTS + NUM_TEST_OBJECTS} random_urdfs folders, found {len(pairs)}")
  return tuple(pairs)


def random_objects(split: str) -> tuple[str, ...]:
  """Absolute urdf paths of the grasping objects of `split` ("train": 900, "test": 100)."""
  if split not in SPLITS:
    raise ValueError(f"object split must be one of {SPLITS}, got {split!r}")
  is_test = lambda folder: folder.endswith("0")
  return tuple(path for folder, path in _all_random_objects() if is_test(folder) == (split == "test"))


def block_urdf() -> str:
  """The stacking block: pybullet_data's 5 cm cube."""
  return os.path.join(data_path(), "cube_small.urdf")

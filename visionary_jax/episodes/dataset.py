"""A validated offline dataset: every shard of a directory, indexed by transition.

Images stay uint8. At `cpu` scale they are copied into one in-memory array; a
dataset whose images exceed `max_in_memory_gb` is served from read-only memory
maps into the shard files instead (the OS pages in what batches touch).
"""

import dataclasses
import logging
import os

import numpy as np

from visionary_jax.episodes import shards as shards_lib


@dataclasses.dataclass
class BadShard:
  path: str
  problem: str


class Dataset:
  """All transitions (s, a, r, s', done) of the valid shards in a directory."""

  def __init__(self, directory: str, image_size: int | None = None, skip_bad_shards: bool = False,
               max_in_memory_gb: float = 8.0, mmap: bool | None = None,
               verify_checksum: bool = True, camera_fov: float | None = None):
    """Validates every shard; raises ShardError naming the first bad one unless skipping.

    With a manifest.json (written when a collection completes), a listed shard
    that is missing, lacks its sidecar, holds another episode count or was
    replaced is bad too; shard files it does not list are read and reported
    (logged, and in `self.unlisted_shards`).

    Args:
      directory: the dataset directory (collector workdir's `episodes/`).
      image_size: expected image side (config.env.image_size); None accepts any, but all
        shards must agree.
      skip_bad_shards: drop invalid or missing shards, listing them in `self.bad_shards`.
      max_in_memory_gb: above this many GB of images, memory-map (when `mmap` is None).
      mmap: force memory-mapping (True) or loading (False); None decides by size.
      verify_checksum: recompute each shard's SHA-256.
      camera_fov: expected camera field of view (config.env.camera_fov); None accepts any.
    """
    self.directory = directory
    self.bad_shards: list[BadShard] = []
    paths = shards_lib.list_shards(directory)
    try:
      listed = shards_lib.read_manifest(directory)
    except shards_lib.ShardError as e:
      if not skip_bad_shards:
        raise
      logging.warning("reading without the manifest: %s", e)
      listed = None
    # Shard files present but not in manifest.json: read when complete, and reported.
    self.unlisted_shards: list[str] = []
    if listed is not None:
      problems, self.unlisted_shards = shards_lib.check_manifest(directory, listed)
      for path, problem in problems:
        if not skip_bad_shards:
          raise shards_lib.ShardError(problem)
        self.bad_shards.append(BadShard(path, problem))
        logging.warning("skipping bad shard: %s", problem)
      if self.unlisted_shards:
        logging.warning("%s: %d shard file(s) not listed in %s (read when they have a sidecar): %s", directory,
                        len(self.unlisted_shards), shards_lib.MANIFEST, ", ".join(self.unlisted_shards))
    metas, frame_arrays = [], []
    use_mmap = mmap
    if use_mmap is None:
      total_bytes = 0
      for path in paths:
        try:
          meta = shards_lib._read_sidecar(path)  # pylint: disable=protected-access
          total_bytes += meta["frames"] * meta["image_size"] ** 2 * 3
        except shards_lib.ShardError:
          pass
      use_mmap = total_bytes > max_in_memory_gb * 2**30
    self.mmap = bool(use_mmap)
    for path in paths:
      try:
        meta, arrays = shards_lib.check_shard(path, image_size, verify_checksum, mmap=self.mmap,
                                              expected_camera_fov=camera_fov)
        if listed is not None and os.path.basename(path) in listed:
          shards_lib.check_listed(path, meta, listed[os.path.basename(path)])
        if image_size is None:
          image_size = meta["image_size"]
      except shards_lib.ShardError as e:
        if not skip_bad_shards:
          raise
        self.bad_shards.append(BadShard(path, str(e)))
        logging.warning("skipping bad shard: %s", e)
        continue
      metas.append(meta)
      frame_arrays.append(arrays)
    if not metas:
      detail = f"; {len(self.bad_shards)} bad shard(s) skipped" if self.bad_shards else ""
      inner = os.path.join(directory, "episodes")
      if os.path.isdir(inner):
        detail += f"; it holds an episodes/ folder: pass {inner} (the dataset of a collect workdir)"
      raise shards_lib.ShardError(f"{directory}: empty dataset, no valid shard{detail}")
    ranges = sorted(tuple(m["episode_range"]) for m in metas)
    for (s0, e0), (s1, e1) in zip(ranges, ranges[1:]):
      if s1 < e0:
        raise shards_lib.ShardError(f"{directory}: shards [{s0}, {e0}) and [{s1}, {e1}) overlap "
                                    "(duplicate episodes)")
    self.image_size = int(image_size)
    self.shard_paths = [os.path.join(directory, m["file"]) for m in metas]
    self.num_episodes = sum(m["episodes"] for m in metas)
    self.num_transitions = sum(m["transitions"] for m in metas)

    cat = lambda k: np.concatenate([a[k] for a in frame_arrays])
    self.action = cat("action")
    self.reward = cat("reward")
    self.terminated = cat("terminated")
    self.truncated = cat("truncated")
    self.gripper_closed = cat("gripper_closed")
    self.height = cat("height")
    self.episode_length = cat("episode_length")
    self.episode_index = cat("episode_index")
    self.episode_seed = cat("episode_seed")
    self.episode_success = cat("episode_success")
    self.episode_scripted = cat("episode_scripted")
    self.physics_failure = cat("physics_failure")
    # Frame of each transition's observation: an episode's frames run from its first
    # observation, and it has one more frame than transitions.
    episode_of_transition = np.repeat(np.arange(self.num_episodes), self.episode_length)
    self.frame = (np.arange(self.num_transitions) + episode_of_transition).astype(np.int64)
    # An episode's last transition has no next action in the data (terminated or truncated).
    self.episode_end = np.zeros(self.num_transitions, bool)
    self.episode_end[np.cumsum(self.episode_length) - 1] = True
    if self.mmap:
      self._images = [a["image"] for a in frame_arrays]
      self._frame_offsets = np.cumsum([0] + [len(im) for im in self._images])
    else:
      self._images = [cat("image")]
      self._frame_offsets = np.array([0, len(self._images[0])])

  @property
  def num_frames(self) -> int:
    return int(self._frame_offsets[-1])

  def images(self, frames: np.ndarray) -> np.ndarray:
    """uint8 [len(frames), H, W, 3] for global frame indices [N]."""
    frames = np.asarray(frames, np.int64)
    if len(self._images) == 1:
      return self._images[0][frames]
    out = np.empty((len(frames), self.image_size, self.image_size, 3), np.uint8)
    shard = np.searchsorted(self._frame_offsets, frames, side="right") - 1
    for s in np.unique(shard):
      rows = np.flatnonzero(shard == s)
      local = frames[rows] - self._frame_offsets[s]
      order = np.argsort(local)  # sequential reads through the memory map
      out[rows[order]] = self._images[s][local[order]]
    return out

  def bootstraps(self, from_next_action: bool) -> np.ndarray:
    """bool [T]: transitions whose Bellman target bootstraps from s'.

    Every non-terminal transition does for a target maximised over actions;
    a target at the data's next action (`from_next_action`) also excludes each
    episode's last transition, which has none.
    """
    return ~self.terminated & ~self.episode_end if from_next_action else ~self.terminated

  def transitions(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    """Transitions [N] as arrays: images uint8 [N, H, W, 3], action and next_action [N, 7], scalars [N].

    `next_action` is the action the data took at s' (zeros at an episode's last
    transition, where `episode_end` is 1).
    """
    indices = np.asarray(indices, np.int64)
    frame = self.frame[indices]
    end = self.episode_end[indices]
    next_action = self.action[np.where(end, indices, indices + 1)]
    next_action[end] = 0.0
    return {
        "image": self.images(frame),
        "gripper_closed": self.gripper_closed[frame],
        "height": self.height[frame],
        "action": self.action[indices],
        "reward": self.reward[indices],
        "done": self.terminated[indices].astype(np.float32),
        "next_image": self.images(frame + 1),
        "next_gripper_closed": self.gripper_closed[frame + 1],
        "next_height": self.height[frame + 1],
        "next_action": next_action,
        "episode_end": end.astype(np.float32),
    }

  def episode_frames(self, episode: int) -> np.ndarray:
    """uint8 [T+1, H, W, 3] observations of the dataset's `episode`-th episode."""
    start = int(self.episode_length[:episode].sum()) + episode
    return self.images(np.arange(start, start + int(self.episode_length[episode]) + 1))


def from_config(workdir: str, config) -> Dataset:
  """The dataset in `workdir/episodes`, checked against config.env and config.replay."""
  return Dataset(os.path.join(workdir, "episodes"), int(config.env.image_size),
                 skip_bad_shards=bool(config.replay.skip_bad_shards),
                 max_in_memory_gb=float(config.replay.max_in_memory_gb),
                 camera_fov=float(config.env.camera_fov))


def check_train_dataset_dir(config) -> str:
  """config.train.dataset_dir, or a ValueError naming the field when it is empty or not a directory."""
  directory = config.train.dataset_dir
  if not directory:
    raise ValueError("train config field 'dataset_dir' is empty: pass --config.train.dataset_dir=DIR "
                     "(the episodes/ directory written by experiments/collect.py)")
  if not os.path.isdir(directory):
    raise ValueError(f"train config field 'dataset_dir': {directory} is not a directory")
  return directory


def from_train_config(config) -> Dataset:
  """The dataset at config.train.dataset_dir, read with config.network.image_size and config.replay."""
  return Dataset(check_train_dataset_dir(config), image_size=config.network.image_size,
                 skip_bad_shards=config.replay.skip_bad_shards,
                 max_in_memory_gb=config.replay.max_in_memory_gb,
                 camera_fov=float(config.env.camera_fov))


def holdout_split(data: Dataset, holdout_every: int) -> tuple[np.ndarray, np.ndarray]:
  """(training, held-out) transition indices [T_train], [T_held]: every `holdout_every`-th episode is held out."""
  if not isinstance(holdout_every, int) or holdout_every < 2:
    raise ValueError(f"config field 'holdout_every' must be an integer >= 2, got {holdout_every!r}")
  episode = np.repeat(np.arange(data.num_episodes), data.episode_length)
  held = episode % holdout_every == 0
  if held.all() or not held.any():
    raise ValueError(f"the dataset's {data.num_episodes} episodes leave no training or no held-out transitions "
                     f"with holdout_every={holdout_every}")
  return np.flatnonzero(~held), np.flatnonzero(held)

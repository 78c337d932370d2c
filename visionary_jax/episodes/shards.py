"""Episode shards: one uncompressed `.npz` of plain arrays plus a JSON sidecar each.

A shard `episodes-SSSSSSSSS-EEEEEEEEE.npz` holds the episodes with global
indices [S, E) of a dataset (layout in data/README.md). Its sidecar
`episodes-SSSSSSSSS-EEEEEEEEE.json` holds the SHA-256 and size of the `.npz`,
its counts and the image size; it is written last, so a shard without a
sidecar is an interrupted write. Both files are written atomically (temp file
in the same directory, fsync, os.replace). Nothing is pickled.

Arrays of a shard with E episodes, T transitions and F = T + E frames
(each episode stores its T_e + 1 observations once):
  image            uint8   [F, H, W, 3]
  gripper_closed   float32 [F]
  height           float32 [F]
  action           float32 [T, 7]
  reward           float32 [T]
  terminated       bool    [T]   episode ended by the task (success, grasp attempt, failure)
  truncated        bool    [T]   episode cut by the step limit
  episode_length   int32   [E]   transitions per episode
  episode_index    int64   [E]   global episode index, in [S, E)
  episode_seed     int64   [E]   env.reset seed
  episode_success  bool    [E]
  episode_scripted bool    [E]   followed the scripted policy (else uniform random)
  physics_failure  bool    [E]
"""

import dataclasses
import json
import os
import re
from typing import Any, Iterable, Sequence
import zipfile

import numpy as np

from visionary_jax import action_space
from visionary_jax import atomic
from visionary_jax import run_files

FORMAT = "visionary_jax.episodes/1"
SHARD_RE = re.compile(r"^episodes-(\d{9})-(\d{9})\.npz$")
MANIFEST = "manifest.json"
# Sidecars written before they recorded the camera were rendered with this field of view.
LEGACY_CAMERA_FOV = 40.0

_FRAME_ARRAYS = {"image": np.uint8, "gripper_closed": np.float32, "height": np.float32}
_TRANSITION_ARRAYS = {"action": np.float32, "reward": np.float32, "terminated": np.bool_,
                      "truncated": np.bool_}
_EPISODE_ARRAYS = {"episode_length": np.int32, "episode_index": np.int64,
                   "episode_seed": np.int64, "episode_success": np.bool_,
                   "episode_scripted": np.bool_, "physics_failure": np.bool_}
ARRAYS = {**_FRAME_ARRAYS, **_TRANSITION_ARRAYS, **_EPISODE_ARRAYS}
_SIDECAR_FIELDS = ("format", "file", "sha256", "bytes", "episodes", "transitions", "frames",
                   "image_size", "episode_range", "successes", "task", "config_seed")


class ShardError(ValueError):
  """A shard or dataset directory is invalid; the message names the file and the problem."""


@dataclasses.dataclass
class Episode:
  """One episode: T transitions, T + 1 observations."""
  image: np.ndarray  # uint8 [T+1, H, W, 3]
  gripper_closed: np.ndarray  # float32 [T+1]
  height: np.ndarray  # float32 [T+1]
  action: np.ndarray  # float32 [T, 7]
  reward: np.ndarray  # float32 [T]
  terminated: np.ndarray  # bool [T]
  truncated: np.ndarray  # bool [T]
  index: int
  seed: int
  success: bool
  scripted: bool
  physics_failure: bool

  @property
  def length(self) -> int:
    return len(self.action)


def shard_name(start: int, end: int) -> str:
  return f"episodes-{start:09d}-{end:09d}.npz"


def sidecar_path(shard_path: str) -> str:
  return shard_path[:-len(".npz")] + ".json"


def write_shard(directory: str, episodes: Sequence[Episode], task: str, config_seed: int = 0,
                camera_fov: float = LEGACY_CAMERA_FOV) -> str:
  """Writes the episodes (contiguous global indices) as one shard; returns the .npz path."""
  if not episodes:
    raise ValueError("write_shard needs at least one episode")
  indices = [e.index for e in episodes]
  if indices != list(range(indices[0], indices[0] + len(indices))):
    raise ValueError(f"shard episodes must have contiguous indices, got {indices}")
  for e in episodes:
    t = e.length
    if t < 1 or len(e.image) != t + 1 or len(e.height) != t + 1 or len(e.gripper_closed) != t + 1:
      raise ValueError(f"episode {e.index}: need T >= 1 transitions and T + 1 frames, got "
                       f"{t} actions and {len(e.image)} images")
  arrays = {
      "image": np.concatenate([e.image for e in episodes]),
      "gripper_closed": np.concatenate([e.gripper_closed for e in episodes]),
      "height": np.concatenate([e.height for e in episodes]),
      "action": np.concatenate([e.action for e in episodes]),
      "reward": np.concatenate([e.reward for e in episodes]),
      "terminated": np.concatenate([e.terminated for e in episodes]),
      "truncated": np.concatenate([e.truncated for e in episodes]),
      "episode_length": np.array([e.length for e in episodes]),
      "episode_index": np.array(indices),
      "episode_seed": np.array([e.seed for e in episodes]),
      "episode_success": np.array([e.success for e in episodes]),
      "episode_scripted": np.array([e.scripted for e in episodes]),
      "physics_failure": np.array([e.physics_failure for e in episodes]),
  }
  arrays = {k: np.ascontiguousarray(v, ARRAYS[k]) for k, v in arrays.items()}
  path = os.path.join(directory, shard_name(indices[0], indices[-1] + 1))
  atomic.write(path, lambda f: np.savez(f, **arrays))
  sidecar = {
      "format": FORMAT,
      "file": os.path.basename(path),
      "sha256": run_files.file_sha256(path),
      "bytes": os.path.getsize(path),
      "episodes": len(episodes),
      "transitions": int(arrays["action"].shape[0]),
      "frames": int(arrays["image"].shape[0]),
      "image_size": int(arrays["image"].shape[1]),
      "episode_range": [indices[0], indices[-1] + 1],
      "successes": int(arrays["episode_success"].sum()),
      "task": task,
      "config_seed": int(config_seed),
      "camera_fov": float(camera_fov),
  }
  atomic.write_json(sidecar_path(path), sidecar)
  return path


def _read_sidecar(path: str) -> dict[str, Any]:
  side = sidecar_path(path)
  if not os.path.exists(side):
    raise ShardError(f"{side}: missing sidecar (the shard's write did not finish)")
  try:
    with open(side) as f:
      meta = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ShardError(f"{side}: unreadable sidecar JSON: {e}") from e
  if not isinstance(meta, dict):
    raise ShardError(f"{side}: sidecar must be a JSON object")
  missing = [k for k in _SIDECAR_FIELDS if k not in meta]
  if missing:
    raise ShardError(f"{side}: sidecar lacks field(s) {missing}")
  if meta["format"] != FORMAT:
    raise ShardError(f"{side}: format {meta['format']!r}, expected {FORMAT!r}")
  if meta["file"] != os.path.basename(path):
    raise ShardError(f"{side}: names file {meta['file']!r}, expected {os.path.basename(path)!r}")
  return meta


def camera_fov(meta: dict[str, Any]) -> float:
  """The camera field of view a shard's episodes were rendered with, degrees."""
  fov = meta.get("camera_fov", LEGACY_CAMERA_FOV)
  if isinstance(fov, bool) or not isinstance(fov, (int, float)):
    raise ShardError(f"{meta.get('file')}: sidecar field camera_fov must be a number, got {fov!r}")
  return float(fov)


def check_shard(path: str, image_size: int | None = None, verify_checksum: bool = True,
                mmap: bool = False, expected_camera_fov: float | None = None,
                ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
  """Validates a shard and returns (sidecar, arrays); raises ShardError naming file and problem.

  With `mmap` the image array is a read-only memory map into the .npz file. With
  `expected_camera_fov` (config.env.camera_fov) a shard rendered through another camera is refused.
  """
  if not os.path.exists(path):
    raise ShardError(f"{path}: shard file does not exist")
  meta = _read_sidecar(path)
  fov = camera_fov(meta)
  if expected_camera_fov is not None and fov != float(expected_camera_fov):
    raise ShardError(f"{path}: rendered with camera_fov {fov}, the config's env.camera_fov is "
                     f"{float(expected_camera_fov)}")
  size = os.path.getsize(path)
  if size != meta["bytes"]:
    raise ShardError(f"{path}: truncated or overwritten: {size} bytes, sidecar says {meta['bytes']}")
  if verify_checksum and run_files.file_sha256(path) != meta["sha256"]:
    raise ShardError(f"{path}: checksum mismatch (sha256 differs from the sidecar's)")
  try:
    with np.load(path, allow_pickle=False) as npz:
      names = set(npz.files)
      missing = sorted(set(ARRAYS) - names)
      if missing:
        raise ShardError(f"{path}: missing array(s) {missing}")
      arrays = {k: (None if (mmap and k == "image") else npz[k]) for k in ARRAYS}
  except ShardError:
    raise
  except Exception as e:  # zipfile / npy header errors on corrupt bytes
    raise ShardError(f"{path}: corrupt shard, cannot be read: {type(e).__name__}: {e}") from e
  if mmap:
    arrays["image"] = npz_memmap(path, "image")
  for k, dtype in ARRAYS.items():
    if arrays[k].dtype != dtype:
      raise ShardError(f"{path}: array {k!r} has dtype {arrays[k].dtype}, expected "
                       f"{np.dtype(dtype)}")
  _check_consistency(path, meta, arrays, image_size)
  return meta, arrays


def _check_consistency(path, meta, a, image_size):
  e = len(a["episode_length"])
  t = len(a["action"])
  f = len(a["image"])
  if e == 0:
    raise ShardError(f"{path}: shard holds no episodes")
  if a["image"].ndim != 4 or a["image"].shape[3] != 3 or a["image"].shape[1] != a["image"].shape[2]:
    raise ShardError(f"{path}: images must be [F, H, H, 3], got {a['image'].shape}")
  if image_size is not None and a["image"].shape[1] != image_size:
    raise ShardError(f"{path}: wrong image size {a['image'].shape[1]}x{a['image'].shape[2]}, the "
                     f"config's env.image_size is {image_size}")
  if a["action"].shape != (t, action_space.ACTION_DIM):
    raise ShardError(f"{path}: actions must be [T, {action_space.ACTION_DIM}], got "
                     f"{a['action'].shape}")
  for k in _TRANSITION_ARRAYS:
    if a[k].shape[0] != t or (k != "action" and a[k].ndim != 1):
      raise ShardError(f"{path}: array {k!r} has shape {a[k].shape}, expected [{t}]")
  for k in ("gripper_closed", "height"):
    if a[k].shape != (f,):
      raise ShardError(f"{path}: array {k!r} has shape {a[k].shape}, expected [{f}]")
  for k in _EPISODE_ARRAYS:
    if a[k].shape != (e,):
      raise ShardError(f"{path}: array {k!r} has shape {a[k].shape}, expected [{e}]")
  if np.any(a["episode_length"] < 1) or int(a["episode_length"].sum()) != t:
    raise ShardError(f"{path}: episode lengths sum to {int(a['episode_length'].sum())}, "
                     f"but there are {t} transitions")
  if f != t + e:
    raise ShardError(f"{path}: {f} frames, expected transitions + episodes = {t + e}")
  for k in ("reward", "action", "height", "gripper_closed"):
    bad = ~np.isfinite(a[k])
    if np.any(bad):
      raise ShardError(f"{path}: NaN or infinite {k} at row {int(np.argwhere(bad)[0][0])}")
  start, end = meta["episode_range"]
  if a["episode_index"].tolist() != list(range(start, end)):
    raise ShardError(f"{path}: episode indices do not cover the range [{start}, {end})")
  counts = {"episodes": e, "transitions": t, "frames": f, "image_size": a["image"].shape[1],
            "successes": int(a["episode_success"].sum())}
  for k, v in counts.items():
    if meta[k] != v:
      raise ShardError(f"{path}: sidecar says {k}={meta[k]}, the arrays have {v}")
  ends = np.cumsum(a["episode_length"]) - 1
  if np.any(a["terminated"][:-1] & ~np.isin(np.arange(t - 1), ends)):
    raise ShardError(f"{path}: a terminal transition is not the last of its episode")


def npz_memmap(path: str, key: str) -> np.memmap:
  """Read-only memory map of array `key` stored uncompressed in the .npz at `path`."""
  with zipfile.ZipFile(path) as z:
    info = z.getinfo(f"{key}.npy")
  if info.compress_type != zipfile.ZIP_STORED:
    raise ShardError(f"{path}: array {key!r} is compressed and cannot be memory-mapped")
  with open(path, "rb") as f:
    f.seek(info.header_offset)
    local = f.read(30)
    if local[:4] != b"PK\x03\x04":
      raise ShardError(f"{path}: corrupt zip entry for {key!r}")
    name_len = int.from_bytes(local[26:28], "little")
    extra_len = int.from_bytes(local[28:30], "little")
    f.seek(info.header_offset + 30 + name_len + extra_len)
    version = np.lib.format.read_magic(f)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                   np.lib.format.read_array_header_2_0)
    shape, fortran, dtype = read_header(f)
    offset = f.tell()
  if fortran:
    raise ShardError(f"{path}: array {key!r} is Fortran-ordered")
  return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


def list_shards(directory: str) -> list[str]:
  """Complete shards (with a sidecar) in `directory`, sorted by episode range."""
  if not os.path.isdir(directory):
    raise ShardError(f"{directory}: dataset directory does not exist")
  paths = [os.path.join(directory, n) for n in sorted(os.listdir(directory)) if SHARD_RE.match(n)]
  return [p for p in paths if os.path.exists(sidecar_path(p))]


def shard_range(path: str) -> tuple[int, int]:
  m = SHARD_RE.match(os.path.basename(path))
  if m is None:
    raise ShardError(f"{path}: not a shard file name (episodes-SSSSSSSSS-EEEEEEEEE.npz)")
  return int(m.group(1)), int(m.group(2))


def write_manifest(directory: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
  """Lists every complete shard's sidecar (checksum, counts) in `directory/manifest.json`."""
  shards = [meta for _, meta in iter_sidecars(directory)]
  manifest = {
      "format": FORMAT,
      "shards": shards,
      "episodes": sum(s["episodes"] for s in shards),
      "transitions": sum(s["transitions"] for s in shards),
      "successes": sum(s["successes"] for s in shards),
      **(extra or {}),
  }
  atomic.write_json(os.path.join(directory, MANIFEST), manifest)
  return manifest


def read_manifest(directory: str) -> dict[str, dict[str, Any]] | None:
  """{shard file name: its listed sidecar} of `directory`/manifest.json, None when there is no manifest."""
  path = os.path.join(directory, MANIFEST)
  if not os.path.exists(path):
    return None
  try:
    manifest = run_files.read_json(path, MANIFEST)
  except ValueError as e:
    raise ShardError(str(e)) from None
  if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("shards"), list):
    raise ShardError(f"{path}: not a {FORMAT} manifest with a 'shards' list")
  listed = {}
  for entry in manifest["shards"]:
    if (not isinstance(entry, dict) or not SHARD_RE.match(str(entry.get("file"))) or
        isinstance(entry.get("episodes"), bool) or not isinstance(entry.get("episodes"), int) or
        not isinstance(entry.get("sha256"), str)):
      raise ShardError(f"{path}: shard entry {str(entry)[:200]} lacks a shard file name, episode count or sha256")
    listed[entry["file"]] = entry
  return listed


def check_manifest(directory: str, listed: dict[str, dict[str, Any]]) -> tuple[list[tuple[str, str]], list[str]]:
  """Compares the shard files of `directory` with its manifest's `listed` shards.

  Returns:
    (problems, unlisted): (shard path, message) for every listed shard whose .npz or
    sidecar is missing; the names of the shard files present but not listed.
  """
  problems = []
  for name in sorted(listed):
    path = os.path.join(directory, name)
    if not os.path.exists(path):
      problems.append((path, f"{path}: listed in {MANIFEST} but missing"))
    elif not os.path.exists(sidecar_path(path)):
      problems.append((path, f"{sidecar_path(path)}: sidecar of a shard listed in {MANIFEST} is missing"))
  unlisted = [n for n in sorted(os.listdir(directory)) if SHARD_RE.match(n) and n not in listed]
  return problems, unlisted


def check_listed(path: str, meta: dict[str, Any], entry: dict[str, Any]) -> None:
  """Raises ShardError when a checked shard's sidecar `meta` disagrees with its manifest `entry`."""
  if meta["episodes"] != entry["episodes"]:
    raise ShardError(f"{path}: holds {meta['episodes']} episodes, {MANIFEST} lists {entry['episodes']}")
  if meta["sha256"] != entry["sha256"]:
    raise ShardError(f"{path}: sha256 differs from the one {MANIFEST} lists (the shard was replaced)")


def iter_sidecars(directory: str) -> Iterable[tuple[str, dict[str, Any]]]:
  """(sidecar path, checked sidecar dict) of every complete shard in `directory`."""
  for path in list_shards(directory):
    yield sidecar_path(path), _read_sidecar(path)

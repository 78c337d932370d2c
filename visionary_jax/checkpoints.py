"""Checkpoints of a training run: the train state and the host state, through orbax's CheckpointManager.

A checkpoint at step k holds
  state  every leaf of the TrainState (weights, architecture logits, both
         targets, optimiser state, step, RNG), as a flat {name: array} dict
         whose names are the leaves' pytree paths ("params.conv1.kernel");
  host   JSON: the replay sampler's position and what the run was made for;
  checksums.json
         the SHA-256 and size of every file of `state` and `host`, and the
         SHA-256 of every leaf's bytes, written atomically once the save is
         complete.
Orbax writes each step into a temporary directory and renames it when
complete, so a run killed mid-write leaves the previous checkpoint as the
latest. Restoring first checks every file against checksums.json (so damaged
bytes never reach the reader), then every restored leaf; a checkpoint that
fails is `CheckpointDamaged`, and `restore_latest` falls back to the newest
good one. Restoring matches leaves by name against a template state, so a
checkpoint of another architecture fails with the names that differ.
"""

import hashlib
import logging
import os
from typing import Any, Callable

import jax
import numpy as np
import orbax.checkpoint as ocp

from visionary_jax import atomic
from visionary_jax import run_files

CHECKSUMS = "checksums.json"
CHECKSUMS_FORMAT = "visionary_jax.checkpoint_checksums/1"
_ITEMS = ("state", "host")


class CheckpointDamaged(ValueError):
  """A checkpoint's bytes differ from what was written; the message names its directory and the problem."""


def _name(path) -> str:
  parts = []
  for entry in path:
    if isinstance(entry, jax.tree_util.DictKey):
      part = str(entry.key)
    elif isinstance(entry, jax.tree_util.GetAttrKey):
      part = entry.name
    elif isinstance(entry, jax.tree_util.SequenceKey):
      part = str(entry.idx)
    else:
      part = str(entry)
    if "." in part:
      raise ValueError(f"pytree key {part!r} contains '.', which checkpoint leaf names use as separator")
    parts.append(part)
  return ".".join(parts)


def flatten(tree) -> dict[str, np.ndarray]:
  """{dotted path: host array} for every leaf of a pytree."""
  return {_name(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def unflatten(template, flat: dict[str, Any], where: str):
  """The template's structure filled with `flat`'s arrays; every mismatch is a ValueError naming leaves."""
  paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
  names = [_name(p) for p, _ in paths_leaves]
  missing = [n for n in names if n not in flat]
  extra = sorted(set(flat) - set(names))
  if missing or extra:
    raise ValueError(f"{where} does not fit this run's train state (another architecture, search space or "
                     f"optimiser?): missing leaves {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
                     f"unexpected leaves {extra[:5]}{' ...' if len(extra) > 5 else ''}")
  leaves = []
  for name, (_, like) in zip(names, paths_leaves):
    value = np.asarray(flat[name])
    like = np.asarray(like)
    if value.shape != like.shape or value.dtype != like.dtype:
      raise ValueError(f"{where}: leaf {name} is {value.dtype}{list(value.shape)}, this run needs "
                       f"{like.dtype}{list(like.shape)}")
    leaves.append(value)
  return jax.tree_util.tree_unflatten(treedef, leaves)


def leaf_sha256(value: np.ndarray) -> str:
  """SHA-256 of an array's bytes in C order."""
  return hashlib.sha256(np.ascontiguousarray(value).reshape(-1).view(np.uint8)).hexdigest()


def _item_files(step_dir: str) -> list[str]:
  """Paths, relative to `step_dir`, of every file of the checkpoint's items."""
  out = []
  for item in _ITEMS:
    for root, _, names in os.walk(os.path.join(step_dir, item)):
      out.extend(os.path.relpath(os.path.join(root, n), step_dir) for n in names)
  return sorted(out)


def write_checksums(step_dir: str, flat: dict[str, np.ndarray]) -> None:
  """Writes `step_dir`/checksums.json: size and SHA-256 of each item file, SHA-256 of each leaf of `flat`."""
  files = {}
  for rel in _item_files(step_dir):
    path = os.path.join(step_dir, rel)
    files[rel] = {"bytes": os.path.getsize(path), "sha256": run_files.file_sha256(path)}
  atomic.write_json(os.path.join(step_dir, CHECKSUMS), {
      "format": CHECKSUMS_FORMAT, "files": files, "leaves": {k: leaf_sha256(v) for k, v in flat.items()}})


def read_checksums(step_dir: str) -> dict[str, Any] | None:
  """The checked checksums.json of a checkpoint, None when it has none; CheckpointDamaged when unreadable."""
  path = os.path.join(step_dir, CHECKSUMS)
  if not os.path.exists(path):
    return None
  try:
    sums = run_files.read_json(path, CHECKSUMS)
  except ValueError as e:
    raise CheckpointDamaged(f"checkpoint {step_dir} is damaged: {e}") from None
  if (not isinstance(sums, dict) or sums.get("format") != CHECKSUMS_FORMAT
      or not isinstance(sums.get("files"), dict) or not isinstance(sums.get("leaves"), dict)):
    raise CheckpointDamaged(f"checkpoint {step_dir} is damaged: {CHECKSUMS} is not a {CHECKSUMS_FORMAT} "
                            "object with 'files' and 'leaves'")
  return sums


def verify_files(step_dir: str, sums: dict[str, Any]) -> None:
  """Raises CheckpointDamaged naming the first item file that is missing or differs from `sums`."""
  where = f"checkpoint {step_dir} is damaged"
  for rel, expected in sorted(sums["files"].items()):
    path = os.path.join(step_dir, rel)
    if not isinstance(expected, dict):
      raise CheckpointDamaged(f"{where}: {CHECKSUMS} entry of file {rel} is not an object")
    if not os.path.isfile(path):
      raise CheckpointDamaged(f"{where}: file {rel} is missing")
    size = os.path.getsize(path)
    if size != expected.get("bytes"):
      raise CheckpointDamaged(f"{where}: file {rel} has {size} bytes, {CHECKSUMS} says {expected.get('bytes')}")
    if run_files.file_sha256(path) != expected.get("sha256"):
      raise CheckpointDamaged(f"{where}: file {rel} differs from its checksum in {CHECKSUMS}")


def verify_leaves(step_dir: str, sums: dict[str, Any], flat: dict[str, np.ndarray]) -> None:
  """Raises CheckpointDamaged naming the first restored leaf whose bytes differ from `sums`."""
  for name, value in flat.items():
    if sums["leaves"].get(name) != leaf_sha256(value):
      raise CheckpointDamaged(f"checkpoint {step_dir} is damaged: restored leaf {name} differs from its "
                              f"checksum in {CHECKSUMS}")


class Checkpoints:
  """Periodic checkpoints in `directory`, keeping the newest `keep`."""

  def __init__(self, directory: str, keep: int):
    if not isinstance(keep, int) or keep < 1:
      raise ValueError(f"train config field 'keep_checkpoints' must be a positive integer, got {keep!r}")
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False,
                                           cleanup_tmp_directories=True)
    self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=_ITEMS)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def step_directory(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def save(self, step: int, state, host: dict[str, Any]) -> None:
    """Writes step `step` (blocking), then its checksums: state is a host-side TrainState, host a JSON dict."""
    flat = flatten(state)
    self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(flat),
                                                     host=ocp.args.JsonSave(host)), force=True)
    self._manager.wait_until_finished()
    write_checksums(self.step_directory(step), flat)

  def restore(self, step: int, template) -> tuple[Any, dict[str, Any]]:
    """(state shaped like `template`, host dict) of step `step`; CheckpointDamaged when its bytes differ."""
    step_dir = self.step_directory(step)
    where = f"checkpoint {step_dir}"
    sums = read_checksums(step_dir)
    if sums is None:
      logging.warning("%s carries no %s; restoring it unverified", where, CHECKSUMS)
    else:
      verify_files(step_dir, sums)
    abstract = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in flatten(template).items()}
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                                     host=ocp.args.JsonRestore()))
    except Exception as e:  # pylint: disable=broad-except
      # Orbax's own message for a tree mismatch is long; report ours when the names differ.
      try:
        saved = self._manager.item_metadata(step)["state"]
        names = set(saved.keys()) if hasattr(saved, "keys") else None
      except Exception:  # pylint: disable=broad-except
        names = None
      if names is not None and names != set(abstract):
        unflatten(template, {n: None for n in names}, where)
      reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
      if sums is None:  # unverified bytes: a read error is most likely damage
        raise CheckpointDamaged(f"{where} is damaged: it could not be read: {reason}") from None
      raise ValueError(f"{where} could not be read: {reason}") from None
    state = unflatten(template, restored["state"], where)
    if sums is not None:
      verify_leaves(step_dir, sums, flatten(state))
    return state, dict(restored["host"])

  def restore_latest(self, template, log: Callable[[str], None] = print) -> tuple[int, Any, dict[str, Any]] | None:
    """(step, state, host) of the newest good checkpoint, None when there is none.

    Damaged checkpoints newer than it are moved to `damaged_directory` and
    reported, one line each; when every checkpoint is damaged, nothing is moved
    and CheckpointDamaged lists them.
    """
    damaged = []
    for step in sorted(self.all_steps(), reverse=True):
      try:
        state, host = self.restore(step, template)
      except CheckpointDamaged as e:
        damaged.append((step, e))
        continue
      for bad_step, e in damaged:
        log(f"{e}; moved it to {self._set_aside(bad_step)} and falling back to step {step}")
      if damaged:
        self._manager.reload()
      return step, state, host
    if damaged:
      raise CheckpointDamaged(f"no good checkpoint in {self.directory}: " + "; ".join(str(e) for _, e in damaged)
                              + f". Move {self.directory} aside to start the run over")
    return None

  @property
  def damaged_directory(self) -> str:
    return self.directory + "_damaged"

  def _set_aside(self, step: int) -> str:
    """Moves step `step`'s directory into `damaged_directory` (never over an earlier one); returns where."""
    os.makedirs(self.damaged_directory, exist_ok=True)
    dest, n = os.path.join(self.damaged_directory, str(step)), 1
    while os.path.exists(dest):
      dest, n = os.path.join(self.damaged_directory, f"{step}.{n}"), n + 1
    os.rename(self.step_directory(step), dest)
    return dest

  def close(self):
    self._manager.close()

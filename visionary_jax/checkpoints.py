"""Checkpoints of a training run: the train state and the host state, through orbax's CheckpointManager.

A checkpoint at step k holds
  state  every leaf of the TrainState (weights, architecture logits, both
         targets, optimiser state, step, RNG), as a flat {name: array} dict
         whose names are the leaves' pytree paths ("params.conv1.kernel");
  host   JSON: the replay sampler's position and what the run was made for.
Orbax writes each step into a temporary directory and renames it when
complete, so a run killed mid-write leaves the previous checkpoint as the
latest. Restoring matches leaves by name against a template state, so a
checkpoint of another architecture fails with the names that differ.
"""

import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


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


class Checkpoints:
  """Periodic checkpoints in `directory`, keeping the newest `keep`."""

  def __init__(self, directory: str, keep: int):
    if not isinstance(keep, int) or keep < 1:
      raise ValueError(f"train config field 'keep_checkpoints' must be a positive integer, got {keep!r}")
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False,
                                           cleanup_tmp_directories=True)
    self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "host"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state, host: dict[str, Any]) -> None:
    """Writes step `step` (blocking): state is a host-side TrainState, host a JSON-serialisable dict."""
    self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(flatten(state)),
                                                     host=ocp.args.JsonSave(host)), force=True)
    self._manager.wait_until_finished()

  def restore(self, step: int, template) -> tuple[Any, dict[str, Any]]:
    """(state shaped like `template`, host dict) of step `step`."""
    where = f"checkpoint {os.path.join(self.directory, str(step))}"
    abstract = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in flatten(template).items()}
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                                     host=ocp.args.JsonRestore()))
    except (ValueError, KeyError, FileNotFoundError) as e:
      # Orbax's own message for a tree mismatch is long; report ours when the names differ.
      try:
        saved = self._manager.item_metadata(step)["state"]
        names = set(saved.keys()) if hasattr(saved, "keys") else None
      except Exception:  # pylint: disable=broad-except
        names = None
      if names is not None and names != set(abstract):
        unflatten(template, {n: None for n in names}, where)
      raise ValueError(f"{where} could not be read: {e}") from None
    state = unflatten(template, restored["state"], where)
    return state, dict(restored["host"])

  def close(self):
    self._manager.close()

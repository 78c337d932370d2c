"""Replay over a Dataset: deterministic, resumable, prefetched, sharded for pmap.

Every device's slice of a batch is stratified: its first `bootstrap_per_device`
transitions are drawn uniformly from those whose target bootstraps from s'
(`Dataset.bootstraps`), the rest uniformly from the others (in grasping, the
grasp attempts), so the update computes next-state values for a fixed number
of transitions and keeps one static shape. The split follows the dataset's own
proportion, which is uniform sampling in expectation; with `terminal_fraction`
f > 0 a fraction f of every slice (rounded) is drawn from the non-bootstrapping
transitions instead, which reweights the Bellman loss towards them with no
importance correction. With `subset`, both strata come from those
transitions only (the evolution's training episodes).

Batch k of a sampler with seed s draws its transitions with
`np.random.default_rng([s, k])`, so a batch depends only on (seed, k): the
position k saved with a checkpoint restores the exact stream. Batches come out
reshaped to [num_devices, batch_size / num_devices, ...].
"""

import queue
import threading
from typing import Any

import numpy as np

from visionary_jax.episodes import dataset as dataset_lib


class ReplaySampler:
  """Iterator of host batches of transitions; see the module docstring."""

  def __init__(self, dataset: dataset_lib.Dataset, batch_size: int, num_devices: int = 1,
               seed: int = 0, prefetch: int = 4, position: int = 0, terminal_fraction: float = 0.0,
               bootstrap_from_next_action: bool = False, subset: np.ndarray | None = None):
    if batch_size < 1:
      raise ValueError(f"replay.batch_size must be >= 1, got {batch_size}")
    if num_devices < 1 or batch_size % num_devices:
      raise ValueError(f"replay.batch_size {batch_size} is not divisible by the {num_devices} "
                       "local devices")
    if prefetch < 0:
      raise ValueError(f"replay.prefetch must be >= 0, got {prefetch}")
    if not 0.0 <= terminal_fraction <= 1.0:
      raise ValueError(f"replay.terminal_fraction must be in [0, 1], got {terminal_fraction}")
    self.terminal_fraction = float(terminal_fraction)
    self.bootstrap_from_next_action = bool(bootstrap_from_next_action)
    bootstraps = dataset.bootstraps(self.bootstrap_from_next_action)
    candidates = np.arange(dataset.num_transitions) if subset is None else np.unique(np.asarray(subset, np.int64))
    if not len(candidates):
      raise ValueError("a replay subset needs at least one transition")
    if candidates[0] < 0 or candidates[-1] >= dataset.num_transitions:
      raise ValueError(f"replay subset indices must be in [0, {dataset.num_transitions})")
    self._bootstrap = candidates[bootstraps[candidates]]
    self._no_bootstrap = candidates[~bootstraps[candidates]]
    self.subset_size = None if subset is None else len(candidates)
    if terminal_fraction and not len(self._no_bootstrap):
      raise ValueError("replay.terminal_fraction > 0 but the dataset has no terminal transitions")
    per_device = batch_size // num_devices
    share = 1.0 - self.terminal_fraction if terminal_fraction else len(self._bootstrap) / len(candidates)
    self.bootstrap_per_device = int(round(share * per_device))
    if self.bootstrap_per_device and not len(self._bootstrap):
      raise ValueError("replay.terminal_fraction < 1 but no transition of the dataset bootstraps")
    self.dataset = dataset
    self.batch_size = int(batch_size)
    self.num_devices = int(num_devices)
    self.seed = int(seed)
    self.prefetch = int(prefetch)
    self._position = int(position)  # index of the next batch handed out
    self._queue: queue.Queue | None = None
    self._thread: threading.Thread | None = None
    self._stop = threading.Event()

  def indices(self, k: int) -> np.ndarray:
    """Transition indices [batch_size] of batch k."""
    rng = np.random.default_rng([self.seed, k])
    n = self.bootstrap_per_device
    rest = self.batch_size // self.num_devices - n
    slices = []
    for _ in range(self.num_devices):
      slices.append(self._bootstrap[rng.integers(0, len(self._bootstrap), n)])
      slices.append(self._no_bootstrap[rng.integers(0, max(len(self._no_bootstrap), 1), rest)])
    return np.concatenate(slices)

  def batch(self, k: int) -> dict[str, np.ndarray]:
    """Batch k: every array shaped [num_devices, batch_size / num_devices, ...]."""
    flat = self.dataset.transitions(self.indices(k))
    n = self.num_devices
    return {key: v.reshape((n, self.batch_size // n) + v.shape[1:]) for key, v in flat.items()}

  # Iteration with a background producer.

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    if self.prefetch == 0:
      out = self.batch(self._position)
    else:
      if self._thread is None:
        self._start()
      k, out = self._queue.get()
      if isinstance(out, BaseException):
        raise RuntimeError(f"replay prefetch thread failed on batch {k}") from out
      assert k == self._position, (k, self._position)
    self._position += 1
    return out

  def _start(self):
    self._stop.clear()
    self._queue = queue.Queue(maxsize=self.prefetch)
    start = self._position

    def produce():
      k = start
      while not self._stop.is_set():
        try:
          item = (k, self.batch(k))
        except BaseException as e:  # handed to the consumer, which re-raises
          item = (k, e)
        while not self._stop.is_set():
          try:
            self._queue.put(item, timeout=0.1)
            break
          except queue.Full:
            continue
        if isinstance(item[1], BaseException):
          return
        k += 1

    self._thread = threading.Thread(target=produce, name="replay-prefetch", daemon=True)
    self._thread.start()

  def close(self):
    """Stops the prefetch thread (batches already prepared are dropped)."""
    if self._thread is not None:
      self._stop.set()
      self._thread.join()
      self._thread = None
      self._queue = None

  # Position for checkpoints.

  def state(self) -> dict[str, Any]:
    """JSON-serialisable position: store it with the train state."""
    state = {"seed": self.seed, "position": self._position, "batch_size": self.batch_size,
             "num_transitions": self.dataset.num_transitions}
    if self.terminal_fraction:  # absent when 0, so checkpoints written before the field resume
      state["terminal_fraction"] = self.terminal_fraction
    if self.bootstrap_from_next_action:
      state["bootstrap_from_next_action"] = True
    if self.subset_size is not None:
      state["subset_size"] = self.subset_size
    return state

  def restore(self, state: dict[str, Any]):
    """Continues from a saved `state()`; refuses a different seed, batch size or dataset."""
    for key in ("seed", "batch_size", "num_transitions", "terminal_fraction", "bootstrap_from_next_action",
                "subset_size"):
      mine = self.state().get(key)
      if state.get(key) != mine:
        raise ValueError(f"replay state field {key!r} is {state.get(key)!r}, this sampler has "
                         f"{mine!r}")
    position = state.get("position")
    if not isinstance(position, int) or position < 0:
      raise ValueError(f"replay state field 'position' must be an int >= 0, got {position!r}")
    self.close()
    self._position = position

  def __del__(self):
    try:
      self.close()
    except Exception:  # pylint: disable=broad-except
      pass


def from_config(dataset: dataset_lib.Dataset, replay_config, seed: int, num_devices: int = 1,
                position: int = 0, bootstrap_from_next_action: bool = False,
                subset: np.ndarray | None = None) -> ReplaySampler:
  """A sampler from a config's `replay` section (experiments/configs/base.py:replay).

  `bootstrap_from_next_action`: the target bootstraps at the data's next action
  (train.target "data" or "local"), so episode ends do not bootstrap. `subset`: transition
  indices to draw from (default all).
  """
  return ReplaySampler(dataset, int(replay_config.batch_size), num_devices, seed,
                       int(replay_config.prefetch), position, float(replay_config.terminal_fraction),
                       bootstrap_from_next_action, subset)

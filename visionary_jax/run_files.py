"""Run-file helpers of the search and study stages (visionary_jax.search, .study), shards and checkpoints.

Reading a run's JSON files with errors that name them, adding a stage's wall time
to its timing.json, the step a trainer workdir exported, and the config of one
training stage.
"""

import contextlib
import hashlib
import json
import os
import threading
import time
from typing import Any, Callable, Iterator

import ml_collections

from visionary_jax import atomic

Log = Callable[[str], None]
TIMING_JSON = "timing.json"


def read_json(path: str, what: str) -> Any:
  """Parsed JSON; a missing or malformed file is a ValueError naming `what` and the path."""
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    raise ValueError(f"{what}: {path} does not exist") from None
  except json.JSONDecodeError as e:
    raise ValueError(f"{what}: {path} is malformed JSON ({e})") from None


def file_sha256(path: str) -> str:
  """Hex SHA-256 of a file's bytes, read in blocks."""
  with open(path, "rb") as f:
    return hashlib.file_digest(f, "sha256").hexdigest()


@contextlib.contextmanager
def timed(directory: str, flush_seconds: float = 60.0) -> Iterator[None]:
  """Adds the wall time of the block to `directory/timing.json` ({"seconds", "invocations"}).

  The file is rewritten every `flush_seconds` while the block runs, so a
  process killed with SIGKILL (a pre-empted job, a session's end) loses at
  most that much of its share.
  """
  path = os.path.join(directory, TIMING_JSON)
  before = read_json(path, "timing") if os.path.exists(path) else {"seconds": 0.0, "invocations": 0}
  start = time.perf_counter()

  def write():
    atomic.write_json(path, {"seconds": before["seconds"] + time.perf_counter() - start,
                             "invocations": before["invocations"] + 1})

  stop = threading.Event()

  def flush_periodically():
    while not stop.wait(flush_seconds):
      write()

  flusher = threading.Thread(target=flush_periodically, name=f"timing flush {path}", daemon=True)
  flusher.start()
  try:
    yield
  finally:
    stop.set()
    flusher.join()
    write()


def exported_step(workdir: str) -> int | None:
  """The training step of `workdir/export`, or None when the run has not exported."""
  path = os.path.join(workdir, "export", "export.json")
  return int(read_json(path, "export manifest")["step"]) if os.path.exists(path) else None


def stage_config(config: ml_collections.ConfigDict, seed: int, steps: int,
                 eval_every: int) -> ml_collections.ConfigDict:
  """A copy of `config` for one training stage: seed, steps and evaluation period set."""
  c = config.copy_and_resolve_references()
  c.seed = seed
  c.train.steps = steps
  c.train.eval_every = eval_every
  c.train.eval_trials = config.study.eval_trials
  c.train.checkpoint_every = min(c.train.checkpoint_every, steps)
  c.train.log_every = min(c.train.log_every, steps)
  return c


def indent(log: Log, prefix: str = "    ") -> Log:
  return lambda line: log(prefix + line)

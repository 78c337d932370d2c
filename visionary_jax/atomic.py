"""Atomic file writes: a temp file beside the target, fsync, rename, fsync of the directory.

A reader (or a run resumed after a crash) sees either the old file or the
complete new one, never a partial write.
"""

import json
import os
import tempfile
from typing import Any, Callable, IO


def write(path: str, write_fn: Callable[[IO], Any], mode: str = "wb") -> None:
  """Calls write_fn(file) on a temp file next to `path`, fsyncs it and renames it to `path`."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f".tmp-{os.path.basename(path)}-", dir=directory)
  try:
    with os.fdopen(fd, mode) as f:
      write_fn(f)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; datasets and exports are shared
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  dir_fd = os.open(directory, os.O_RDONLY)
  try:
    os.fsync(dir_fd)
  finally:
    os.close(dir_fd)


def write_json(path: str, obj: Any, sort_keys: bool = True) -> None:
  """Writes `obj` as indented JSON, atomically."""
  write(path, lambda f: f.write(json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n"), mode="w")

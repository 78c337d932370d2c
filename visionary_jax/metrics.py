"""Training metrics: a JSONL file, TensorBoard event files and a console progress line."""

import json
import math
import os
import tempfile
import time
from typing import Any, Mapping

from flax import traverse_util
import numpy as np
import tensorboardX
from tensorboardX import summary as tensorboard_summary


def format_duration(seconds: float) -> str:
  """"1h02m" from an hour on, "3m05s" below it, "?" when not finite (no rate measured yet)."""
  if not math.isfinite(seconds):
    return "?"
  seconds = int(max(seconds, 0))
  if seconds >= 3600:
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
  return f"{seconds // 60}m{seconds % 60:02d}s"


class JsonlWriter:
  """One JSON object per line: {"step": k, "wall_time": t, name: value, ...}."""

  def __init__(self, path: str, resume_step: int | None = None):
    """Opens `path` for appending; records after `resume_step` (written after the last checkpoint) are dropped."""
    self.path = path
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if os.path.exists(path):
      self._truncate_after(resume_step if resume_step is not None else -1)
    self._file = open(path, "a")

  def _truncate_after(self, step: int) -> None:
    with open(self.path) as f:
      lines = f.readlines()
    kept = []
    for line in lines:
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        continue  # a line cut by a kill
      if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
        kept.append(json.dumps(record) + "\n")
    if len(kept) == len(lines):
      return
    directory = os.path.dirname(os.path.abspath(self.path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".metrics-", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
      f.writelines(kept)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, self.path)

  def write(self, step: int, values: Mapping[str, Any]) -> None:
    record = {"step": int(step), "wall_time": time.time()}
    record.update({k: _json_value(v) for k, v in values.items()})
    self._file.write(json.dumps(record) + "\n")
    self._file.flush()

  def close(self) -> None:
    self._file.close()


def _json_value(v):
  if isinstance(v, (str, bool, int)) or v is None:
    return v
  f = float(np.asarray(v))
  return f if math.isfinite(f) else str(f)


def read_jsonl(path: str) -> list[dict[str, Any]]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def hparams(config: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
  """A nested config (config.json) as TensorBoard hparams: dotted names; lists as JSON text, None left out."""
  flat = traverse_util.flatten_dict(dict(config), sep=".")
  return {k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v) for k, v in flat.items()
          if v is not None}


class Writer:
  """Both writers under one workdir: `metrics.jsonl` and `tensorboard/`.

  A run resumed from its checkpoint at `resume_step` hides the killed run's
  records after that step: the JSONL file drops them, and TensorBoard is told
  to (`purge_step`). A run from step 0 writes the workdir's `config.json` to
  TensorBoard as text and as hparams.
  """

  # Scalars the hparams dashboard shows beside each run's config.
  HPARAMS_METRICS = ("loss", "eval/success_rate")

  def __init__(self, workdir: str, resume_step: int | None = None):
    start = resume_step or 0
    self.jsonl = JsonlWriter(os.path.join(workdir, "metrics.jsonl"), resume_step)
    # TensorBoard hides earlier files' events from `purge_step` on; the checkpoint's own step stays. Event
    # file names hold the second the file was opened, and a file of that name is overwritten: the suffix
    # keeps a quick restart's file apart, and in the order TensorBoard reads the files.
    self.tensorboard = tensorboardX.SummaryWriter(os.path.join(workdir, "tensorboard"), purge_step=start + 1,
                                                  filename_suffix=f".{time.time_ns():020d}.{os.getpid()}")
    config_path = os.path.join(workdir, "config.json")
    if start == 0 and os.path.isfile(config_path):
      with open(config_path) as f:
        config = json.load(f)
      text = json.dumps(config, indent=2, sort_keys=True)
      self.tensorboard.add_text("config", "    " + text.replace("\n", "\n    "), 0)  # a markdown code block
      for summary in tensorboard_summary.hparams(hparams(config), dict.fromkeys(self.HPARAMS_METRICS)):
        self.tensorboard.file_writer.add_summary(summary, 0)
      self.tensorboard.flush()

  def write(self, step: int, values: Mapping[str, Any]) -> None:
    self.jsonl.write(step, values)
    for tag, value in values.items():
      if not isinstance(value, str):
        self.tensorboard.add_scalar(tag, float(np.asarray(value)), step)
    self.tensorboard.flush()

  def close(self) -> None:
    self.jsonl.close()
    self.tensorboard.close()


class Progress:
  """Console progress: steps/s over the recent window and the ETA of the run."""

  def __init__(self, start_step: int, total_steps: int):
    self.total = total_steps
    self._last_step, self._last_time = start_step, time.perf_counter()
    self.rate = 0.0  # steps/s between the last two lines

  def line(self, step: int, values: Mapping[str, Any]) -> str:
    now = time.perf_counter()
    rate = self.rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
    self._last_step, self._last_time = step, now
    eta = (self.total - step) / rate if rate > 0 else float("inf")
    shown = " ".join(f"{k} {float(values[k]):.4g}" for k in ("loss", "q_mean", "target_mean") if k in values)
    return f"step {step}/{self.total} {shown} | {rate:.2f} steps/s, ETA {format_duration(eta)}"


def parameter_counts(params: Mapping[str, Any]) -> dict[str, int]:
  """Number of parameters under each top-level module of a Flax `params` tree (arrays or shape structs)."""
  return {name: sum(int(np.prod(leaf.shape)) for leaf in traverse_util.flatten_dict(dict(sub)).values())
          if isinstance(sub, Mapping) else int(np.prod(sub.shape)) for name, sub in params.items()}


def describe_parameters(params: Mapping[str, Any]) -> str:
  """One line per top-level module with its parameter count, then the total."""
  counts = parameter_counts(params)
  width = max([len(name) for name in counts] + [5])
  lines = [f"  {name:<{width}} {count:>12,}" for name, count in counts.items()]
  return "\n".join(["parameters:"] + lines + [f"  {'total':<{width}} {sum(counts.values()):>12,}"])

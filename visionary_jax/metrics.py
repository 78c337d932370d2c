"""Training metrics: a JSONL file, TensorBoard event files and a console progress line.

The TensorBoard writer is a small one of our own: an event file is a
TFRecord stream (length, masked CRC-32C of the length, payload, masked CRC-32C
of the payload) of `Event` protocol buffers, and a scalar needs only four of
their fields, so no TensorFlow or tensorboardX is needed to write one.
"""

import json
import math
import os
import socket
import struct
import tempfile
import time
from typing import Any, Mapping

import numpy as np

# CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, table-driven.
_CRC_TABLE = []
for _n in range(256):
  _c = _n
  for _ in range(8):
    _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
  _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
  crc = 0xFFFFFFFF
  for byte in data:
    crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
  crc = crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
  out = bytearray()
  while True:
    bits = value & 0x7F
    value >>= 7
    if value:
      out.append(bits | 0x80)
    else:
      out.append(bits)
      return bytes(out)


def _field(number: int, wire_type: int) -> bytes:
  return _varint((number << 3) | wire_type)


def _bytes_field(number: int, payload: bytes) -> bytes:
  return _field(number, 2) + _varint(len(payload)) + payload


def event_bytes(wall_time: float, step: int, scalars: Mapping[str, float] | None = None,
                file_version: str | None = None) -> bytes:
  """A serialized tensorflow.Event: wall_time (1, double), step (2, int64), file_version (3) or summary (5).

  The summary holds one Summary.Value per scalar: tag (1, string), simple_value (2, float).
  """
  out = _field(1, 1) + struct.pack("<d", wall_time) + _field(2, 0) + _varint(int(step))
  if file_version is not None:
    out += _bytes_field(3, file_version.encode())
  if scalars:
    summary = b"".join(
        _bytes_field(1, _bytes_field(1, tag.encode()) + _field(2, 5) + struct.pack("<f", float(value)))
        for tag, value in scalars.items())
    out += _bytes_field(5, summary)
  return out


def record_bytes(payload: bytes) -> bytes:
  """One TFRecord: uint64 length, masked CRC of the length, payload, masked CRC of the payload."""
  length = struct.pack("<Q", len(payload))
  return length + struct.pack("<I", masked_crc32c(length)) + payload + struct.pack("<I", masked_crc32c(payload))


def read_records(path: str) -> list[bytes]:
  """Payloads of a TFRecord file, checking both CRCs of every record."""
  out = []
  with open(path, "rb") as f:
    data = f.read()
  pos = 0
  while pos < len(data):
    length_bytes = data[pos:pos + 8]
    (length,) = struct.unpack("<Q", length_bytes)
    (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
    payload = data[pos + 12:pos + 12 + length]
    (payload_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
    if length_crc != masked_crc32c(length_bytes) or payload_crc != masked_crc32c(payload):
      raise ValueError(f"{path}: corrupt record at byte {pos}")
    out.append(payload)
    pos += 16 + length
  return out


class TensorBoardWriter:
  """Appends scalar events to a new `events.out.tfevents.*` file in `directory`."""

  def __init__(self, directory: str):
    os.makedirs(directory, exist_ok=True)
    now = time.time()
    self.path = os.path.join(directory, f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{os.getpid()}")
    self._file = open(self.path, "ab")
    self._file.write(record_bytes(event_bytes(now, 0, file_version="brain.Event:2")))
    self._file.flush()

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    finite = {k: float(v) for k, v in values.items()}
    self._file.write(record_bytes(event_bytes(time.time(), step, scalars=finite)))
    self._file.flush()

  def close(self) -> None:
    self._file.close()


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


class Writer:
  """Both writers under one workdir: `metrics.jsonl` and `tensorboard/`."""

  def __init__(self, workdir: str, resume_step: int | None = None):
    self.jsonl = JsonlWriter(os.path.join(workdir, "metrics.jsonl"), resume_step)
    self.tensorboard = TensorBoardWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, values: Mapping[str, Any]) -> None:
    self.jsonl.write(step, values)
    self.tensorboard.scalars(step, {k: v for k, v in values.items() if not isinstance(v, str)})

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
    eta_text = "?" if not math.isfinite(eta) else f"{int(eta // 3600)}h{int(eta % 3600 // 60):02d}m{int(eta % 60):02d}s"
    shown = " ".join(f"{k} {float(values[k]):.4g}" for k in ("loss", "q_mean", "target_mean") if k in values)
    return f"step {step}/{self.total} {shown} | {rate:.2f} steps/s, ETA {eta_text}"

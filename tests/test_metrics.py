"""Metrics: CRC-32C, TensorBoard event records decoded by protobuf's wire format, JSONL resume."""

import struct

import pytest

from visionary_jax import metrics


def test_crc32c_known_vectors():
  assert metrics.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
  assert metrics.crc32c(b"") == 0
  assert metrics.crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4: 32 bytes of zeros


def _decode(message: bytes) -> list[tuple[int, int, object]]:
  """(field, wire type, value) of a protobuf message; length-delimited values as bytes."""
  out, pos = [], 0
  def varint():
    nonlocal pos
    shift = value = 0
    while True:
      b = message[pos]
      pos += 1
      value |= (b & 0x7F) << shift
      shift += 7
      if not b & 0x80:
        return value
  while pos < len(message):
    key = varint()
    field, wire = key >> 3, key & 7
    if wire == 0:
      out.append((field, wire, varint()))
    elif wire == 1:
      out.append((field, wire, struct.unpack("<d", message[pos:pos + 8])[0]))
      pos += 8
    elif wire == 5:
      out.append((field, wire, struct.unpack("<f", message[pos:pos + 4])[0]))
      pos += 4
    elif wire == 2:
      n = varint()
      out.append((field, wire, message[pos:pos + n]))
      pos += n
    else:
      raise AssertionError(f"unexpected wire type {wire}")
  return out


def test_tensorboard_events_decode_to_scalars(tmp_path):
  writer = metrics.TensorBoardWriter(str(tmp_path))
  writer.scalars(300, {"loss": 0.25, "arch/loc1/op/add": 0.5})
  writer.close()
  first, second = metrics.read_records(writer.path)
  assert (3, 2, b"brain.Event:2") in _decode(first)
  fields = _decode(second)
  assert (2, 0, 300) in fields
  summary = [v for f, w, v in fields if f == 5][0]
  values = {}
  for _, _, value in _decode(summary):
    decoded = dict((f, v) for f, _, v in _decode(value))
    values[decoded[1].decode()] = decoded[2]
  assert values == {"loss": 0.25, "arch/loc1/op/add": 0.5}


def test_corrupt_record_is_detected(tmp_path):
  writer = metrics.TensorBoardWriter(str(tmp_path))
  writer.scalars(1, {"loss": 1.0})
  writer.close()
  data = bytearray(open(writer.path, "rb").read())
  data[-6] ^= 0xFF
  open(writer.path, "wb").write(bytes(data))
  with pytest.raises(ValueError, match="corrupt record"):
    metrics.read_records(writer.path)


def test_jsonl_resume_drops_records_after_the_checkpoint(tmp_path):
  path = str(tmp_path / "metrics.jsonl")
  w = metrics.JsonlWriter(path)
  for step in range(1, 6):
    w.write(step, {"loss": 1.0 / step, "bad": float("nan")})
  w.close()
  with open(path, "a") as f:
    f.write('{"step": 6, "lo')  # a line cut by a kill
  w = metrics.JsonlWriter(path, resume_step=3)
  w.write(4, {"loss": 0.0})
  w.close()
  records = metrics.read_jsonl(path)
  assert [r["step"] for r in records] == [1, 2, 3, 4]
  assert records[0]["bad"] == "nan" and records[3]["loss"] == 0.0


def test_progress_line_has_rate_and_eta():
  progress = metrics.Progress(0, 100)
  line = progress.line(10, {"loss": 0.5})
  assert line.startswith("step 10/100 loss 0.5 | ") and "steps/s, ETA" in line
  assert progress.rate > 0

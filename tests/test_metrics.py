"""Metrics: TensorBoard events read back by TensorBoard's own loader, JSONL resume, progress line."""

import json
import os

import numpy as np
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from visionary_jax import metrics


def _load(directory: str) -> event_accumulator.EventAccumulator:
  """What TensorBoard shows for a run directory (every event file, restarts purged)."""
  accumulator = event_accumulator.EventAccumulator(directory, size_guidance={event_accumulator.TENSORS: 0,
                                                                              event_accumulator.SCALARS: 0})
  accumulator.Reload()
  return accumulator


def test_tensorboard_scalars_config_text_and_hparams(tmp_path):
  with open(tmp_path / "config.json", "w") as f:
    json.dump({"seed": 3, "train": {"steps": 600, "target": "cem"}, "env": {"renderer": None}}, f)
  writer = metrics.Writer(str(tmp_path), resume_step=0)
  writer.write(300, {"loss": 0.25, "arch/loc1/op/add": 0.5, "note": "skipped: text"})
  writer.close()
  run = _load(str(tmp_path / "tensorboard"))
  assert [(e.step, e.value) for e in run.Scalars("loss")] == [(300, 0.25)]
  assert [(e.step, e.value) for e in run.Scalars("arch/loc1/op/add")] == [(300, 0.5)]
  assert "note" not in run.Tags()["scalars"]
  (text,) = run.Tensors("config/text_summary")
  assert '"steps": 600' in text.tensor_proto.string_val[0].decode()
  content = run.PluginTagToContent("hparams")["_hparams_/session_start_info"]
  start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
  assert start.hparams["seed"].number_value == 3
  assert start.hparams["train.steps"].number_value == 600
  assert start.hparams["train.target"].string_value == "cem"
  assert "env.renderer" not in start.hparams


def test_hparams_flatten_with_dotted_names():
  assert metrics.hparams({"a": {"b": 1, "c": [1, 2]}, "d": None, "e": True}) == {"a.b": 1, "a.c": "[1, 2]",
                                                                                   "e": True}


def test_resume_hides_the_killed_runs_points_after_the_checkpoint(tmp_path):
  writer = metrics.Writer(str(tmp_path), resume_step=0)
  writer.write(1, {"loss": 100.0})
  writer.close()  # killed before its first checkpoint: the run starts again from step 0
  writer = metrics.Writer(str(tmp_path), resume_step=0)
  for step in range(1, 6):
    writer.write(step, {"loss": float(step)})
  writer.close()  # killed after step 5; the newest checkpoint is step 3
  writer = metrics.Writer(str(tmp_path), resume_step=3)
  writer.write(4, {"loss": 40.0})
  writer.close()
  assert len(os.listdir(tmp_path / "tensorboard")) == 3
  run = _load(str(tmp_path / "tensorboard"))
  assert [(e.step, e.value) for e in run.Scalars("loss")] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0)]
  assert [r["step"] for r in metrics.read_jsonl(str(tmp_path / "metrics.jsonl"))] == [1, 2, 3, 4]


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
  assert line.startswith("step 10/100 loss 0.5 | ") and "steps/s, ETA " in line
  assert progress.rate > 0


def test_format_duration():
  assert metrics.format_duration(0) == "0m00s"
  assert metrics.format_duration(185.9) == "3m05s"
  assert metrics.format_duration(3599) == "59m59s"
  assert metrics.format_duration(3600 + 2 * 60 + 59) == "1h02m"
  assert metrics.format_duration(float("inf")) == "?"
  assert metrics.format_duration(float("nan")) == "?"


def test_parameter_counts_per_top_level_module():
  params = {"conv": {"kernel": np.zeros((3, 3, 2, 4)), "bias": np.zeros(4)},
            "head": {"dense": {"kernel": np.zeros((4, 1))}}}
  assert metrics.parameter_counts(params) == {"conv": 76, "head": 4}
  text = metrics.describe_parameters(params)
  assert text.splitlines()[-1].split() == ["total", "80"]

"""run_files.timed: wall time added up over invocations and flushed while a block runs."""

import json
import os
import signal
import subprocess
import sys
import time

from visionary_jax import run_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _wait_for(path, timeout=30.0):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if os.path.exists(path):
      with open(path) as f:
        return json.load(f)
    time.sleep(0.01)
  raise AssertionError(f"{path} was not written within {timeout} s")


def test_timing_adds_up_invocations_and_is_written_during_the_block(tmp_path):
  path = str(tmp_path / run_files.TIMING_JSON)
  with run_files.timed(str(tmp_path), flush_seconds=0.01):
    during = _wait_for(path)
    time.sleep(0.05)
  assert during["invocations"] == 1 and during["seconds"] > 0
  first = _wait_for(path)
  assert first["invocations"] == 1 and first["seconds"] >= during["seconds"] + 0.05
  with run_files.timed(str(tmp_path)):
    pass
  second = _wait_for(path)
  assert second["invocations"] == 2 and first["seconds"] <= second["seconds"] < first["seconds"] + 1.0


def test_a_killed_process_keeps_the_time_flushed_before_the_kill(tmp_path):
  path = str(tmp_path / run_files.TIMING_JSON)
  code = ("import sys, time; from visionary_jax import run_files\n"
          "with run_files.timed(sys.argv[1], flush_seconds=0.05):\n  time.sleep(120)\n")
  process = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
                             env=dict(os.environ, PYTHONPATH=ROOT))
  try:
    _wait_for(path)
    time.sleep(0.2)
  finally:
    process.send_signal(signal.SIGKILL)
    process.wait()
  timing = _wait_for(path)
  assert timing["invocations"] == 1 and timing["seconds"] >= 0.1  # flushed after the first write

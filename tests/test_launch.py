"""Launchers: --config found among the installed configs, the lines printed at a run's start."""

import os
import subprocess
import sys

import pytest

from experiments import configs
import update_fixtures

GRASPING = os.path.join(configs.DIRECTORY, "grasping.py")


def test_config_is_found_among_the_installed_configs(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # outside the checkout
  assert configs.resolve("grasping:cpu") == GRASPING + ":cpu"
  assert configs.resolve("stacking.py:smoke") == os.path.join(configs.DIRECTORY, "stacking.py") + ":smoke"
  assert configs.resolve("experiments/configs/grasping.py:paper") == GRASPING + ":paper"
  assert configs.resolve("grasping") == GRASPING
  assert configs.resolve("missing:cpu") == "missing:cpu"  # left for the config flag to report
  (tmp_path / "grasping.py").write_text("")
  assert configs.resolve("grasping.py:cpu") == "grasping.py:cpu"  # a file in the working directory wins


def test_resolve_argv_rewrites_only_the_config_flag(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  argv = ["visionary-train", "--config=grasping:smoke", "--config.train.steps=3", "--workdir=grasping:x"]
  assert configs.resolve_argv(argv) == ["visionary-train", f"--config={GRASPING}:smoke", "--config.train.steps=3",
                                        "--workdir=grasping:x"]
  assert configs.resolve_argv(["x", "--config", "grasping:cpu"]) == ["x", "--config", GRASPING + ":cpu"]
  assert configs.resolve_argv(["x", "--config"]) == ["x", "--config"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
  return update_fixtures.subprocess_env(tmp_path_factory)


def test_train_entry_point_outside_the_checkout_prints_config_and_parameters(env, tmp_path):
  result = subprocess.run([sys.executable, "-c", "from experiments import train; train.run()", "--config=grasping:smoke",
                           f"--workdir={tmp_path / 'run'}", "--arch=baseline"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode != 0  # the smoke preset names no dataset
  assert result.stdout.count("task: grasping") == 1
  lines = result.stdout.splitlines()
  table = lines[lines.index("parameters:") + 1:]
  assert table[0].split()[0] == "action_encoder" and table[-1].split()[0] == "total"
  counts = [int(line.split()[1].replace(",", "")) for line in table]
  assert sum(counts[:-1]) == counts[-1] > 0


def test_positive_integer_flags_are_checked_by_absl(env):
  result = update_fixtures.run_module(env, "experiments.evaluate", "--export=x", "--trials=0", check=False)
  assert result.returncode != 0 and "--trials=0: 0 is not a positive integer" in result.stderr

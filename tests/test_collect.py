"""Collector: work split, job arrays, SIGKILL then resume, re-collection, launcher flags."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from experiments.configs import grasping as grasping_config
from experiments.configs import stacking as stacking_config
from visionary_jax import envs
from visionary_jax.envs import policies
from visionary_jax.episodes import collect
from visionary_jax.episodes import dataset as dataset_lib
from visionary_jax.episodes import shards

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_missing_ranges_fill_gaps_within_blocks():
  assert collect.missing_ranges(10, 4, []) == [(0, 4), (4, 8), (8, 10)]
  assert collect.missing_ranges(10, 4, [(0, 4), (8, 10)]) == [(4, 8)]
  # A dataset grown from 6 to 10 episodes: the partial block is completed, not redone.
  assert collect.missing_ranges(10, 4, [(0, 4), (4, 6)]) == [(6, 8), (8, 10)]
  assert collect.missing_ranges(3, 4, [(0, 4)]) == []
  with pytest.raises(ValueError, match="episodes_per_shard"):
    collect.missing_ranges(10, 0, [])


def test_blocks_have_exactly_one_owner():
  ranges = collect.missing_ranges(100, 7, [])
  owners = [collect.owner(s, 7, 6) for s, _ in ranges]
  assert sorted(set(owners)) == list(range(6))
  assert collect.episode_seed(0, 5) != collect.episode_seed(1, 5)
  with pytest.raises(ValueError, match="out of range"):
    collect.episode_seed(0, -1)


def test_episode_is_the_same_whoever_collects_it():
  config = stacking_config.get_config("smoke")
  env_a = envs.make(config.task, config.env)
  env_b = envs.make(config.task, config.env)
  policy = lambda: policies.make(config.task, "scripted", 0.5, 0.1, 0.05)
  try:
    collect.run_episode(env_b, policy(), 0, 1)  # a different history first
    a = collect.run_episode(env_a, policy(), 0, 4)
    b = collect.run_episode(env_b, policy(), 0, 4)
  finally:
    env_a.close()
    env_b.close()
  np.testing.assert_array_equal(a.image, b.image)
  np.testing.assert_array_equal(a.action, b.action)
  assert a.seed == b.seed == collect.episode_seed(0, 4)


def test_job_array_workers_share_one_directory(tmp_path):
  config = grasping_config.get_config("smoke")
  lines = []
  for index in (1, 0):
    collect.collect(config, str(tmp_path), num_episodes=7, local_workers=1, worker_index=index,
                    num_workers=2, print_fn=lines.append)
  data = dataset_lib.Dataset(os.path.join(tmp_path, collect.EPISODES_DIR), image_size=32)
  assert sorted(data.episode_index.tolist()) == list(range(7))
  assert len(set(data.episode_seed.tolist())) == 7
  assert os.path.exists(os.path.join(tmp_path, "summary.png"))
  assert any("dataset complete: 7 episodes" in line for line in lines)
  # Already complete: a rerun collects nothing.
  result = collect.collect(config, str(tmp_path), num_episodes=7, local_workers=1,
                           print_fn=lines.append)
  assert result["collected"] == 0 and result["complete"]


def _assert_same_shards(directory_a, directory_b):
  """Same complete shards: equal arrays (named when they differ), then equal bytes of shard and sidecar."""
  names = [os.path.basename(p) for p in shards.list_shards(str(directory_a))]
  assert names and names == [os.path.basename(p) for p in shards.list_shards(str(directory_b))]
  for name in names:
    a, b = os.path.join(directory_a, name), os.path.join(directory_b, name)
    with np.load(a, allow_pickle=False) as arrays_a, np.load(b, allow_pickle=False) as arrays_b:
      assert arrays_a.files == arrays_b.files, name
      for key in arrays_a.files:
        np.testing.assert_array_equal(arrays_a[key], arrays_b[key], err_msg=f"{name}: {key}")
    for path_a, path_b in ((a, b), (shards.sidecar_path(a), shards.sidecar_path(b))):
      with open(path_a, "rb") as file_a, open(path_b, "rb") as file_b:
        assert file_a.read() == file_b.read(), path_b


def test_shard_recollected_in_a_fresh_process_is_the_same(tmp_path):
  config = grasping_config.get_config("smoke")  # shards of 3 episodes
  quiet = lambda line: None
  whole, tail = tmp_path / "whole" / collect.EPISODES_DIR, tmp_path / "tail" / collect.EPISODES_DIR
  # One worker process collects episodes 0-8, a fresh one only 6-8 (their first six copied over):
  # grasping episode 6 of seed 0 differs if a world keeps state from the episodes before it.
  collect.collect(config, str(whole.parent), num_episodes=9, local_workers=1, print_fn=quiet)
  os.makedirs(tail)
  for start in (0, 3):
    shard = whole / shards.shard_name(start, start + 3)
    for path in (shard, shards.sidecar_path(str(shard))):
      shutil.copy(path, tail)
  result = collect.collect(config, str(tail.parent), num_episodes=9, local_workers=1,
                           print_fn=quiet)
  assert result["collected"] == 3 and result["complete"]
  _assert_same_shards(whole, tail)


def _launch(workdir, num_episodes, log):
  return subprocess.Popen(
      [sys.executable, "-m", "experiments.collect", "--config=experiments/configs/grasping.py:smoke",
       f"--workdir={workdir}", f"--num_episodes={num_episodes}", "--local_workers=2",
       "--progress_every=0.2"],
      cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, stdout=log, stderr=subprocess.STDOUT,
      start_new_session=True)


def test_sigkill_mid_run_then_resume_gives_exact_dataset(tmp_path):
  workdir = tmp_path / "run"
  episodes_dir = workdir / collect.EPISODES_DIR
  with open(tmp_path / "log1.txt", "w") as log:
    proc = _launch(workdir, 15, log)
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
      if episodes_dir.exists() and len(shards.list_shards(str(episodes_dir))) >= 1:
        break
      time.sleep(0.05)
    assert proc.poll() is None, "collector finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its worker processes, mid-shard
    proc.wait()
  partial = len(shards.list_shards(str(episodes_dir)))
  assert 1 <= partial < 5
  with open(tmp_path / "log2.txt", "w") as log:
    proc = _launch(workdir, 15, log)
    assert proc.wait(timeout=120) == 0, (tmp_path / "log2.txt").read_text()
  output = (tmp_path / "log2.txt").read_text()
  assert f"{3 * partial}/15 episodes present" in output
  assert "episodes/s" in output and "success" in output and "ETA" in output
  data = dataset_lib.Dataset(str(episodes_dir), image_size=32)
  assert data.num_episodes == 15
  assert sorted(data.episode_index.tolist()) == list(range(15))
  assert sorted(data.episode_seed.tolist()) == [collect.episode_seed(0, i) for i in range(15)]
  assert not [n for n in os.listdir(episodes_dir) if n.startswith(".tmp-")]
  # Shard by shard the very data an uninterrupted run writes.
  uninterrupted = tmp_path / "uninterrupted"
  collect.collect(grasping_config.get_config("smoke"), str(uninterrupted), num_episodes=15,
                  local_workers=2, print_fn=lambda line: None)
  _assert_same_shards(episodes_dir, uninterrupted / collect.EPISODES_DIR)


def test_launcher_rejects_bad_flags(tmp_path):
  run = subprocess.run(
      [sys.executable, "-m", "experiments.collect", "--config=experiments/configs/grasping.py:smoke",
       f"--workdir={tmp_path}", "--worker_index=3", "--num_workers=2"],
      cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True)
  assert run.returncode != 0
  assert "worker_index must be in [0, num_workers=2), got 3" in run.stderr


def test_bad_collect_config_field_is_named(tmp_path):
  config = grasping_config.get_config("smoke")
  config.collect.policy = "greedy"
  with pytest.raises(ValueError, match="collect.policy must be one of"):
    collect.collect(config, str(tmp_path), num_episodes=1, print_fn=lambda line: None)


def test_resume_refuses_a_workdir_of_another_seed_or_size(tmp_path):
  config = grasping_config.get_config("smoke")
  collect.collect(config, str(tmp_path), num_episodes=1, print_fn=lambda line: None)
  config.seed = 1
  with pytest.raises(ValueError, match=r"holds episodes with .*'config_seed': 0.*use another"):
    collect.collect(config, str(tmp_path), num_episodes=2, print_fn=lambda line: None)
  cpu = grasping_config.get_config("cpu")
  with pytest.raises(ValueError, match=r"'image_size': 32.*'image_size': 64"):
    collect.collect(cpu, str(tmp_path), num_episodes=2, print_fn=lambda line: None)
  config.seed = 0
  config.env.camera_fov = 28.0
  with pytest.raises(ValueError, match=r"'camera_fov': 40.0.*'camera_fov': 28.0"):
    collect.collect(config, str(tmp_path), num_episodes=2, print_fn=lambda line: None)

"""Replay sampler: shapes for pmap, determinism, save/restore, prefetch, transition contents."""

import numpy as np
import pytest

import episode_fixtures
from experiments.configs import grasping as grasping_config
from visionary_jax.episodes import dataset as dataset_lib
from visionary_jax.episodes import sampler as sampler_lib
from visionary_jax.episodes import shards


@pytest.fixture
def data(dataset_dir):  # pylint: disable=redefined-outer-name
  return dataset_lib.Dataset(str(dataset_dir[0]), image_size=8)


def assert_batches_equal(a, b):
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_batches_are_reshaped_for_local_devices(data):
  s = sampler_lib.ReplaySampler(data, batch_size=12, num_devices=4, seed=0, prefetch=0)
  batch = next(s)
  assert batch["image"].shape == (4, 3, 8, 8, 3) and batch["image"].dtype == np.uint8
  assert batch["next_image"].shape == (4, 3, 8, 8, 3)
  assert batch["action"].shape == (4, 3, 7)
  for k in ("reward", "done", "gripper_closed", "height", "next_gripper_closed", "next_height"):
    assert batch[k].shape == (4, 3), k
  with pytest.raises(ValueError, match="not divisible by the 5 local devices"):
    sampler_lib.ReplaySampler(data, batch_size=12, num_devices=5)


def test_transitions_are_consistent(data):
  batch = sampler_lib.ReplaySampler(data, 64, seed=3, prefetch=0).batch(0)
  # Frames encode (episode * 16 + t): the next observation is the following frame.
  np.testing.assert_array_equal(batch["next_image"][..., 0, 0, 0].astype(int),
                                (batch["image"][..., 0, 0, 0].astype(int) + 1) % 256)
  np.testing.assert_allclose(batch["next_height"], batch["height"] - 0.01, atol=1e-6)
  assert set(np.unique(batch["done"])) <= {0.0, 1.0}


def test_same_seed_same_stream_and_uniform_coverage(data):
  a = sampler_lib.ReplaySampler(data, 16, seed=7, prefetch=2)
  b = sampler_lib.ReplaySampler(data, 16, seed=7, prefetch=0)
  for _ in range(5):
    assert_batches_equal(next(a), next(b))
  a.close()
  c = sampler_lib.ReplaySampler(data, 16, seed=8, prefetch=0)
  assert not np.array_equal(c.indices(0), b.indices(0))
  counts = np.bincount(np.concatenate([b.indices(k) for k in range(400)]),
                       minlength=data.num_transitions)
  expected = 400 * 16 / data.num_transitions
  assert counts.min() > 0.7 * expected and counts.max() < 1.3 * expected


def test_save_and_restore_position_replays_the_same_batches(data):
  s = sampler_lib.ReplaySampler(data, 8, seed=1, prefetch=3)
  for _ in range(3):
    next(s)
  state = s.state()
  expected = [next(s) for _ in range(4)]
  s.close()
  resumed = sampler_lib.ReplaySampler(data, 8, seed=1, prefetch=3)
  next(resumed)  # a different position, discarded by restore
  resumed.restore(state)
  for want in expected:
    assert_batches_equal(next(resumed), want)
  assert resumed.state()["position"] == 7
  resumed.close()


def test_restore_refuses_a_different_stream(data):
  s = sampler_lib.ReplaySampler(data, 8, seed=1, prefetch=0)
  state = s.state()
  other = sampler_lib.ReplaySampler(data, 8, seed=2, prefetch=0)
  with pytest.raises(ValueError, match="'seed' is 1"):
    other.restore(state)
  with pytest.raises(ValueError, match="'position'"):
    s.restore({**state, "position": -1})


def test_from_config_uses_replay_section(data):
  config = grasping_config.get_config("smoke")
  s = sampler_lib.from_config(data, config.replay, seed=config.seed, num_devices=2)
  batch = next(s)
  assert batch["action"].shape == (2, config.replay.batch_size // 2, 7)
  s.close()


def test_dataset_from_config_checks_the_image_size(tmp_path):
  episodes_dir = tmp_path / "episodes"
  episodes_dir.mkdir()
  episode_fixtures.write_dataset(episodes_dir, image_size=32)
  config = grasping_config.get_config("smoke")
  data = dataset_lib.from_config(str(tmp_path), config)
  assert data.image_size == config.env.image_size == 32 and not data.mmap
  cpu = grasping_config.get_config("cpu")
  with pytest.raises(shards.ShardError, match="wrong image size 32x32.*image_size is 64"):
    dataset_lib.from_config(str(tmp_path), cpu)


def test_slices_are_stratified_by_bootstrap_in_the_datasets_proportion(data):
  """Every device slice starts with its bootstrapping transitions; their count follows the dataset."""
  terminal = set(np.flatnonzero(data.terminated).tolist())
  s = sampler_lib.ReplaySampler(data, 12, num_devices=2, seed=3, prefetch=0)
  share = 1 - len(terminal) / data.num_transitions
  assert s.bootstrap_per_device == round(share * 6)
  n = s.bootstrap_per_device
  for k in range(10):
    idx = s.indices(k).reshape(2, 6)
    assert not any(i in terminal for i in idx[:, :n].ravel().tolist())
    assert all(i in terminal for i in idx[:, n:].ravel().tolist())
  seen = np.unique(np.concatenate([s.indices(k) for k in range(200)]))
  assert len(seen) == data.num_transitions  # every transition is drawn
  batch = s.batch(0)
  assert np.all(batch["done"][:, :n] == 0) and np.all(batch["done"][:, n:] == 1)


def test_data_target_stratifies_episode_ends_with_the_terminal_transitions(data):
  s = sampler_lib.ReplaySampler(data, 16, seed=1, prefetch=0, bootstrap_from_next_action=True)
  ends = data.episode_end | data.terminated
  assert s.bootstrap_per_device == round(16 * (1 - ends.mean()))
  batch = s.batch(3)
  n = s.bootstrap_per_device
  assert np.all(batch["episode_end"][0, :n] == 0) and np.all(np.maximum(batch["done"], batch["episode_end"])[0, n:] == 1)
  t = data.transitions(np.flatnonzero(~data.episode_end)[:5])
  np.testing.assert_array_equal(t["next_action"], data.action[np.flatnonzero(~data.episode_end)[:5] + 1])
  with pytest.raises(ValueError, match="'bootstrap_from_next_action' is True"):
    sampler_lib.ReplaySampler(data, 16, seed=1, prefetch=0).restore(s.state())


def test_terminal_fraction_oversamples_terminal_transitions(data):
  terminal = set(np.flatnonzero(data.terminated).tolist())
  uniform = sampler_lib.ReplaySampler(data, 8, seed=3, prefetch=0)
  only = sampler_lib.ReplaySampler(data, 8, seed=3, prefetch=0, terminal_fraction=1.0)
  assert all(i in terminal for k in range(20) for i in only.indices(k).tolist())
  half = sampler_lib.ReplaySampler(data, 8, seed=3, prefetch=0, terminal_fraction=0.5)
  counts = [sum(i in terminal for i in half.indices(k).tolist()) for k in range(50)]
  assert counts == [4] * 50  # exactly half of every batch
  with pytest.raises(ValueError, match="'terminal_fraction' is 0.5"):
    uniform.restore(half.state())
  with pytest.raises(ValueError, match="terminal_fraction must be in"):
    sampler_lib.ReplaySampler(data, 8, terminal_fraction=1.5)

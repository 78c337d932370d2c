"""The supervised outcome probe: AUC by hand, the attempt split, and a short run on a fixture dataset."""

import json

import numpy as np
import pytest

from experiments.configs import grasping
from tests import episode_fixtures
from tests import update_fixtures
from visionary_jax import genotype as genotype_lib
from visionary_jax.episodes import dataset as dataset_lib
from visionary_jax.probes import outcome as outcome_probe


def test_auc_by_hand():
  # Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 0.35 beats one, 0.8 beats both -> 3/4.
  assert outcome_probe.auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
  assert outcome_probe.auc(np.array([0.5, 0.5, 0.2]), np.array([1, 0, 0])) == 0.75  # a tie counts 1/2
  assert outcome_probe.auc(np.array([0.3, 0.9]), np.array([1, 1])) is None


@pytest.fixture
def probe_data(tmp_path):
  episode_fixtures.write_dataset(tmp_path, num_episodes=12, per_shard=6, image_size=32)
  return dataset_lib.Dataset(str(tmp_path), image_size=32)


def test_attempt_split_holds_out_whole_episodes(probe_data):
  train, held = outcome_probe.attempt_split(probe_data, holdout_every=3)
  episode = np.repeat(np.arange(probe_data.num_episodes), probe_data.episode_length)
  # Every fixture episode ends with a close command: one attempt per episode, its last transition.
  assert sorted(episode[held].tolist()) == [0, 3, 6, 9]
  assert sorted(episode[train].tolist()) == [e for e in range(12) if e % 3]
  np.testing.assert_array_equal(train + 1, np.cumsum(probe_data.episode_length)[episode[train]])
  with pytest.raises(ValueError, match="holdout_every"):
    outcome_probe.attempt_split(probe_data, holdout_every=1)


def test_probe_run_is_seeded_and_reports_auc(probe_data):
  config = grasping.get_config("smoke")
  runs = [outcome_probe.run(config, probe_data, genotype_lib.BASELINE, steps=3, eval_every=2,
                            augment_shift=1, holdout_every=4, log=lambda _: None) for _ in range(2)]
  assert [p["step"] for p in runs[0]] == [2, 3]  # held out: episodes 0 (success), 4 and 8 (failures)
  for point in runs[0]:
    assert np.isfinite(point["loss"]) and 0.0 <= point["auc"] <= 1.0
    assert point["auc_low"] is None  # the fixture closes at 0.26-0.30 m only
  assert [p["loss"] for p in runs[0]] == [p["loss"] for p in runs[1]]
  with pytest.raises(ValueError, match="steps must be a positive integer"):
    outcome_probe.run(config, probe_data, genotype_lib.BASELINE, steps=0, eval_every=1)


def test_launcher_writes_the_curve_and_rejects_a_search_arch(tmp_path, tmp_path_factory):
  episode_fixtures.write_dataset(tmp_path / "episodes", num_episodes=12, per_shard=6, image_size=32)
  env = update_fixtures.subprocess_env(tmp_path_factory)
  common = ("experiments.outcome_probe", "--config=experiments/configs/grasping.py:smoke",
            f"--config.train.dataset_dir={tmp_path / 'episodes'}", "--holdout_every=4")
  bad = update_fixtures.run_module(env, *common, "--arch=search", check=False)
  assert bad.returncode != 0 and "--arch must be 'baseline' or a genotype JSON" in bad.stderr
  update_fixtures.run_module(env, *common, "--steps=2", "--eval_every=1", f"--output={tmp_path / 'probe.json'}")
  with open(tmp_path / "probe.json") as f:
    result = json.load(f)
  assert [p["step"] for p in result["curve"]] == [1, 2] and result["arch"] == "baseline"

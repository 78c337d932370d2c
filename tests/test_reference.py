"""Reference policies (random, descend_close, script) and `experiments.evaluate --policy`."""

import json

import numpy as np
import pytest

from experiments.configs import grasping
import update_fixtures
from visionary_jax import action_space
from visionary_jax import evaluation
from visionary_jax.envs import reference


def obs(height: float) -> dict:
  return {"image": np.zeros((32, 32, 3), np.uint8), "gripper_closed": np.zeros(1, np.float32),
          "height": np.array([height], np.float32)}


def gripper_close(a: np.ndarray) -> bool:
  return bool(a[action_space.GRIPPER_COMMAND.start + action_space.GRIPPER_CLOSE] == 1.0)


def test_descend_close_descends_then_closes_at_the_floor_or_a_stall():
  policy = reference.make("descend_close", "grasping")
  policy.reset(env=None)
  a = policy(obs(0.25))
  np.testing.assert_array_equal(a[action_space.TRANSLATION], [0.0, 0.0, -1.0])
  assert not gripper_close(a)
  assert not gripper_close(policy(obs(0.19)))  # fell 6 cm: still descending
  assert gripper_close(policy(obs(0.187)))  # fell 3 mm < STALL 5 mm: resting on an object
  policy.reset(env=None)
  assert gripper_close(policy(obs(0.005)))  # below CLOSE_HEIGHT 1 cm on the first step
  np.testing.assert_array_equal(policy(obs(0.005))[action_space.TRANSLATION], [0.0, 0.0, 0.0])


def test_make_rejects_bad_names_and_missing_collect_fields():
  with pytest.raises(ValueError, match="reference policy must be one of"):
    reference.make("greedy", "grasping")
  with pytest.raises(ValueError, match="task must be one of"):
    reference.make("random", "pouring")
  with pytest.raises(ValueError, match="collect config field"):
    reference.make("script", "grasping", {"noise": 0.1})


def test_reference_evaluation_is_reproducible_and_split_independent_of_workers():
  c = grasping.get_config("smoke")
  args = ("script", "grasping", c.env.to_dict(), c.collect.to_dict())
  in_process = evaluation.evaluate_reference(*args, trials=4, workers=0, seed=3)
  spread = evaluation.evaluate_reference(*args, trials=4, workers=2, seed=3)
  assert in_process["per_trial"] == spread["per_trial"]
  assert in_process["policy"] == "script" and in_process["trials"] == 4


def test_evaluate_launcher_reference_and_its_usage_errors(tmp_path, tmp_path_factory):
  env = update_fixtures.subprocess_env(tmp_path_factory)
  out = tmp_path / "descend.json"
  result = update_fixtures.run_module(env, "experiments.evaluate", "--policy=descend_close",
                      "--config=experiments/configs/grasping.py:smoke", "--trials=2", "--workers=0",
                      f"--output={out}")
  summary = json.loads(result.stdout.strip().splitlines()[-1])
  assert summary["policy"] == "descend_close" and summary["trials"] == 2
  assert len(json.loads(out.read_text())["per_trial"]) == 2
  bad = update_fixtures.run_module(env, "experiments.evaluate", "--policy=random", "--trials=2", check=False)
  assert bad.returncode != 0 and "--config is required with --policy=random" in bad.stderr

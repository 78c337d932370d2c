"""Recorded evaluation episodes (evaluation.run_episode), their frames PNG and the rollout launcher."""

import json

import numpy as np
import pytest

from conftest import perturbed_baseline
from experiments.configs import grasping
import update_fixtures
from visionary_jax import action_space
from visionary_jax import envs
from visionary_jax import evaluation
from visionary_jax import export
from visionary_jax import genotype as G
from visionary_jax.viz import plots


def test_commands_close():
  action = np.zeros((3, 7), np.float32)
  action[:, 5:7] = [[1, 0], [0, 1], [0.5, 0.5]]  # open, close, a tie (argmax: open)
  np.testing.assert_array_equal(action_space.commands_close(action), [False, True, False])
  assert action_space.commands_close(action[1]) and not action_space.commands_close(action[0])


@pytest.fixture(scope="module")
def cfg():
  return grasping.get_config("smoke")


@pytest.fixture(scope="module")
def export_dir(cfg, tmp_path_factory):
  _, params = perturbed_baseline(cfg.network)
  return export.export(str(tmp_path_factory.mktemp("exports") / "baseline"), cfg, G.BASELINE, params, {}, 3)


def test_recorded_episode_is_the_evaluated_one(cfg, export_dir):
  env_config = evaluation.env_config_for_split("grasping", cfg.env, "test")
  counted = evaluation.run_trials(export_dir, "grasping", env_config, seed=2, trials=[0, 1, 2])
  policy = export.load_policy(export_dir)
  env = envs.make("grasping", env_config)
  try:
    for trial, success in enumerate(counted):
      recorded, steps = evaluation.run_episode(policy, env, 2, trial, record=True)
      assert recorded == success
      assert 1 <= len(steps) <= cfg.env.max_steps
      first = steps[0]
      assert first["image"].shape == (cfg.env.image_size, cfg.env.image_size, 3) and first["image"].dtype == np.uint8
      assert first["action"].shape == (7,) and isinstance(first["height"], float)
      # A grasping episode ends at its first close command, or at the step limit.
      closes = [bool(action_space.commands_close(s["action"])) for s in steps]
      assert not any(closes[:-1])
      assert closes[-1] or len(steps) == cfg.env.max_steps
      assert evaluation.run_episode(policy, env, 2, trial) == (success, [])
  finally:
    env.close()


def test_rollout_frames_needs_trials(tmp_path):
  with pytest.raises(ValueError, match="no trials to draw"):
    plots.rollout_frames([], str(tmp_path / "x.png"))


def test_launcher(cfg, export_dir, tmp_path_factory):
  env = update_fixtures.subprocess_env(tmp_path_factory)
  base = tmp_path_factory.getbasetemp()
  frames, out, gif = base / "rollouts.png", base / "rollouts.json", base / "rollouts.gif"
  result = update_fixtures.run_module(env, "experiments.rollout", f"--export={export_dir}", "--trials=2",
                                      "--first_trial=1", "--seed=5", f"--frames={frames}", f"--output={out}",
                                      f"--gif={gif}")
  summary = json.loads(result.stdout.strip().splitlines()[-1])
  saved = json.load(open(out))
  evaluated = evaluation.evaluate(export_dir, "grasping", cfg.env, trials=3, workers=0, seed=5)["per_trial"]
  assert [t["success"] for t in saved["per_trial"]] == evaluated[1:3]
  assert summary["successes"] == sum(evaluated[1:3]) and summary["trials"] == 2
  assert [t["trial"] for t in saved["per_trial"]] == [1, 2]
  assert result.stdout.count("trial 1: ") == 1 and " T=(" in result.stdout
  assert frames.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert gif.read_bytes()[:6] == b"GIF89a"
  bad = update_fixtures.run_module(env, "experiments.rollout", f"--export={export_dir}", "--trials=0", check=False)
  assert bad.returncode != 0 and "--trials=0: 0 is not a positive integer" in bad.stderr
  bad = update_fixtures.run_module(env, "experiments.rollout", f"--export={base}", check=False)
  assert bad.returncode != 0 and "export.json" in bad.stderr


def test_rollout_gif_holds_ended_trials_with_their_outcome_border(tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  step = lambda value: {"image": np.full((4, 4, 3), value, np.uint8)}
  trials = [{"trial": 0, "success": True, "steps": [step(10), step(20)]},
            {"trial": 1, "success": False, "steps": [step(30), step(40), step(50)]}]
  path = tmp_path / "r.gif"
  plots.rollout_gif(trials, str(path), scale=2, frame_ms=100)
  gif = Image.open(path)
  assert gif.n_frames == 3  # the longest trial's steps
  assert gif.size == (2 * (4 * 2 + 2 * 2), 4 * 2 + 2 * 2)  # two 8-pixel tiles with 2-pixel borders
  gif.seek(2)
  last = np.asarray(gif.convert("RGB"))
  np.testing.assert_array_equal(last[0, 0], (40, 170, 60))  # trial 0 ended in success: green border
  np.testing.assert_array_equal(last[0, 12], (200, 40, 40))  # trial 1 ended in failure: red border
  np.testing.assert_array_equal(last[5, 5], (20, 20, 20))  # trial 0 holds its last frame
  np.testing.assert_array_equal(last[5, 17], (50, 50, 50))
  with pytest.raises(ValueError, match="no trials"):
    plots.rollout_gif([], str(path))

"""Grasping and Stacking envs: API, object split, determinism, failures, task logic."""

import fnmatch
import os

from gymnasium.utils import env_checker
import numpy as np
import pytest

from experiments.configs import grasping as grasping_config
from experiments.configs import stacking as stacking_config
from visionary_jax import action_space
from visionary_jax import envs
from visionary_jax.envs import objects
from visionary_jax.envs import stacking as stacking_lib

CONFIGS = {"grasping": grasping_config, "stacking": stacking_config}


def make(task, **overrides):
  config = CONFIGS[task].get_config("smoke")
  return envs.make(task, config.env, **overrides)


def action(tx=0.0, ty=0.0, tz=0.0, close=False):
  a = np.zeros(action_space.ACTION_DIM, np.float32)
  a[action_space.TRANSLATION] = (tx, ty, tz)
  a[action_space.ROTATION] = (0.0, 1.0)
  a[action_space.GRIPPER_COMMAND.start + (action_space.GRIPPER_CLOSE if close else
                                          action_space.GRIPPER_OPEN)] = 1.0
  return a


@pytest.fixture(scope="module", params=["grasping", "stacking"])
def env(request):
  e = make(request.param)
  yield e
  e.close()


def test_env_checker_passes(env):
  env_checker.check_env(env, skip_render_check=True)


def test_spaces_follow_config_and_action_layout(env):
  size = CONFIGS["grasping"].get_config("smoke").network.image_size
  assert env.observation_space["image"].shape == (size, size, 3)
  assert env.observation_space["image"].dtype == np.uint8
  assert env.action_space.shape == (action_space.ACTION_DIM,)
  obs, _ = env.reset(seed=0)
  assert obs["gripper_closed"].tolist() == [0.0]
  assert 0.2 < obs["height"][0] < 0.4  # starts well above the tray floor


def test_object_split_is_disjoint_900_100():
  train, test = objects.random_objects("train"), objects.random_objects("test")
  assert len(train) == 900 and len(test) == 100
  assert not set(train) & set(test)
  folder = lambda path: os.path.basename(os.path.dirname(path))
  assert all(folder(p).endswith("0") for p in test)
  assert not any(folder(p).endswith("0") for p in train)
  # The bug the split avoids: in fnmatch "[^0]" is the set {"^", "0"}, not "not 0".
  folders = [folder(p) for p in train + test]
  assert sorted(fnmatch.filter(folders, "*[^0]")) == sorted(folder(p) for p in test)
  with pytest.raises(ValueError, match="object split"):
    objects.random_objects("validation")


def test_grasping_test_split_draws_only_test_objects():
  e = make("grasping", split="test")
  try:
    assert set(e.urdfs) == set(objects.random_objects("test"))
  finally:
    e.close()


def _rollout(env, seed, steps=3):
  obs, _ = env.reset(seed=seed)
  images = [obs["image"]]
  for i in range(steps):
    obs, *_ = env.step(action(0.5, -0.3, -1.0 if i else 0.0))
    images.append(obs["image"])
  return np.stack(images), env.object_positions()


@pytest.mark.parametrize("task", ["grasping", "stacking"])
def test_same_seed_same_observations_whatever_ran_before(task):
  a, b = make(task), make(task)
  try:
    images_a, positions_a = _rollout(a, 6)
    _rollout(b, 1)
    for seed in range(6):  # with these before it, grasping seed 6 shows any contact state left behind
      b.reset(seed=seed)
    images_b, positions_b = _rollout(b, 6)
    np.testing.assert_array_equal(images_a, images_b)
    np.testing.assert_array_equal(positions_a, positions_b)
    images_c, _ = _rollout(b, 7)
    assert not np.array_equal(images_a[0], images_c[0])
  finally:
    a.close()
    b.close()


def test_gripper_descends_only_when_told(env):
  obs, _ = env.reset(seed=3)
  h0 = obs["height"][0]
  obs, *_ = env.step(action(tx=0.5))
  assert abs(obs["height"][0] - h0) < 0.01
  obs, *_ = env.step(action(tz=-1.0))
  assert obs["height"][0] < h0 - 0.04


def test_bad_action_is_rejected(env):
  env.reset(seed=0)
  with pytest.raises(ValueError, match="7 finite floats"):
    env.step(np.zeros(5, np.float32))
  with pytest.raises(ValueError, match="7 finite floats"):
    env.step(np.full(7, np.nan, np.float32))


def test_truncates_at_step_limit_with_step_penalty():
  e = make("grasping", max_steps=3)
  try:
    e.reset(seed=0)
    for i in range(3):
      _, reward, terminated, truncated, info = e.step(action(tx=0.2))
      assert reward == pytest.approx(-0.01) and not terminated and not info["success"]
      assert truncated == (i == 2)
    with pytest.raises(RuntimeError, match="finished episode"):
      e.step(action())
  finally:
    e.close()


def test_physics_failure_ends_episode_with_flag(env):
  env.reset(seed=0)
  p = env.scene.client
  p.resetBasePositionAndOrientation(env.scene.bodies[0], [0.6, 0.0, -5.0], [0, 0, 0, 1])
  obs, reward, terminated, truncated, info = env.step(action())
  assert terminated and not truncated and reward == pytest.approx(-0.01)
  assert "left the scene" in info["physics_failure"]
  assert obs["image"].dtype == np.uint8


def test_grasp_attempt_ends_episode():
  e = make("grasping")
  try:
    e.reset(seed=0)
    obs, reward, terminated, truncated, info = e.step(action(close=True))
    assert terminated and not truncated and not info["success"]  # closing at the top misses
    assert obs["gripper_closed"].tolist() == [1.0]
    assert reward == pytest.approx(-0.01)
  finally:
    e.close()


def test_stacking_success_needs_a_released_stack():
  e = make("stacking")
  try:
    e.reset(seed=0)
    p = e.scene.client
    bottom = e.object_positions()[1]
    top = bottom + np.array([0.0, 0.0, stacking_lib.BLOCK_SIZE + 0.002])
    obs, reward, terminated, _, info = e.step(action(tx=-1.0))  # not stacked yet
    assert not info["success"] and not terminated
    p.resetBasePositionAndOrientation(e.scene.bodies[0], top.tolist(),
                                      p.getBasePositionAndOrientation(e.scene.bodies[1])[1])
    obs, reward, terminated, _, info = e.step(action(tx=-1.0, close=True))  # closed: no success
    assert not info["success"]
    obs, reward, terminated, _, info = e.step(action(tx=-1.0))
    assert info["success"] and terminated and reward == 1.0
  finally:
    e.close()


def test_make_rejects_bad_config():
  config = grasping_config.get_config("smoke")
  with pytest.raises(ValueError, match="task must be one of"):
    envs.make("pouring", config.env)
  with pytest.raises(ValueError, match="unknown field"):
    envs.make("grasping", config.env, colour="red")
  with pytest.raises(ValueError, match="image_size"):
    envs.make("grasping", config.env, image_size=2)


def _colourful_pixels(image):
  """Pixels whose channels differ by > 60: the objects; the tray, table and gripper are grey."""
  image = image.astype(np.int32)
  return int(((image.max(-1) - image.min(-1)) > 60).sum())


def test_camera_fov_frames_the_tray_and_old_configs_keep_the_original_camera():
  config = grasping_config.get_config("smoke")
  images = {}
  for fov in (40.0, 28.0):
    e = envs.make("grasping", config.env, camera_fov=fov, image_size=64)
    images[fov] = e.reset(seed=3)[0]["image"]
    e.close()
  # The same scene seen through a narrower field of view: the objects cover more pixels.
  assert _colourful_pixels(images[28.0]) > 1.5 * _colourful_pixels(images[40.0]) > 0
  legacy = {k: v for k, v in config.env.items() if k != "camera_fov"}
  e = envs.make("grasping", legacy, image_size=64)
  np.testing.assert_array_equal(e.reset(seed=3)[0]["image"], images[40.0])
  e.close()
  with pytest.raises(ValueError, match="camera fov must be in"):
    envs.make("grasping", config.env, camera_fov=0.0)


@pytest.mark.parametrize("preset", ["paper", "cpu", "smoke"])
@pytest.mark.parametrize("task", ["grasping", "stacking"])
def test_env_image_size_is_the_network_input_size(task, preset):
  config = CONFIGS[task].get_config(preset)
  assert config.env.image_size == config.network.image_size
  assert config.replay.batch_size == {"paper": 4096, "cpu": 256, "smoke": 8}[preset]


def test_egl_renderer_option():
  try:
    e = make("grasping", renderer="egl")
  except RuntimeError as err:  # no EGL on this machine: the error must say so
    assert "eglRenderer plugin did not load" in str(err)
    return
  try:
    obs, _ = e.reset(seed=0)
    assert obs["image"].shape == (32, 32, 3) and obs["image"].std() > 5
  finally:
    e.close()
  with pytest.raises(ValueError, match="renderer must be one of"):
    make("grasping", renderer="vulkan")


def test_stacking_with_three_blocks():
  e = make("stacking", num_objects=3)
  try:
    e.reset(seed=1)
    assert e.object_positions().shape == (3, 3)
    positions = e.object_positions()[:, :2]
    gaps = [np.linalg.norm(positions[i] - positions[j]) for i in range(3) for j in range(i)]
    assert min(gaps) > stacking_lib.MIN_SEPARATION * 0.8
  finally:
    e.close()

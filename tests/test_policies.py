"""Data-collection policies: random, scripted per task, and the success-fraction mixture."""

import numpy as np
import pytest

from experiments.configs import grasping as grasping_config
from experiments.configs import stacking as stacking_config
from visionary_jax import action_space
from visionary_jax import envs
from visionary_jax.envs import policies

CONFIGS = {"grasping": grasping_config, "stacking": stacking_config}


def run(env, policy, seed):
  obs, _ = env.reset(seed=seed)
  policy.reset(env, np.random.default_rng(seed))
  done, steps, info = False, 0, {}
  while not done:
    a = policy(obs)
    assert a.shape == (action_space.ACTION_DIM,) and env.action_space.contains(a)
    obs, _, terminated, truncated, info = env.step(a)
    done, steps = terminated or truncated, steps + 1
  return info["success"], steps


@pytest.mark.parametrize("task", ["grasping", "stacking"])
def test_scripted_policy_succeeds_on_fixed_seeds(task):
  env = envs.make(task, CONFIGS[task].get_config("smoke").env)
  try:
    results = [run(env, policies.make(task, "scripted"), seed) for seed in (0, 2, 5, 7)]
  finally:
    env.close()
  successes = sum(s for s, _ in results)
  assert successes >= 3, results
  assert all(steps <= env.max_steps for _, steps in results)


def test_random_policy_is_uniform_and_reproducible():
  a, b = policies.Random(), policies.Random()
  a.reset(None, np.random.default_rng(4))
  b.reset(None, np.random.default_rng(4))
  xs = np.stack([a(None) for _ in range(2000)])
  np.testing.assert_array_equal(xs[:5], np.stack([b(None) for _ in range(5)]))
  assert xs.min() >= -1 and xs.max() <= 1
  np.testing.assert_allclose(xs.mean(0), 0.0, atol=0.06)
  np.testing.assert_allclose(xs.std(0), np.sqrt(1 / 3), atol=0.03)


def test_random_policy_rarely_succeeds_at_grasping():
  env = envs.make("grasping", grasping_config.get_config("smoke").env)
  try:
    results = [run(env, policies.Random(), seed) for seed in range(6)]
  finally:
    env.close()
  assert sum(s for s, _ in results) <= 1
  assert np.mean([n for _, n in results]) < 5  # argmax picks "close" half the time


class _Script:
  def reset(self, env, rng):
    pass

  def __call__(self, observation):
    return policies._action(_FakeEnv(), np.array([0.03, 0.0, 0.0]), 0.0, close=True)  # pylint: disable=protected-access


class _FakeEnv:
  max_displacement = 0.06
  max_rotation = np.pi / 4


def test_mixed_fraction_noise_and_random_actions():
  rng = np.random.default_rng(0)
  mixed = policies.Mixed(_Script(), scripted_fraction=0.3)
  flags = []
  for _ in range(400):
    mixed.reset(None, rng)
    flags.append(mixed.scripted)
  assert 0.24 < np.mean(flags) < 0.36
  clean = policies.Mixed(_Script(), scripted_fraction=1.0)
  clean.reset(None, rng)
  np.testing.assert_allclose(clean(None)[:3], [0.5, 0.0, 0.0])
  noisy = policies.Mixed(_Script(), 1.0, noise=0.2)
  noisy.reset(None, rng)
  spread = np.std([noisy(None)[0] for _ in range(500)])
  assert 0.15 < spread < 0.25
  randomised = policies.Mixed(_Script(), 1.0, random_action_prob=1.0)
  randomised.reset(None, rng)
  assert not np.allclose(randomised(None), clean(None))


def test_action_encoding_round_trips_yaw():
  env = _FakeEnv()
  a = policies._action(env, np.array([0.12, -0.03, 0.0]), 0.3, close=False)  # pylint: disable=protected-access
  np.testing.assert_allclose(a[:3], [1.0, -0.5, 0.0])  # clipped to the bounded displacement
  yaw = np.arctan2(a[3], a[4]) / np.pi * env.max_rotation
  assert yaw == pytest.approx(0.3, abs=1e-6)
  assert a[5:].tolist() == [1.0, 0.0]


def test_make_rejects_bad_arguments():
  with pytest.raises(ValueError, match="policy must be one of"):
    policies.make("grasping", "greedy")
  with pytest.raises(ValueError, match="scripted_fraction"):
    policies.make("grasping", "scripted", scripted_fraction=1.5)
  with pytest.raises(ValueError, match="task must be one of"):
    policies.make("pouring", "scripted")
  with pytest.raises(ValueError, match="aim_noise"):
    policies.make("grasping", "scripted", aim_noise=-0.01)
  with pytest.raises(ValueError, match="early_close_prob"):
    policies.make("grasping", "scripted", early_close_prob=2.0)
  with pytest.raises(ValueError, match="random_aim_prob"):
    policies.make("grasping", "scripted", random_aim_prob=-0.1)
  with pytest.raises(ValueError, match="stacking script has no exploration knobs"):
    policies.make("stacking", "scripted", random_aim_prob=0.5)
  with pytest.raises(ValueError, match="stacking script has no exploration knobs"):
    policies.make("stacking", "scripted", diagonal_prob=0.5)


class _FakeGraspEnv:
  """Just what ScriptedGrasping reads: one object, the commanded gripper pose, the step sizes."""
  max_displacement, max_rotation = 0.06, np.pi / 4

  def __init__(self, ee):
    self.ee = np.asarray(ee, np.float64)

  def object_positions(self):
    return np.array([[0.60, 0.06, -0.15]])

  def gripper_pose(self):
    return self.ee.copy(), 0.0


def test_grasping_exploration_knobs():
  from visionary_jax.envs import scene as scene_lib  # pylint: disable=g-import-not-at-top
  env = _FakeGraspEnv([0.60 - 0.12, 0.06, 0.36])  # 12 cm short of the object in x, at the top
  grasp_z = -0.15 - 0.03 + scene_lib.TIP_OFFSET
  plain = policies.ScriptedGrasping()
  plain.reset(env, np.random.default_rng(0))
  a = plain(None)
  np.testing.assert_allclose(a[:3], [1.0, 0.0, 0.0])  # plain: approach at constant height
  diagonal = policies.ScriptedGrasping(diagonal_prob=1.0)
  diagonal.reset(env, np.random.default_rng(0))
  a = diagonal(None)  # two steps of x-y error left: half of the way down now
  np.testing.assert_allclose(a[2] * env.max_displacement, -min((0.36 - grasp_z) / 2, 0.06), atol=1e-6)
  closer = policies.ScriptedGrasping(early_close_prob=1.0)
  closer.reset(env, np.random.default_rng(0))
  rng = np.random.default_rng(0)
  rng.integers(1)  # reset's draw of the target object
  rng.uniform()  # __call__'s early-close draw
  a = closer(None)
  assert a[action_space.GRIPPER_COMMAND].tolist() == [0.0, 1.0]
  np.testing.assert_allclose(a[:3], rng.uniform(-1.0, 1.0, 3), rtol=1e-6)  # a uniform random move first
  aimed = policies.ScriptedGrasping(aim_noise=0.02)
  offsets = []
  for seed in range(200):
    aimed.reset(env, np.random.default_rng(seed))
    offsets.append(aimed._aim_offset)  # pylint: disable=protected-access
  assert np.std(offsets) == pytest.approx(0.02, rel=0.15)
  above = _FakeGraspEnv([0.60, 0.06, grasp_z])  # exactly at the grasp point: the plain script closes
  plain.reset(above, np.random.default_rng(0))
  assert plain(None)[action_space.GRIPPER_COMMAND].tolist() == [0.0, 1.0]


def test_grasping_random_aim_closes_on_the_tray_floor_away_from_objects():
  from visionary_jax.envs import scene as scene_lib  # pylint: disable=g-import-not-at-top
  script = policies.ScriptedGrasping(random_aim_prob=0.4)
  env = _FakeGraspEnv([0.60, 0.06, 0.36])
  aims = []
  for seed in range(2000):
    script.reset(env, np.random.default_rng(seed))
    aims.append(script._random_aim)  # pylint: disable=protected-access
  chosen = np.array([a for a in aims if a is not None])
  assert len(chosen) / len(aims) == pytest.approx(0.4, abs=4 * np.sqrt(0.4 * 0.6 / 2000))
  assert np.all(chosen[:, :2] >= scene_lib.DROP_LOW) and np.all(chosen[:, :2] <= scene_lib.DROP_HIGH)
  np.testing.assert_allclose(chosen[:, 2], scene_lib.TRAY_BOTTOM_Z + 0.03)
  # Hovering at the floor above the random point (the object is elsewhere): the script closes there.
  always = policies.ScriptedGrasping(random_aim_prob=1.0)
  always.reset(env, np.random.default_rng(3))
  aim = always._random_aim  # pylint: disable=protected-access
  floor_grasp_z = scene_lib.TRAY_BOTTOM_Z + scene_lib.TIP_OFFSET
  always._env = _FakeGraspEnv([aim[0], aim[1], floor_grasp_z])  # pylint: disable=protected-access
  a = always(None)
  assert a[action_space.GRIPPER_COMMAND].tolist() == [0.0, 1.0]
  np.testing.assert_allclose(a[:3], 0.0, atol=1e-6)
  # From the top, it heads for the random point, not for the object at (0.60, 0.06).
  always._env = _FakeGraspEnv([0.60, 0.06, 0.36])  # pylint: disable=protected-access
  a = always(None)
  expected = np.clip((aim[:2] - [0.60, 0.06]) / 0.06, -1, 1)
  np.testing.assert_allclose(a[:2], expected, atol=1e-6)


def test_grasping_approach_offset_descends_beside_the_object_and_closes_back_onto_it():
  from visionary_jax.envs import scene as scene_lib  # pylint: disable=g-import-not-at-top
  grasp_z = -0.15 - 0.03 + scene_lib.TIP_OFFSET
  script = policies.ScriptedGrasping(approach_offset=0.05)
  radii = []
  for seed in range(2000):
    script.reset(_FakeGraspEnv([0.60, 0.06, 0.36]), np.random.default_rng(seed))
    radii.append(np.linalg.norm(script._approach))  # pylint: disable=protected-access
  radii = np.array(radii)
  assert radii.max() <= 0.05
  # Uniform over the disc: P(r < 0.05 / 2) = 1/4.
  assert np.mean(radii < 0.025) == pytest.approx(0.25, abs=4 * np.sqrt(0.25 * 0.75 / 2000))
  script._approach = np.array([0.03, -0.04])  # pylint: disable=protected-access
  script._env = _FakeGraspEnv([0.60, 0.06, 0.36])  # pylint: disable=protected-access
  np.testing.assert_allclose(script(None)[:2], [0.5, -2 / 3], atol=1e-6)  # heads for the point beside it
  script._env = _FakeGraspEnv([0.63, 0.02, grasp_z])  # pylint: disable=protected-access
  a = script(None)  # beside the object at the grasp height: close with the move back onto it
  assert a[action_space.GRIPPER_COMMAND].tolist() == [0.0, 1.0]
  np.testing.assert_allclose(a[:3], [-0.5, 2 / 3, 0.0], atol=1e-6)
  script._close_turn = np.pi / 2  # pylint: disable=protected-access
  np.testing.assert_allclose(script(None)[:3], [-2 / 3, -0.5, 0.0], atol=1e-6)  # turned 90 degrees
  misdirected = policies.ScriptedGrasping(approach_offset=0.05, misdirected_close_prob=0.3)
  turns = []
  for seed in range(2000):
    misdirected.reset(_FakeGraspEnv([0.60, 0.06, 0.36]), np.random.default_rng(seed))
    turns.append(misdirected._close_turn)  # pylint: disable=protected-access
  assert np.mean(np.array(turns) != 0.0) == pytest.approx(0.3, abs=4 * np.sqrt(0.3 * 0.7 / 2000))
  with pytest.raises(ValueError, match="approach_offset"):
    policies.ScriptedGrasping(approach_offset=-0.01)
  with pytest.raises(ValueError, match="misdirected_close_prob"):
    policies.make("grasping", "scripted", misdirected_close_prob=1.5)
  with pytest.raises(ValueError, match="unknown script knobs"):
    policies.make("grasping", "scripted", aim_offset=0.1)

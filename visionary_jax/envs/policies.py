"""Data-collection policies: uniform random and scripted noisy per task.

A policy is reset once per episode with the env (for privileged object poses,
which scripted policies read and the dataset never stores) and a generator,
then maps observations to actions [7] in the layout of
`visionary_jax.action_space`.

`Mixed` sets a dataset's success fraction: each episode follows the task's
script with probability `scripted_fraction` (with Gaussian noise on the
translation and, per step, a uniform random action with probability
`random_action_prob`), else it is a uniform random episode. Measured success
fractions are in data/README.md.
"""

import math

import numpy as np

from visionary_jax import action_space
from visionary_jax.envs import robot_env
from visionary_jax.envs import scene as scene_lib
from visionary_jax.envs import stacking as stacking_lib

POLICIES = ("random", "scripted")
# ScriptedGrasping's exploration knobs, also the names of their `collect` config fields.
GRASPING_KNOBS = ("aim_noise", "diagonal_prob", "early_close_prob", "random_aim_prob",
                  "approach_offset", "misdirected_close_prob")


def _action(env: robot_env.RobotEnv, displacement: np.ndarray, yaw_change: float,
            close: bool) -> np.ndarray:
  """Encodes a displacement [3] (metres), yaw change (radians) and gripper command as [7]."""
  a = np.zeros(action_space.ACTION_DIM, np.float32)
  a[action_space.TRANSLATION] = np.clip(displacement / env.max_displacement, -1.0, 1.0)
  theta = float(np.clip(yaw_change / env.max_rotation * math.pi, -math.pi, math.pi))
  a[action_space.ROTATION] = (math.sin(theta), math.cos(theta))
  a[action_space.GRIPPER_COMMAND.start + (action_space.GRIPPER_CLOSE if close else
                                          action_space.GRIPPER_OPEN)] = 1.0
  return a


def _square_yaw(yaw: float) -> float:
  """A gripper yaw in [-pi/4, pi/4] aligned with a square's faces."""
  return (yaw + math.pi / 4) % (math.pi / 2) - math.pi / 4


class Random:
  """Uniform actions in [-1, 1]^7."""

  def reset(self, env: robot_env.RobotEnv, rng: np.random.Generator):
    del env
    self._rng = rng

  def __call__(self, observation) -> np.ndarray:
    del observation
    return self._rng.uniform(-1.0, 1.0, action_space.ACTION_DIM).astype(np.float32)


class ScriptedGrasping:
  """Move above an object, descend to it, close (the env then lifts).

  Exploration knobs (all 0 by default: the plain script) widen what a dataset
  shows the learner: `aim_noise` (metres, std) offsets the aimed point from the
  object once per episode, so closes near but off an object appear with their
  failures; with probability `diagonal_prob` per episode the gripper descends
  while it approaches, so mid-height states are visited; `early_close_prob` per
  step closes after a uniform random move wherever the gripper is, so closes at
  every height and with every translation appear (a CEM policy otherwise finds
  the close actions the data never shows and the Q-function over-rates); with
  probability `random_aim_prob` per episode the script aims at a uniform random
  point of the tray floor instead of an object, so low closes away from objects
  (mostly failures) contrast with the aimed ones and alignment, not height alone,
  decides success; `approach_offset` (metres) descends beside the object, at a
  uniform point of a disc of that radius around it, and the close then carries
  the x-y move back onto the object, so the data shows which close translation
  reaches an object seen beside the fingers; with probability
  `misdirected_close_prob` per such episode that move is turned by a uniform
  random angle, a failure of the same length (so the direction seen in the
  image, not the move's size, decides the outcome).
  """

  HOVER_TOLERANCE = 0.012  # metres of x-y error under which the gripper descends

  def __init__(self, aim_noise: float = 0.0, diagonal_prob: float = 0.0,
               early_close_prob: float = 0.0, random_aim_prob: float = 0.0,
               approach_offset: float = 0.0, misdirected_close_prob: float = 0.0):
    for name, value in (("aim_noise", aim_noise), ("approach_offset", approach_offset)):
      if value < 0:
        raise ValueError(f"{name} must be >= 0 metres, got {value}")
    for name, value in (("diagonal_prob", diagonal_prob), ("early_close_prob", early_close_prob),
                        ("random_aim_prob", random_aim_prob),
                        ("misdirected_close_prob", misdirected_close_prob)):
      if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    self.aim_noise = float(aim_noise)
    self.diagonal_prob = float(diagonal_prob)
    self.early_close_prob = float(early_close_prob)
    self.random_aim_prob = float(random_aim_prob)
    self.approach_offset = float(approach_offset)
    self.misdirected_close_prob = float(misdirected_close_prob)

  def reset(self, env, rng):
    self._env = env
    self._rng = rng
    self._target = int(rng.integers(len(env.object_positions())))
    self._aim_offset = rng.normal(0.0, self.aim_noise, 2) if self.aim_noise else np.zeros(2)
    self._diagonal = bool(self.diagonal_prob and rng.uniform() < self.diagonal_prob)
    self._random_aim = None  # else a fixed point [3] on the tray floor
    if self.random_aim_prob and rng.uniform() < self.random_aim_prob:
      xy = rng.uniform(scene_lib.DROP_LOW, scene_lib.DROP_HIGH)
      self._random_aim = np.append(xy, scene_lib.TRAY_BOTTOM_Z + 0.03)
    self._approach = np.zeros(2)  # x-y offset [2] of the descent from the aimed point, metres
    self._close_turn = 0.0  # radians the close's move back onto the aimed point is turned by
    if self.approach_offset:
      radius = self.approach_offset * math.sqrt(rng.uniform())
      angle = rng.uniform(0.0, 2.0 * math.pi)
      self._approach = radius * np.array([math.cos(angle), math.sin(angle)])
      if self.misdirected_close_prob and rng.uniform() < self.misdirected_close_prob:
        self._close_turn = rng.uniform(0.0, 2.0 * math.pi)

  def __call__(self, observation):
    del observation
    env = self._env
    if self._random_aim is None:
      target = env.object_positions()[self._target]
    else:
      target = self._random_aim
    ee, _ = env.gripper_pose()
    if self.early_close_prob and self._rng.uniform() < self.early_close_prob:
      move = self._rng.uniform(-1.0, 1.0, 3) * env.max_displacement
      return _action(env, move, 0.0, close=True)
    aim_xy = target[:2] + self._aim_offset
    error_xy = aim_xy + self._approach - ee[:2]
    tip_z = max(target[2] - 0.03, scene_lib.TRAY_BOTTOM_Z)
    grasp_z = max(tip_z + scene_lib.TIP_OFFSET, scene_lib.WORKSPACE_LOW[2])
    distance = np.linalg.norm(error_xy)
    centred = distance < self.HOVER_TOLERANCE
    if centred:
      z = grasp_z
    elif self._diagonal:  # reach the grasp height when the x-y error is gone, at full speed
      steps_left = max(1.0, np.ceil(distance / env.max_displacement))
      z = max(grasp_z, ee[2] - (ee[2] - grasp_z) / steps_left)
    else:
      z = ee[2]
    at_grasp = centred and abs(ee[2] - grasp_z) < 0.01
    if at_grasp and self.approach_offset:
      c, s = math.cos(self._close_turn), math.sin(self._close_turn)
      error_xy = np.array([[c, -s], [s, c]]) @ (aim_xy - ee[:2])
    return _action(env, np.append(error_xy, z - ee[2]), 0.0, close=at_grasp)


class ScriptedStacking:
  """Pick one block, lift, move above the other, lower, open, move up."""

  def reset(self, env, rng):
    self._env = env
    self._source, self._target = rng.choice(env.num_blocks, 2, replace=False)
    self._phase = "approach"

  def __call__(self, observation):
    del observation
    env = self._env
    blocks = env.object_positions()
    source, target = blocks[self._source], blocks[self._target]
    ee, yaw = env.gripper_pose()
    size = stacking_lib.BLOCK_SIZE
    floor = scene_lib.TRAY_BOTTOM_Z
    carry_z = floor + 2 * size + 0.02 + scene_lib.TIP_OFFSET  # the held block clears the other
    body = env.scene.bodies[self._source]
    if self._phase in ("lift", "carry", "lower") and not env.scene.in_gripper_contact(body):
      self._phase = "approach"  # the block slipped or was missed: open and retry
      return _action(env, np.array([0.0, 0.0, carry_z - ee[2]]), 0.0, close=False)
    if self._phase == "approach":
      error_xy = source[:2] - ee[:2]
      turn = _square_yaw(env.object_yaws()[self._source]) - yaw
      grasp_z = floor + 0.01 + scene_lib.TIP_OFFSET
      centred = np.linalg.norm(error_xy) < 0.01 and abs(turn) < 0.05
      z = grasp_z if centred else max(ee[2], floor + size + 0.01 + scene_lib.TIP_OFFSET)
      if centred and abs(ee[2] - grasp_z) < 0.01:
        self._phase = "lift"
        return _action(env, np.zeros(3), 0.0, close=True)
      return _action(env, np.append(error_xy, z - ee[2]), turn, close=False)
    if self._phase == "lift":
      if ee[2] >= carry_z - 0.01:
        self._phase = "carry"
        # The held block swings while the arm moves, so aim with its offset measured now.
        self._offset = source[:2] - ee[:2]
      else:
        return _action(env, np.array([0.0, 0.0, carry_z - ee[2]]), 0.0, close=True)
    if self._phase == "carry":
      error_xy = target[:2] - self._offset - ee[:2]
      turn = _square_yaw(env.object_yaws()[self._target] - env.object_yaws()[self._source])
      if np.linalg.norm(error_xy) < 0.01 and abs(turn) < 0.05:
        self._phase = "lower"
      else:
        return _action(env, np.append(error_xy, carry_z - ee[2]), turn, close=True)
    if self._phase == "lower":
      drop = source[2] - (target[2] + size + 0.004)
      if drop < 0.008:
        self._phase = "release"
        return _action(env, np.zeros(3), 0.0, close=False)
      error_xy = target[:2] - self._offset - ee[:2]
      return _action(env, np.append(error_xy, -drop), 0.0, close=True)
    return _action(env, np.array([0.0, 0.0, env.max_displacement]), 0.0, close=False)


class Mixed:
  """Per episode: the script (noisy) with probability `scripted_fraction`, else uniform random."""

  def __init__(self, script, scripted_fraction: float = 1.0, noise: float = 0.0,
               random_action_prob: float = 0.0):
    for name, value in (("scripted_fraction", scripted_fraction),
                        ("random_action_prob", random_action_prob)):
      if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    if noise < 0:
      raise ValueError(f"noise must be >= 0, got {noise}")
    self.script = script
    self.scripted_fraction = float(scripted_fraction)
    self.noise = float(noise)
    self.random_action_prob = float(random_action_prob)
    self._random = Random()
    self.scripted = False

  def reset(self, env, rng):
    self._rng = rng
    self._random.reset(env, rng)
    self.scripted = bool(rng.uniform() < self.scripted_fraction)
    if self.scripted:
      self.script.reset(env, rng)

  def __call__(self, observation):
    if not self.scripted or self._rng.uniform() < self.random_action_prob:
      return self._random(observation)
    action = self.script(observation)
    action[action_space.TRANSLATION] += self._rng.normal(0.0, self.noise, 3).astype(np.float32)
    return np.clip(action, -1.0, 1.0)


def make(task: str, policy: str, scripted_fraction: float = 1.0, noise: float = 0.0,
         random_action_prob: float = 0.0, **script_knobs: float):
  """The collection policy named `policy` ("random" or "scripted") for `task`.

  `script_knobs` are the grasping script's exploration knobs (GRASPING_KNOBS,
  ScriptedGrasping's arguments); stacking rejects non-zero values.
  """
  unknown = sorted(set(script_knobs) - set(GRASPING_KNOBS))
  if unknown:
    raise ValueError(f"unknown script knobs {unknown}; known: {list(GRASPING_KNOBS)}")
  if policy == "random":
    return Random()
  if policy != "scripted":
    raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
  if task == "grasping":
    script = ScriptedGrasping(**script_knobs)
  elif task == "stacking":
    if any(script_knobs.values()):
      raise ValueError(f"the stacking script has no exploration knobs; got {script_knobs}")
    script = ScriptedStacking()
  else:
    raise ValueError(f"task must be one of ['grasping', 'stacking'], got {task!r}")
  return Mixed(script, scripted_fraction, noise, random_action_prob)

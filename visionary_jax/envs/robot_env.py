"""gymnasium.Env base shared by the tasks: action decoding, observation, seeding, failures.

Action (visionary_jax.action_space, 7 floats in [-1, 1]):
  [tx, ty, tz]  end-effector displacement, times `max_displacement` metres
  [sin, cos]    vertical rotation: atan2(sin, cos) / pi * `max_rotation` radians
  [open, close] gripper command, the env takes the argmax (ties open)
Observation: {"image": uint8 [H, W, 3], "gripper_closed": float32 [1] (0 or 1),
              "height": float32 [1] fingertip height above the tray floor, metres}.
"""

import abc
import math
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet

from visionary_jax import action_space
from visionary_jax.envs import scene as scene_lib

HEIGHT_LOW, HEIGHT_HIGH = -0.1, 1.0  # bounds of the height observation, metres


class RobotEnv(gym.Env, abc.ABC):
  """Shared episode loop; tasks implement `_populate`, `_gripper` and `_evaluate`."""

  metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

  def __init__(self, image_size: int, max_steps: int, max_displacement: float = 0.06,
               max_rotation: float = math.pi / 4, physics: scene_lib.Physics = scene_lib.Physics(),
               camera: scene_lib.Camera = scene_lib.Camera(), renderer: str = "tiny",
               render_mode: str | None = None):
    if max_steps < 1:
      raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if not 0 < max_displacement <= 0.2:
      raise ValueError(f"max_displacement must be in (0, 0.2] metres, got {max_displacement}")
    if render_mode not in (None, "rgb_array"):
      raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
    self.render_mode = render_mode
    self.max_steps = int(max_steps)
    self.max_displacement = float(max_displacement)
    self.max_rotation = float(max_rotation)
    self.scene = scene_lib.Scene(image_size, physics, camera, renderer)
    n = self.scene.image_size
    self.action_space = gym.spaces.Box(-1.0, 1.0, (action_space.ACTION_DIM,), np.float32)
    self.observation_space = gym.spaces.Dict({
        "image": gym.spaces.Box(0, 255, (n, n, 3), np.uint8),
        "gripper_closed": gym.spaces.Box(0.0, 1.0, (1,), np.float32),
        "height": gym.spaces.Box(HEIGHT_LOW, HEIGHT_HIGH, (1,), np.float32),
    })
    self._steps = 0
    self._image = None
    self._done = True

  # Task hooks.

  @abc.abstractmethod
  def _populate(self, rng: np.random.Generator):
    """Loads the task's objects into the freshly reset scene."""

  @abc.abstractmethod
  def _gripper(self, close: bool):
    """Carries out the gripper command after the arm motion of a step."""

  @abc.abstractmethod
  def _evaluate(self) -> tuple[bool, bool]:
    """(success, terminated) after a step."""

  # gymnasium API.

  def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
    super().reset(seed=seed)
    failure = ""
    for attempt in range(3):  # a failed drop is redrawn from the same generator
      self.scene.reset()
      try:
        self._populate(self.np_random)
        self.scene.check_physics()
        break
      except (scene_lib.PhysicsFailure, pybullet.error) as e:
        failure = f"reset attempt {attempt}: {e}"
    else:
      raise RuntimeError(f"{type(self).__name__}: scene could not be built: {failure}")
    self._steps = 0
    self._done = False
    return self._observation(), {"reset_failure": failure}

  def step(self, action):
    if self._done:
      raise RuntimeError("step() called on a finished episode; call reset() first")
    action = np.asarray(action, np.float32)
    if action.shape != (action_space.ACTION_DIM,) or not np.all(np.isfinite(action)):
      raise ValueError(f"action must be {action_space.ACTION_DIM} finite floats, got {action!r}")
    action = np.clip(action, -1.0, 1.0)
    translation = action[action_space.TRANSLATION] * self.max_displacement
    sin, cos = action[action_space.ROTATION]
    yaw_change = math.atan2(float(sin), float(cos)) / math.pi * self.max_rotation
    close = bool(action_space.commands_close(action))
    self._steps += 1
    failure = ""
    try:
      self.scene.move(translation, yaw_change)
      self._gripper(close)
      self.scene.check_physics()
      success, terminated = self._evaluate()
    except (scene_lib.PhysicsFailure, pybullet.error, FloatingPointError) as e:
      failure = str(e) or type(e).__name__
      success, terminated = False, True
    reward = 1.0 if success else -0.01
    truncated = not terminated and self._steps >= self.max_steps
    self._done = terminated or truncated
    info = {"success": success, "physics_failure": failure, "steps": self._steps}
    return self._observation(), reward, terminated, truncated, info

  def render(self):
    return None if self._image is None else self._image.copy()

  def close(self):
    self.scene.close()

  def _observation(self) -> dict[str, np.ndarray]:
    self._image = self.scene.render()
    height = self.scene.gripper_height()
    if not math.isfinite(height):
      height = HEIGHT_HIGH
    return {
        "image": self._image,
        "gripper_closed": np.array([float(self.scene.gripper_closed)], np.float32),
        "height": np.array([np.clip(height, HEIGHT_LOW, HEIGHT_HIGH)], np.float32),
    }

  # Privileged state for scripted policies (never part of the observation).

  def object_positions(self) -> np.ndarray:
    """[N, 3] positions of the task's objects."""
    return self.scene.body_positions()

  def object_yaws(self) -> np.ndarray:
    return self.scene.body_yaws()

  def gripper_pose(self) -> tuple[np.ndarray, float]:
    """(commanded end-effector position [3], commanded yaw)."""
    return self.scene.ee_target.copy(), self.scene.yaw_target

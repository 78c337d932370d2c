"""Grasping: pick any of 5 random objects out of the tray (paper III; Quillen et al. 2018).

A close command closes the fingers, lifts the arm to the top of its workspace
and ends the episode; it succeeds when an object is held above the tray.
"""

import numpy as np

from visionary_jax.envs import objects
from visionary_jax.envs import robot_env
from visionary_jax.envs import scene as scene_lib

LIFT_HEIGHT = 0.10  # an object's base this far above the tray floor counts as held, metres


class Grasping(robot_env.RobotEnv):
  """5 objects from the train (900) or test (100) split; at most `max_steps` steps."""

  def __init__(self, image_size: int = 64, max_steps: int = 15, num_objects: int = 5,
               split: str = "train", lift_steps: int = 60, **kwargs):
    super().__init__(image_size, max_steps, **kwargs)
    if num_objects < 1:
      raise ValueError(f"num_objects must be >= 1, got {num_objects}")
    self.num_objects = int(num_objects)
    self.split = split
    self.urdfs = objects.random_objects(split)
    self.lift_steps = int(lift_steps)
    self._attempted = False

  def _populate(self, rng):
    chosen = rng.choice(len(self.urdfs), self.num_objects, replace=False)
    xy = rng.uniform(scene_lib.DROP_LOW, scene_lib.DROP_HIGH, (self.num_objects, 2))
    # Stacked drop heights keep the objects apart while they all fall at once.
    z = scene_lib.TRAY_BOTTOM_Z + 0.08 + 0.05 * np.arange(self.num_objects)
    yaws = rng.uniform(-np.pi, np.pi, self.num_objects)
    self.scene.load_bodies([self.urdfs[i] for i in chosen], np.column_stack([xy, z]), yaws)
    self._attempted = False

  def _gripper(self, close):
    if not close:
      return
    self._attempted = True
    self.scene.set_gripper(True)
    lift = scene_lib.WORKSPACE_HIGH[2] - self.scene.ee_target[2]
    self.scene.move(np.array([0.0, 0.0, lift]), 0.0, steps=self.lift_steps)

  def _evaluate(self):
    if not self._attempted:
      return False, False
    heights = self.scene.body_positions()[:, 2] - scene_lib.TRAY_BOTTOM_Z
    held = any(h > LIFT_HEIGHT and self.scene.in_gripper_contact(b)
               for b, h in zip(self.scene.bodies, heights))
    return held, True

"""Block stacking: place one block stably on another (paper III, Table I).

Close grasps, open releases (the gripper does not move by itself). Success is
declared when one block rests on the other with the gripper open and touching
neither, and the pair is still stacked and at rest `stable_steps` physics
steps later.
"""

import numpy as np

from visionary_jax.envs import objects
from visionary_jax.envs import robot_env
from visionary_jax.envs import scene as scene_lib

BLOCK_SIZE = 0.05  # edge of cube_small.urdf, metres
BLOCK_COLORS = ((0.85, 0.15, 0.1, 1.0), (0.1, 0.35, 0.9, 1.0), (0.1, 0.7, 0.2, 1.0),
                (0.9, 0.8, 0.1, 1.0))
MIN_SEPARATION = 0.10  # between dropped blocks' centres, metres
XY_TOLERANCE = 0.6 * BLOCK_SIZE  # horizontal offset of a stacked pair's centres
REST_SPEED = 0.05  # m/s; faster blocks are not at rest


class Stacking(robot_env.RobotEnv):
  """`num_blocks` 5 cm cubes of distinct colours; at most `max_steps` steps."""

  def __init__(self, image_size: int = 64, max_steps: int = 30, num_blocks: int = 2,
               stable_steps: int = 48, **kwargs):
    super().__init__(image_size, max_steps, **kwargs)
    if not 2 <= num_blocks <= len(BLOCK_COLORS):
      raise ValueError(f"num_blocks must be in [2, {len(BLOCK_COLORS)}], got {num_blocks}")
    self.num_blocks = int(num_blocks)
    self.stable_steps = int(stable_steps)

  def _populate(self, rng):
    xy = np.zeros((self.num_blocks, 2))
    for i in range(self.num_blocks):
      for _ in range(100):
        xy[i] = rng.uniform(scene_lib.DROP_LOW, scene_lib.DROP_HIGH)
        if i == 0 or np.min(np.linalg.norm(xy[:i] - xy[i], axis=1)) >= MIN_SEPARATION:
          break
    z = np.full(self.num_blocks, scene_lib.TRAY_BOTTOM_Z + BLOCK_SIZE / 2 + 0.01)
    yaws = rng.uniform(-np.pi / 4, np.pi / 4, self.num_blocks)
    bodies = self.scene.load_bodies([objects.block_urdf()] * self.num_blocks,
                                    np.column_stack([xy, z]), yaws, settle=False)
    for body, color in zip(bodies, BLOCK_COLORS):
      self.scene.client.changeVisualShape(body, -1, rgbaColor=color)
    self.scene.simulate(self.scene.physics.settle_steps)

  def _gripper(self, close):
    self.scene.set_gripper(close)

  def stacked_pairs(self) -> list[tuple[int, int]]:
    """(top, bottom) indices of blocks resting on one another, by geometry alone."""
    positions = self.scene.body_positions()
    pairs = []
    for top in range(self.num_blocks):
      for bottom in range(self.num_blocks):
        if top == bottom:
          continue
        d = positions[top] - positions[bottom]
        if np.linalg.norm(d[:2]) < XY_TOLERANCE and 0.7 * BLOCK_SIZE < d[2] < 1.3 * BLOCK_SIZE:
          pairs.append((top, bottom))
    return pairs

  def _released(self, pair) -> bool:
    return not any(self.scene.in_gripper_contact(self.scene.bodies[i]) for i in pair)

  def _evaluate(self):
    if self.scene.gripper_closed:
      return False, False
    candidates = [pair for pair in self.stacked_pairs() if self._released(pair)]
    if not candidates:
      return False, False
    self.scene.simulate(self.stable_steps)
    p = self.scene.client
    for pair in self.stacked_pairs():
      speeds = [np.linalg.norm(p.getBaseVelocity(self.scene.bodies[i])[0]) for i in pair]
      if pair in candidates and self._released(pair) and max(speeds) < REST_SPEED:
        return True, True
    return False, False

"""The shared robot scene: a KUKA iiwa with a two-finger gripper over a tray.

PyBullet in DIRECT mode (one physics server per `Scene`), TinyRenderer camera
fixed over the robot's shoulder. Every `reset` rebuilds the world from scratch
(`resetSimulation`), so a seed fully determines the scene whatever ran before.

Coordinates are PyBullet world metres. The tray bottom is at `TRAY_BOTTOM_Z`;
heights reported to the agent are fingertip heights above it.
"""

import dataclasses
import importlib.util
import math
import os
from typing import Sequence

import numpy as np
import pybullet
from pybullet_utils import bullet_client

from visionary_jax.envs import objects

TRAY_POSITION = (0.64, 0.075, -0.19)
TRAY_BOTTOM_Z = -0.184  # top face of the tray floor (measured by a ray test)
TABLE_POSITION = (0.5, 0.0, -0.82)
ROBOT_BASE = (-0.1, 0.0, 0.07)

# End-effector (link 7 frame) workspace: x, y bounded over the tray; z from
# fingertips touching the tray floor (TRAY_BOTTOM_Z + TIP_OFFSET) to well above it.
WORKSPACE_LOW = np.array([0.45, -0.13, 0.088])
WORKSPACE_HIGH = np.array([0.82, 0.28, 0.42])
# Objects are dropped over this x-y rectangle inside the tray walls.
DROP_LOW = np.array([0.52, -0.07])
DROP_HIGH = np.array([0.76, 0.22])
HOME = np.array([0.60, 0.06, 0.36])  # end-effector start, above the middle of the tray

EE_LINK = 6  # lbr_iiwa_link_7, whose frame is commanded by inverse kinematics
YAW_JOINT = 7  # gripper_to_arm: vertical rotation of the gripper
LEFT_FINGER, RIGHT_FINGER = 8, 11
LEFT_TIP, RIGHT_TIP = 10, 13
FINGER_OPEN = 0.3  # finger joint angle, radians (0 = closed)
# The lowest fingertip point is this far below the end-effector link frame (gripper pointing down).
TIP_OFFSET = 0.272

_ARM_JOINTS = tuple(range(7))
# Null-space IK needs one entry per movable joint: 7 arm joints, then the gripper's 5.
_GRIPPER_DOFS = 5
_REST_POSE = [0.0, 0.4, 0.0, -1.6, 0.0, 1.1, 0.0] + [0.0] * _GRIPPER_DOFS  # elbow up, wrist down
_NULL_LOWER = [-2.9, -2.0, -2.9, -2.0, -2.9, -2.0, -3.0] + [-1.0] * _GRIPPER_DOFS
_NULL_UPPER = [2.9, 2.0, 2.9, 2.0, 2.9, 2.0, 3.0] + [1.0] * _GRIPPER_DOFS
_NULL_RANGE = [u - l for l, u in zip(_NULL_LOWER, _NULL_UPPER)]
_DOWN = pybullet.getQuaternionFromEuler([0.0, -math.pi, 0.0])


@dataclasses.dataclass(frozen=True)
class Physics:
  """Simulation settings (see prior-art.md for how they trade speed for success)."""
  time_step: float = 1.0 / 240.0  # seconds per physics step
  solver_iterations: int = 30  # PyBullet numSolverIterations
  action_repeat: int = 40  # physics steps per arm motion command
  settle_steps: int = 100  # physics steps to let dropped objects come to rest
  arm_max_velocity: float = 2.0  # joint speed limit of the arm's position control, rad/s
  arm_force: float = 300.0  # N m
  finger_force: float = 20.0  # N m on each finger joint
  gripper_steps: int = 30  # physics steps to open or close the fingers


@dataclasses.dataclass(frozen=True)
class Camera:
  """Fixed camera over the robot's shoulder looking down into the tray."""
  target: Sequence[float] = (0.64, 0.07, -0.15)
  distance: float = 0.9
  yaw: float = 240.0  # degrees, from the robot's left shoulder
  pitch: float = -55.0  # degrees
  fov: float = 40.0  # vertical field of view, degrees


class PhysicsFailure(Exception):
  """The simulation produced NaN poses or threw a body out of the scene."""


RENDERERS = ("tiny", "egl")


class Scene:
  """A KUKA arm, a table and a tray in its own DIRECT-mode physics server."""

  def __init__(self, image_size: int, physics: Physics = Physics(), camera: Camera = Camera(),
               renderer: str = "tiny"):
    if image_size < 8:
      raise ValueError(f"image_size must be >= 8 pixels, got {image_size}")
    if not 0.0 < camera.fov < 180.0:
      raise ValueError(f"camera fov must be in (0, 180) degrees, got {camera.fov}")
    if renderer not in RENDERERS:
      raise ValueError(f"renderer must be one of {RENDERERS}, got {renderer!r}")
    self.image_size = int(image_size)
    self.physics = physics
    self._p = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
    self._renderer = pybullet.ER_TINY_RENDERER
    if renderer == "egl":
      self._load_egl()
    self._view = self._p.computeViewMatrixFromYawPitchRoll(
        list(camera.target), camera.distance, camera.yaw, camera.pitch, 0.0, 2)
    self._projection = self._p.computeProjectionMatrixFOV(camera.fov, 1.0, 0.05, 5.0)
    self.robot = -1
    self.tray = -1
    self.bodies: list[int] = []  # movable objects loaded by the task
    self.ee_target = HOME.copy()
    self.yaw_target = 0.0
    self.gripper_closed = False

  def _load_egl(self):
    spec = importlib.util.find_spec("eglRenderer")
    plugin = -1 if spec is None else self._p.loadPlugin(spec.origin, "_eglRendererPlugin")
    if plugin < 0:
      self.close()
      raise RuntimeError("renderer='egl': PyBullet's eglRenderer plugin did not load on this "
                         "machine; use renderer='tiny'")
    self._renderer = pybullet.ER_BULLET_HARDWARE_OPENGL

  @property
  def client(self) -> bullet_client.BulletClient:
    return self._p

  def close(self):
    if self._p is not None:
      try:
        self._p.disconnect()
      except pybullet.error:
        pass
      self._p = None

  # World construction.

  def reset(self):
    """Rebuilds the world: table, tray and robot (gripper open at `HOME`), no task bodies.

    `resetSimulation` replaces PyBullet's whole dynamics world (broadphase,
    contact manifolds, solver), so an episode depends on its seed alone.
    Removing the task's bodies and restoring a saved state is not enough: poses
    and velocities come back exactly, yet the contacts of the random objects'
    compound collision shapes then resolve differently depending on the
    episodes that ran before.
    """
    self._build()
    self.bodies = []
    self.ee_target = HOME.copy()
    self.yaw_target = 0.0
    self.gripper_closed = False
    self._command_arm()
    self._command_fingers()

  def _build(self):
    p = self._p
    p.resetSimulation()
    p.setPhysicsEngineParameter(numSolverIterations=self.physics.solver_iterations,
                                deterministicOverlappingPairs=1)
    p.setTimeStep(self.physics.time_step)
    p.setGravity(0.0, 0.0, -9.8)
    root = objects.data_path()
    p.loadURDF(os.path.join(root, "table/table.urdf"), TABLE_POSITION, useFixedBase=True)
    self.tray = p.loadURDF(os.path.join(root, "tray/tray.urdf"), TRAY_POSITION, [0, 0, 1, 0],
                           useFixedBase=True)
    self.robot = p.loadSDF(os.path.join(root, "kuka_iiwa/kuka_with_gripper2.sdf"))[0]
    p.resetBasePositionAndOrientation(self.robot, ROBOT_BASE, [0, 0, 0, 1])
    for joint, angle in zip(_ARM_JOINTS, _REST_POSE):
      p.resetJointState(self.robot, joint, angle)
    # A few IK passes from the rest pose place the arm exactly at HOME.
    for _ in range(3):
      pose = self._ik(HOME)
      for joint in _ARM_JOINTS:
        p.resetJointState(self.robot, joint, pose[joint])
    for joint, angle in ((LEFT_FINGER, -FINGER_OPEN), (RIGHT_FINGER, FINGER_OPEN)):
      p.resetJointState(self.robot, joint, angle)

  def load_bodies(self, urdfs: Sequence[str], positions: np.ndarray, yaws: np.ndarray,
                  settle: bool = True) -> list[int]:
    """Loads objects at positions [N, 3] with yaws [N], then lets them all fall and settle."""
    p = self._p
    for urdf, position, yaw in zip(urdfs, positions, yaws):
      orientation = p.getQuaternionFromEuler([0.0, 0.0, float(yaw)])
      self.bodies.append(p.loadURDF(urdf, [float(v) for v in position], orientation))
    if settle:
      self.simulate(self.physics.settle_steps)
    return list(self.bodies)

  # Robot control.

  def _ik(self, position: np.ndarray) -> Sequence[float]:
    return self._p.calculateInverseKinematics(
        self.robot, EE_LINK, [float(v) for v in position], _DOWN, _NULL_LOWER, _NULL_UPPER,
        _NULL_RANGE, _REST_POSE, maxNumIterations=20)

  def _command_arm(self):
    # The gripper points down, so a world yaw of +a is a gripper joint angle of -a.
    p = self._p
    pose = self._ik(self.ee_target)
    for joint in _ARM_JOINTS:  # setJointMotorControlArray has no velocity limit
      p.setJointMotorControl2(self.robot, joint, pybullet.POSITION_CONTROL, targetPosition=pose[joint],
                              force=self.physics.arm_force, maxVelocity=self.physics.arm_max_velocity,
                              positionGain=0.3, velocityGain=1.0)
    p.setJointMotorControl2(self.robot, YAW_JOINT, pybullet.POSITION_CONTROL,
                            targetPosition=-self.yaw_target, force=self.physics.arm_force)

  def _command_fingers(self):
    p = self._p
    angle = 0.0 if self.gripper_closed else FINGER_OPEN
    force = self.physics.finger_force
    p.setJointMotorControl2(self.robot, LEFT_FINGER, pybullet.POSITION_CONTROL, targetPosition=-angle,
                            force=force)
    p.setJointMotorControl2(self.robot, RIGHT_FINGER, pybullet.POSITION_CONTROL, targetPosition=angle,
                            force=force)
    for tip in (LEFT_TIP, RIGHT_TIP):
      p.setJointMotorControl2(self.robot, tip, pybullet.POSITION_CONTROL, targetPosition=0.0,
                              force=force)

  def move(self, displacement: np.ndarray, yaw_change: float, steps: int | None = None):
    """Moves the end-effector target by `displacement` [3] (clipped to the workspace) and turns it."""
    self.ee_target = np.clip(self.ee_target + np.asarray(displacement, np.float64), WORKSPACE_LOW,
                             WORKSPACE_HIGH)
    self.yaw_target = float(np.clip(self.yaw_target + yaw_change, -math.pi, math.pi))
    self._command_arm()
    self.simulate(self.physics.action_repeat if steps is None else steps)

  def set_gripper(self, closed: bool):
    """Opens or closes the fingers in place (no-op if already in that state)."""
    if bool(closed) == self.gripper_closed:
      return
    self.gripper_closed = bool(closed)
    self._command_fingers()
    self.simulate(self.physics.gripper_steps)

  def simulate(self, steps: int):
    for _ in range(steps):
      self._p.stepSimulation()

  # State.

  def ee_position(self) -> np.ndarray:
    return np.array(self._p.getLinkState(self.robot, EE_LINK)[4])  # link frame, as IK targets

  def gripper_height(self) -> float:
    """Fingertip height above the tray floor, metres."""
    return float(self.ee_position()[2] - TIP_OFFSET - TRAY_BOTTOM_Z)

  def body_positions(self) -> np.ndarray:
    """[N, 3] base positions of the task's objects."""
    if not self.bodies:
      return np.zeros((0, 3))
    return np.array([self._p.getBasePositionAndOrientation(b)[0] for b in self.bodies])

  def body_yaws(self) -> np.ndarray:
    return np.array([self._p.getEulerFromQuaternion(self._p.getBasePositionAndOrientation(b)[1])[2]
                     for b in self.bodies])

  def in_gripper_contact(self, body: int) -> bool:
    """Whether `body` touches a finger or fingertip link."""
    fingers = {LEFT_FINGER, RIGHT_FINGER, LEFT_TIP, RIGHT_TIP}
    return any(c[3] in fingers for c in self._p.getContactPoints(self.robot, body))

  def touches_both_fingers(self, body: int) -> bool:
    links = {c[3] for c in self._p.getContactPoints(self.robot, body)}
    return bool(links & {LEFT_FINGER, LEFT_TIP}) and bool(links & {RIGHT_FINGER, RIGHT_TIP})

  def check_physics(self):
    """Raises PhysicsFailure on NaN poses or a body outside the scene's bounds."""
    positions = np.concatenate([self.body_positions(), self.ee_position()[None]], axis=0)
    if not np.all(np.isfinite(positions)):
      raise PhysicsFailure("non-finite body position")
    low = np.array([-0.5, -1.0, -0.6])
    high = np.array([1.6, 1.0, 1.5])
    outside = np.any((positions < low) | (positions > high), axis=1)
    if np.any(outside):
      raise PhysicsFailure(f"body {int(np.argmax(outside))} left the scene at "
                           f"{positions[int(np.argmax(outside))].round(3).tolist()}")

  def render(self) -> np.ndarray:
    """Camera image, uint8 [image_size, image_size, 3]."""
    n = self.image_size
    # shadow=0 gives the same pixels as the default here and saves about a tenth of the frame time.
    _, _, rgba, _, _ = self._p.getCameraImage(n, n, self._view, self._projection, shadow=0,
                                              renderer=self._renderer)
    return np.asarray(rgba, np.uint8).reshape(n, n, 4)[..., :3].copy()

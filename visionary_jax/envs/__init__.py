"""PyBullet tasks of the paper (grasping, block stacking) and data-collection policies."""

from typing import Any, Mapping

from visionary_jax.envs import scene as scene_lib
from visionary_jax.episodes import shards as shards_lib

TASKS = ("grasping", "stacking")

_FIELDS = ("image_size", "max_steps", "num_objects", "split", "max_displacement", "max_rotation",
           "time_step", "solver_iterations", "action_repeat", "settle_steps", "gripper_steps",
           "lift_steps", "stable_steps", "renderer", "camera_fov")
# Configs written before the field existed (old exports) rendered with the original camera,
# as did the shards of that time.
_LEGACY_DEFAULTS = {"camera_fov": shards_lib.LEGACY_CAMERA_FOV}


def make(task: str, env_config: Mapping[str, Any], render_mode: str | None = None, **overrides):
  """Builds the task's env from a config's `env` section (experiments/configs/base.py:env)."""
  if task not in TASKS:
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")
  c = {**_LEGACY_DEFAULTS, **dict(env_config), **overrides}
  missing = [f for f in _FIELDS if f not in c]
  if missing:
    raise ValueError(f"env config is missing field(s) {missing}")
  unknown = sorted(set(c) - set(_FIELDS))
  if unknown:
    raise ValueError(f"env config has unknown field(s) {unknown}")
  physics = scene_lib.Physics(
      time_step=float(c["time_step"]), solver_iterations=int(c["solver_iterations"]),
      action_repeat=int(c["action_repeat"]), settle_steps=int(c["settle_steps"]),
      gripper_steps=int(c["gripper_steps"]))
  common = dict(image_size=int(c["image_size"]), max_steps=int(c["max_steps"]),
                max_displacement=float(c["max_displacement"]),
                max_rotation=float(c["max_rotation"]), physics=physics, renderer=c["renderer"],
                camera=scene_lib.Camera(fov=float(c["camera_fov"])), render_mode=render_mode)
  if task == "grasping":
    from visionary_jax.envs import grasping  # pylint: disable=g-import-not-at-top
    return grasping.Grasping(num_objects=int(c["num_objects"]), split=c["split"],
                             lift_steps=int(c["lift_steps"]), **common)
  from visionary_jax.envs import stacking  # pylint: disable=g-import-not-at-top
  return stacking.Stacking(num_blocks=int(c["num_objects"]), stable_steps=int(c["stable_steps"]),
                           **common)


def make_env(task: str, preset: str = "cpu", render_mode: str | None = None, **overrides):
  """The task's env at a config preset; keyword arguments replace fields of the preset's `env` section.

  `gymnasium.make("visionary_jax/Grasping-v0", preset="smoke")` calls this (ids registered by
  `import visionary_jax`).
  """
  from experiments.configs import base  # pylint: disable=g-import-not-at-top
  return make(task, base.env(preset, task), render_mode=render_mode, **overrides)

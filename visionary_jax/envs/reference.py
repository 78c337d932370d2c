"""Reference policies to evaluate beside the learned ones (experiments/evaluate.py --policy).

Each has the interface evaluation.run_episode uses for an export.Policy:
`reseed(seed)` before a trial, `reset(env)` right after its env.reset, then
`policy(observation) -> action float32 [7]` (visionary_jax.action_space). A
trial's randomness comes from `np.random.default_rng(seed)` built in `reset`,
so it acts the same in whichever process runs it.

  random         uniform actions in [-1, 1]^7 (policies.Random).
  descend_close  no privileged state: straight down at full speed with the
                 gripper open, then close where it is (DescendClose).
  script         the data collection's script in every episode, with the
                 config's collect noise and exploration knobs
                 (policies.make(task, "scripted", scripted_fraction=1.0, ...)).
"""

from typing import Any, Mapping

import numpy as np

from visionary_jax import action_space
from visionary_jax.envs import policies

NAMES = ("random", "descend_close", "script")
# The `collect` fields the "script" reference reads (experiments/configs/base.py:collect).
COLLECT_FIELDS = ("noise", "random_action_prob") + policies.GRASPING_KNOBS


def _command(tz: float, close: bool) -> np.ndarray:
  """Action [7]: vertical translation `tz` (action units), no x-y, no rotation, one-hot gripper command."""
  a = np.zeros(action_space.ACTION_DIM, np.float32)
  a[action_space.TRANSLATION] = (0.0, 0.0, tz)
  a[action_space.ROTATION] = (0.0, 1.0)  # sin 0, cos 1: no yaw change
  a[action_space.GRIPPER_COMMAND.start + (action_space.GRIPPER_CLOSE if close else action_space.GRIPPER_OPEN)] = 1.0
  return a


class DescendClose:
  """Moves straight down at full speed (tz = -1, gripper open), then closes without moving.

  It reads only the observed fingertip height (metres above the tray floor) and
  closes at the first observation where the height is below CLOSE_HEIGHT or
  fell less than STALL since the previous one (the fingers rest on an object,
  or the workspace's floor stopped the arm).

  CLOSE_HEIGHT is the grasping script's tolerance around its grasp height: the
  script puts the fingertips 3 cm below an object's base position but not
  below the floor (TRAY_BOTTOM_Z + TIP_OFFSET is the workspace's lowest
  end-effector height, WORKSPACE_LOW[2]), which for the objects resting in the
  tray is height 0, and closes within 0.01 m of it. A full-speed step lowers the
  fingertips by max_displacement (0.06 m at every preset); STALL is a twelfth of it.
  """

  CLOSE_HEIGHT = 0.01  # metres above the tray floor
  STALL = 0.005  # metres of descent per step under which the descent has stopped

  def reset(self, env, rng: np.random.Generator):
    del env, rng
    self._previous = None

  def __call__(self, observation: Mapping[str, np.ndarray]) -> np.ndarray:
    height = float(np.asarray(observation["height"]).reshape(-1)[0])
    stalled = self._previous is not None and self._previous - height < self.STALL
    self._previous = height
    if height < self.CLOSE_HEIGHT or stalled:
      return _command(0.0, close=True)
    return _command(-1.0, close=False)


def collect_knobs(collect_config: Mapping[str, Any] | None) -> dict[str, float]:
  """The COLLECT_FIELDS of a config's `collect` section as plain floats; ValueError names a missing one."""
  collect_config = dict(collect_config or {})
  missing = [f for f in COLLECT_FIELDS if f not in collect_config]
  if missing:
    raise ValueError(f"the script reference needs collect config field(s) {missing}")
  return {f: float(collect_config[f]) for f in COLLECT_FIELDS}


class Reference:
  """A per-episode policy (reset(env, rng), policy(observation)) behind evaluation's interface.

  Attributes:
    name: one of NAMES.
    policy: the wrapped policy (policies.Random, DescendClose or policies.Mixed).
  """

  def __init__(self, name: str, policy: Any, seed: int = 0):
    self.name = name
    self.policy = policy
    self.reseed(seed)

  def reseed(self, seed: int) -> None:
    """The next `reset` starts the policy's random stream np.random.default_rng(seed)."""
    self._seed = int(seed)

  def reset(self, env) -> None:
    """Starts an episode of `env` (just reset); scripted policies keep it to read object poses."""
    self.policy.reset(env, np.random.default_rng(self._seed))

  def __call__(self, observation: Mapping[str, np.ndarray]) -> np.ndarray:
    """observation {"image": uint8 [S, S, 3], "gripper_closed": [1], "height": [1]} -> action float32 [7]."""
    return np.asarray(self.policy(observation), np.float32)


def make(name: str, task: str, collect_config: Mapping[str, Any] | None = None, seed: int = 0) -> Reference:
  """The reference policy `name` for `task`; "script" reads COLLECT_FIELDS of `collect_config`.

  Raises ValueError for an unknown name or task, or invalid or missing collect fields.
  """
  if name not in NAMES:
    raise ValueError(f"reference policy must be one of {NAMES}, got {name!r}")
  if task not in ("grasping", "stacking"):
    raise ValueError(f"task must be one of ['grasping', 'stacking'], got {task!r}")
  if name == "random":
    policy = policies.Random()
  elif name == "descend_close":
    policy = DescendClose()
  else:
    policy = policies.make(task, "scripted", scripted_fraction=1.0, **collect_knobs(collect_config))
  return Reference(name, policy, seed)

"""Layout of the action and of the state-action vector shared by envs, networks and CEM.

The paper's action is a_t = (T, R, gripper command): a Cartesian translation
T in R^3, a vertical rotation encoded as (sin, cos) in R^2 and a one-hot
gripper command (open, close). As in QT-Opt the low-dimensional state
(gripper closed, gripper height above the tray bottom) enters the Q-network
through the action path, so networks consume one concatenated vector:

  state_action = [tx, ty, tz, sin, cos, open, close, gripper_closed, height]
"""

from typing import Mapping

import numpy as np

TRANSLATION = slice(0, 3)
ROTATION = slice(3, 5)
GRIPPER_COMMAND = slice(5, 7)
ACTION_DIM = 7

GRIPPER_CLOSED = slice(7, 8)
HEIGHT = slice(8, 9)
STATE_DIM = 2

STATE_ACTION_DIM = ACTION_DIM + STATE_DIM

# Blocks that the action path embeds separately and sums (Grasping44: one dense per block).
BLOCKS: Mapping[str, slice] = {
  "translation": TRANSLATION,
  "rotation": ROTATION,
  "gripper_command": GRIPPER_COMMAND,
  "gripper_closed": GRIPPER_CLOSED,
  "height": HEIGHT,
}

GRIPPER_OPEN, GRIPPER_CLOSE = 0, 1


def commands_close(action: np.ndarray) -> np.ndarray:
  """bool [...]: actions [..., 7] whose gripper command is "close" (its one-hot's argmax, ties: open)."""
  command = np.asarray(action)[..., GRIPPER_COMMAND]
  return command[..., GRIPPER_CLOSE] > command[..., GRIPPER_OPEN]


def state_action(action: np.ndarray, gripper_closed, height) -> np.ndarray:
  """Concatenates actions [..., 7] with state scalars broadcast to [..., 1] each -> [..., 9]."""
  action = np.asarray(action, np.float32)
  batch = action.shape[:-1]
  closed = np.broadcast_to(np.asarray(gripper_closed, np.float32), batch)[..., None]
  h = np.broadcast_to(np.asarray(height, np.float32), batch)[..., None]
  return np.concatenate([action, closed, h], axis=-1)

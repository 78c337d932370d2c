"""Grasping: a KUKA arm picks one of 5 random objects from a tray.

Select a preset as `--config=experiments/configs/grasping.py:cpu`.
"""

import ml_collections

from experiments.configs import base


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  return base.task_config("grasping", preset)

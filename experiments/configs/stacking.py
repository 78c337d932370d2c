"""Block stacking: the arm places one block stably on another.

Select a preset as `--config=experiments/configs/stacking.py:cpu`.
"""

import ml_collections

from experiments.configs import base


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  return base.task_config("stacking", preset)

"""Block stacking: the arm places one block stably on another.

Select a preset as `--config=experiments/configs/stacking.py:cpu`.
"""

import ml_collections

from experiments.configs import base


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  preset = base.check_preset(preset)
  config = ml_collections.ConfigDict()
  config.task = "stacking"
  config.preset = preset
  config.seed = 0  # every random stream of a run derives from this
  config.network = base.network(preset)
  config.env = base.env(preset, "stacking")
  config.collect = base.collect(preset, "stacking")
  config.replay = base.replay(preset)
  config.train = base.train(preset)
  config.cem = base.cem(preset)  # the policy's CEM (evaluation and export)
  return config

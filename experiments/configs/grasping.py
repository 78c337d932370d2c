"""Grasping: a KUKA arm picks one of 5 random objects from a tray.

Select a preset as `--config=experiments/configs/grasping.py:cpu`.
"""

import ml_collections

from experiments.configs import base


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  preset = base.check_preset(preset)
  config = ml_collections.ConfigDict()
  config.task = "grasping"
  config.preset = preset
  config.seed = 0  # every random stream of a run derives from this
  config.network = base.network(preset)
  config.env = base.env(preset, "grasping")
  config.collect = base.collect(preset, "grasping")
  config.replay = base.replay(preset)
  config.train = base.train(preset)
  config.cem = base.cem(preset)  # the policy's CEM (evaluation and export)
  return config

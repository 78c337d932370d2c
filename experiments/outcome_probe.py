"""Supervised outcome probe: can the network tell successful grasp attempts from failed ones?

  python -m experiments.outcome_probe --config=experiments/configs/grasping.py:cpu \\
      --config.train.dataset_dir=COLLECT_WORKDIR/episodes --steps=800 --eval_every=200 \\
      [--arch=baseline] [--augment_shift=4] [--output=probe.json]

Trains the network (`baseline` or a genotype JSON) to predict the outcome of
the dataset's grasp attempts and prints the held-out AUC as it goes
(visionary_jax/probes/outcome.py); the last line is one JSON object with the
final point, and --output gets the whole curve.
"""

import json

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from experiments import launcher
from visionary_jax import atomic
from visionary_jax import genotype as genotype_lib
from visionary_jax.episodes import dataset as dataset_lib
from visionary_jax.probes import outcome as outcome_probe
from visionary_jax.qtopt import trainer

_CONFIG = config_flags.DEFINE_config_file("config", None, "Task config file:preset.", lock_config=True)
_ARCH = flags.DEFINE_string("arch", "baseline", "baseline | path to a genotype JSON.")
_STEPS = flags.DEFINE_integer("steps", 800, "Gradient steps at config.replay.batch_size.", lower_bound=1)
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 200, "Steps between held-out AUC measurements.",
                                  lower_bound=1)
_AUGMENT_SHIFT = flags.DEFINE_integer("augment_shift", 0, "Random-shift pixels of the training images, 0: off.",
                                     lower_bound=0)
_HOLDOUT_EVERY = flags.DEFINE_integer("holdout_every", 5, "Every k-th episode's attempts are held out.",
                                     lower_bound=2)
_OUTPUT = flags.DEFINE_string("output", None, "Optional JSON file for the curve and the command's settings.")
flags.mark_flags_as_required(["config"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # jax logs its backend search at INFO
  launcher.check_output_file("output", _OUTPUT.value)
  config = _CONFIG.value
  arch = trainer.architecture_from_flag(_ARCH.value)
  if not isinstance(arch, genotype_lib.Genotype):
    raise app.UsageError("--arch must be 'baseline' or a genotype JSON file (the probe trains a fixed network)")
  data = dataset_lib.from_train_config(config)
  curve = outcome_probe.run(config, data, arch, _STEPS.value, _EVAL_EVERY.value, _AUGMENT_SHIFT.value,
                            _HOLDOUT_EVERY.value, log=lambda line: print(line, flush=True))
  if _OUTPUT.value:
    atomic.write_json(_OUTPUT.value, {
        "dataset_dir": config.train.dataset_dir, "preset": config.preset, "arch": _ARCH.value,
        "augment_shift": _AUGMENT_SHIFT.value, "holdout_every": _HOLDOUT_EVERY.value,
        "batch_size": config.replay.batch_size, "learning_rate": config.train.learning_rate,
        "optimizer": config.train.optimizer, "curve": curve})
  print(json.dumps(curve[-1], sort_keys=True), flush=True)


def run():
  launcher.run(main)


if __name__ == "__main__":
  run()

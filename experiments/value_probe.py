"""An exported Q-function's values beside its dataset's returns, by gripper state and height.

  python -m experiments.value_probe --export=RUN/train/export [--dataset_dir=DIR] \\
      [--transitions=2048] [--scenes=64] [--attempts=2048] [--seed=0] [--output=probe.json]

The dataset defaults to the one the run trained on (the export's config.json,
`train.dataset_dir`), the discount to its `train.gamma`. Prints the Markdown
table of visionary_jax/probes/value.py; the last line is one JSON object with
the overall figures, and --output gets everything. With --scenes, the start
states' Q maps of x-y moves say how much the preferred move depends on the
image (`value_probe.scene_dependence`: an interaction share near 0 means the
same move is preferred whatever the scene). With --attempts, the AUC of Q over
the data's grasp attempts says whether Q of closing tells a success from a
failure by the image (`value_probe.attempt_discrimination`; 0.5: it cannot).
"""

import json

from absl import app
from absl import flags
from absl import logging

from experiments import launcher
from visionary_jax import atomic
from visionary_jax import export
from visionary_jax.episodes import dataset as dataset_lib
from visionary_jax.probes import value as value_probe

_EXPORT = flags.DEFINE_string("export", None, "Export directory (visionary_jax.export).")
_DATASET_DIR = flags.DEFINE_string("dataset_dir", "", "Episode shards; empty: the export's train.dataset_dir.")
_TRANSITIONS = flags.DEFINE_integer("transitions", 2048, "Transitions drawn (without replacement).",
                                   lower_bound=1)
_SCENES = flags.DEFINE_integer("scenes", 64, "Episode start states whose Q maps of x-y moves are compared; 0: none.",
                               lower_bound=0)
_ATTEMPTS = flags.DEFINE_integer("attempts", 2048, "Grasp attempts (closing transitions) scored for the AUC; 0: none.",
                                 lower_bound=0)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the draw.")
_OUTPUT = flags.DEFINE_string("output", None, "Optional JSON file for the full result.")
flags.mark_flags_as_required(["export"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  launcher.check_output_file("output", _OUTPUT.value)
  try:
    config = export.read_config(_EXPORT.value, ("train", "network", "env"))
    policy = export.load_policy(_EXPORT.value)
  except ValueError as e:
    raise ValueError(f"--export: {e}") from e
  if _DATASET_DIR.value:
    config.train.dataset_dir = _DATASET_DIR.value
  try:
    dataset_dir = dataset_lib.check_train_dataset_dir(config)
    data = dataset_lib.Dataset(dataset_dir, image_size=policy.network.spec.image_size, mmap=True,
                               verify_checksum=False, camera_fov=config.env.get("camera_fov"))
  except ValueError as e:
    raise ValueError(f"--dataset_dir: {e}") from e
  try:
    result = value_probe.probe(policy.network, policy.variables, data, float(config.train.gamma),
                               _TRANSITIONS.value, _SEED.value)
  except ValueError as e:
    raise app.UsageError(f"--transitions: {e}") from e
  if _SCENES.value:
    try:
      maps = value_probe.start_state_maps(policy.network, policy.variables, data, _SCENES.value, seed=_SEED.value)
    except ValueError as e:
      raise app.UsageError(f"--scenes: {e}") from e
    result["start_state"] = dict(value_probe.scene_dependence(maps), scenes=_SCENES.value)
  if _ATTEMPTS.value:
    result["attempts"] = value_probe.attempt_discrimination(policy.network, policy.variables, data, _ATTEMPTS.value,
                                                           seed=_SEED.value)
  result.update(export=_EXPORT.value, dataset_dir=dataset_dir)
  print(value_probe.markdown(result), flush=True)
  if _OUTPUT.value:
    atomic.write_json(_OUTPUT.value, result)
  start = {f"start_{k}": v for k, v in result.get("start_state", {}).items()}
  attempts = {f"attempt_{k}": v for k, v in result.get("attempts", {}).items()}
  print(json.dumps(dict(result["overall"], transitions=result["transitions"], **start, **attempts), sort_keys=True),
        flush=True)


def run():
  launcher.run(main)


if __name__ == "__main__":
  run()

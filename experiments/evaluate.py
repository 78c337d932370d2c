"""Success rate of an exported or a reference policy in PyBullet, with a 95 % Wilson interval.

  python -m experiments.evaluate --export=DIR --trials=200 [--workers=2] [--seed=0] [--split=test]
      [--cem_num_samples=N --cem_num_elites=E --cem_iterations=I]
  python -m experiments.evaluate --policy=random|descend_close|script
      --config=experiments/configs/grasping.py:cpu --trials=200 [--workers=2] [--seed=0] [--split=test]

With --policy=export (the default) the task and env settings come from
DIR/config.json, and so does the policy's CEM unless a --cem_* flag replaces one
of its sizes. A reference policy (visionary_jax/envs/reference.py) takes the
task, env and collect sections from --config instead. The last line printed is
one JSON object (without the per-trial list, which goes to --output if given).
"""

import json

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from experiments import launcher
from visionary_jax import atomic
from visionary_jax import evaluation
from visionary_jax import export
from visionary_jax.envs import reference

_POLICY = flags.DEFINE_enum("policy", "export", ["export", *reference.NAMES],
                            "export: the CEM policy of --export; else a reference policy configured by --config.")
_EXPORT = flags.DEFINE_string("export", None, "Export directory (visionary_jax.export); --policy=export only.")
_CONFIG = config_flags.DEFINE_config_file("config", None, "Task config file:preset; reference policies only.",
                                          lock_config=True)
_TRIALS = flags.DEFINE_integer("trials", 200, "Number of trials.", lower_bound=1)
_WORKERS = flags.DEFINE_integer("workers", 2, "Worker processes (0: in this process).", lower_bound=0)
_SEED = flags.DEFINE_integer("seed", 0, "Evaluation seed: trial t resets with trial_seed(seed, t).")
_SPLIT = flags.DEFINE_enum("split", "test", ["train", "test"], "Grasping object split.")
_CEM_FLAGS = {field: flags.DEFINE_integer(f"cem_{field}", 0, f"Policy CEM {field}, 0: the export's config.json.",
                                        lower_bound=0)
              for field in ("num_samples", "num_elites", "iterations")}
_OUTPUT = flags.DEFINE_string("output", None, "Optional JSON file for the full result.")


def _evaluate_export():
  if _EXPORT.value is None:
    raise app.UsageError("--export is required with --policy=export")
  if flags.FLAGS["config"].present:
    raise app.UsageError("--config is for reference policies; --policy=export reads DIR/config.json of --export")
  try:
    config = export.read_config(_EXPORT.value, ("task", "env")).to_dict()
  except ValueError as e:
    raise ValueError(f"--export: {e}") from e
  cem_overrides = {}
  for field, flag in _CEM_FLAGS.items():
    if flag.value < 0:
      raise app.UsageError(f"--cem_{field} must be a positive integer (0: the export's), got {flag.value}")
    if flag.value:
      cem_overrides[field] = flag.value
  try:
    export.policy_cem_config(config.get("cem", {}), cem_overrides)
  except ValueError as e:
    raise app.UsageError(f"--cem_* flags with {_EXPORT.value}/config.json: {e}") from e
  result = evaluation.evaluate(_EXPORT.value, config["task"], config["env"], _TRIALS.value, _WORKERS.value,
                               _SEED.value, _SPLIT.value, cem_overrides)
  result["policy"] = "export"
  if cem_overrides:
    result["cem_overrides"] = cem_overrides
  return result


def _evaluate_reference():
  name = _POLICY.value
  if _EXPORT.value is not None:
    raise app.UsageError(f"--export is only for --policy=export; --policy={name} takes its settings from --config")
  given = [f"--cem_{field}" for field, flag in _CEM_FLAGS.items() if flag.value]
  if given:
    raise app.UsageError(f"{', '.join(given)} only apply to --policy=export, not --policy={name}")
  if _CONFIG.value is None:
    raise app.UsageError(f"--config is required with --policy={name} (e.g. experiments/configs/grasping.py:cpu)")
  config = _CONFIG.value
  try:
    return evaluation.evaluate_reference(name, config.task, config.env.to_dict(), config.collect.to_dict(),
                                         _TRIALS.value, _WORKERS.value, _SEED.value, _SPLIT.value)
  except ValueError as e:
    raise app.UsageError(f"--policy={name} with --config: {e}") from e


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
  launcher.check_output_file("output", _OUTPUT.value)
  result = _evaluate_export() if _POLICY.value == "export" else _evaluate_reference()
  if _OUTPUT.value:
    atomic.write_json(_OUTPUT.value, result)
  print(json.dumps({k: v for k, v in result.items() if k != "per_trial"}, sort_keys=True), flush=True)


def run():
  launcher.run(main)


if __name__ == "__main__":
  run()

"""Watch an exported policy act: evaluation trials step by step, as text, PNG frames and JSON.

  python -m experiments.rollout --export=DIR [--trials=4] [--first_trial=0] [--seed=0] [--split=test] \\
      [--frames=rollouts.png] [--gif=rollouts.gif] [--output=rollouts.json]

Trial t is trial t of `experiments.evaluate --seed=SEED` (same scene, same CEM
random stream), so its outcome here is the one the evaluation counted. Each
trial prints one line per step: the gripper's height above the tray (m) and
state (o/c), the commanded translation and the gripper command.
"""

import json

from absl import app
from absl import flags
from absl import logging

from experiments import launcher
from visionary_jax import atomic
from visionary_jax import evaluation
from visionary_jax import export
from visionary_jax.viz import plots

_EXPORT = flags.DEFINE_string("export", None, "Export directory (visionary_jax.export).")
_TRIALS = flags.DEFINE_integer("trials", 4, "Number of trials.", lower_bound=1)
_FIRST_TRIAL = flags.DEFINE_integer("first_trial", 0, "Index of the first trial.", lower_bound=0)
_SEED = flags.DEFINE_integer("seed", 0, "Evaluation seed (as in experiments.evaluate).")
_SPLIT = flags.DEFINE_enum("split", "test", ["train", "test"], "Grasping object split.")
_FRAMES = flags.DEFINE_string("frames", None, "Optional PNG of the camera frames, a row per trial.")
_GIF = flags.DEFINE_string("gif", None, "Optional animated GIF of the trials side by side, a frame per step.")
_COLUMNS = flags.DEFINE_integer("columns", 10, "Frames per row of --frames at most.", lower_bound=1)
_OUTPUT = flags.DEFINE_string("output", None, "Optional JSON file of every step (without images).")
flags.mark_flags_as_required(["export"])


def _step_text(step) -> str:
  a = step["action"]
  state, command = plots.gripper_labels(step)
  return f"h={step['height']:.3f}{state} T=({a[0]:+.2f},{a[1]:+.2f},{a[2]:+.2f}) {command}"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  launcher.check_output_file("frames", _FRAMES.value)
  launcher.check_output_file("output", _OUTPUT.value)
  launcher.check_output_file("gif", _GIF.value)
  try:
    config = export.read_config(_EXPORT.value, ("task", "env"))
    policy = export.load_policy(_EXPORT.value)
  except ValueError as e:
    raise ValueError(f"--export: {e}") from e
  from visionary_jax import envs  # pylint: disable=g-import-not-at-top
  env = envs.make(config.task, evaluation.env_config_for_split(config.task, config.env.to_dict(), _SPLIT.value))
  trials = []
  try:
    for trial in range(_FIRST_TRIAL.value, _FIRST_TRIAL.value + _TRIALS.value):
      success, steps = evaluation.run_episode(policy, env, _SEED.value, trial, record=True)
      trials.append({"trial": trial, "success": success, "steps": steps})
      print(f"trial {trial}: {'success' if success else 'failure'} after {len(steps)} steps", flush=True)
      for k, step in enumerate(steps):
        print(f"  {k:2d} {_step_text(step)}", flush=True)
  finally:
    env.close()
  if _FRAMES.value:
    plots.rollout_frames(trials, _FRAMES.value, _COLUMNS.value)
  if _GIF.value:
    plots.rollout_gif(trials, _GIF.value)
  summary = {"export": _EXPORT.value, "task": config.task, "seed": _SEED.value, "split": _SPLIT.value,
             "successes": sum(t["success"] for t in trials), "trials": len(trials)}
  if _OUTPUT.value:
    atomic.write_json(_OUTPUT.value, dict(summary, per_trial=[
        {"trial": t["trial"], "success": t["success"],
         "steps": [{"height": s["height"], "gripper_closed": s["gripper_closed"], "action": s["action"].tolist(),
                    "reward": s["reward"]} for s in t["steps"]]} for t in trials]))
  print(json.dumps(summary, sort_keys=True), flush=True)


def run():
  launcher.run(main)


if __name__ == "__main__":
  run()

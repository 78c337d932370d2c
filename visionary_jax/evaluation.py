"""Success rate of a policy in the PyBullet tasks, over several worker processes.

The policy is an export directory's CEM policy (`evaluate`) or a reference
policy of visionary_jax.envs.reference (`evaluate_reference`). Trial t resets
its env and the policy's random stream from `trial_seed(seed, t)`, so a
trial's outcome does not depend on how trials are spread over workers.
Grasping trials use the test objects unless told otherwise. Workers are
spawned (not forked) processes that each build the policy from a spec of plain
data (`export_spec`, `reference_spec`): nothing but the spec, the env section
and seeds crosses the process boundary.
"""

import json
import multiprocessing as mp
import os
from typing import Any, Mapping, Sequence

import numpy as np

from visionary_jax import atomic
from visionary_jax.study import statistics

EVAL_SEED_BASE = 1 << 30  # evaluation seeds live apart from data-collection seeds (config seeds < 2**30)


def trial_seed(seed: int, trial: int) -> int:
  """env.reset seed of evaluation trial `trial`."""
  if not 0 <= seed < EVAL_SEED_BASE or not 0 <= trial < 2**32:
    raise ValueError(f"evaluation seed {seed} or trial {trial} out of range")
  return ((EVAL_SEED_BASE + int(seed)) << 32) + int(trial)


def export_spec(export_dir: str, cem_overrides: Mapping[str, Any] | None = None) -> tuple:
  """("export", export_dir, cem_overrides dict): builds export.load_policy(export_dir, ...) in a worker."""
  return ("export", str(export_dir), dict(cem_overrides or {}))


def reference_spec(name: str, task: str, collect_config: Mapping[str, Any] | None = None) -> tuple:
  """("reference", name, collect knobs dict): builds reference.make(name, task, ...) in a worker.

  Raises ValueError (in this process) for an unknown name or task or missing collect fields.
  """
  from visionary_jax.envs import reference  # pylint: disable=g-import-not-at-top
  knobs = reference.collect_knobs(collect_config) if name == "script" else {}
  reference.make(name, task, knobs)
  return ("reference", name, knobs)


def make_policy(spec: Sequence[Any], task: str, seed: int = 0) -> Any:
  """The policy of an `export_spec` or `reference_spec`: reseed(seed), [reset(env)], __call__(observation)."""
  kind = spec[0]
  if kind == "export":
    from visionary_jax import export  # pylint: disable=g-import-not-at-top
    _, export_dir, cem_overrides = spec
    return export.load_policy(export_dir, seed=seed, cem_overrides=cem_overrides or None)
  if kind == "reference":
    from visionary_jax.envs import reference  # pylint: disable=g-import-not-at-top
    _, name, collect_config = spec
    return reference.make(name, task, collect_config, seed=seed)
  raise ValueError(f"policy spec kind must be 'export' or 'reference', got {kind!r}")


def run_spec_trials(spec: Sequence[Any], task: str, env_config: Mapping[str, Any], seed: int,
                    trials: Sequence[int]) -> list[bool]:
  """Runs the given trials of the policy `spec` (export_spec, reference_spec) in this process."""
  from visionary_jax import envs  # pylint: disable=g-import-not-at-top
  policy = make_policy(spec, task, seed)
  env = envs.make(task, env_config)
  try:
    return [run_episode(policy, env, seed, t)[0] for t in trials]
  finally:
    env.close()


def run_trials(export_dir: str, task: str, env_config: Mapping[str, Any], seed: int,
               trials: Sequence[int], cem_overrides: Mapping[str, Any] | None = None) -> list[bool]:
  """Runs the given trials of an export's policy in this process; returns success per trial."""
  return run_spec_trials(export_spec(export_dir, cem_overrides), task, env_config, seed, trials)


def run_episode(policy: Any, env: Any, seed: int, trial: int,
                record: bool = False) -> tuple[bool, list[dict[str, Any]]]:
  """Evaluation trial `trial` of evaluation seed `seed`, acted out to the episode's end.

  Args:
    policy: an export.Policy or a reference.Reference: reseed(seed) is called before env.reset (so a
      trial acts the same wherever it runs), reset(env), if the policy has it, right after env.reset
      (scripted references read the env's object poses), then policy(observation) -> action [7] per step.
    env: the task's env.
    record: keep every step's observation and action.

  Returns:
    (success, steps): with `record`, steps[k] = {"image": uint8 [S, S, 3], "gripper_closed": float,
    "height": float, "action": float32 [7], "reward": float} for the observation at step k and
    the action taken there; else [].
  """
  policy.reseed(trial_seed(seed, trial) % 2**31)
  observation, _ = env.reset(seed=trial_seed(seed, trial))
  if hasattr(policy, "reset"):
    policy.reset(env)
  success, done, steps = False, False, []
  while not done:
    action = policy(observation)
    if record:
      steps.append({"image": np.asarray(observation["image"]),
                    "gripper_closed": float(np.asarray(observation["gripper_closed"]).reshape(-1)[0]),
                    "height": float(np.asarray(observation["height"]).reshape(-1)[0]),
                    "action": np.asarray(action, np.float32)})
    observation, reward, terminated, truncated, info = env.step(action)
    if record:
      steps[-1]["reward"] = float(reward)
    success = success or bool(info["success"])
    done = terminated or truncated
  return success, steps


def env_config_for_split(task: str, env_config: Mapping[str, Any], split: str | None) -> dict[str, Any]:
  """The env section with grasping's object split set to `split` (None, or another task: unchanged)."""
  env_config = dict(env_config)
  if split is not None and task == "grasping":
    env_config["split"] = split
  return env_config


def _worker(args):
  spec, task, env_config, seed, trials = args
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  return run_spec_trials(spec, task, env_config, seed, trials)


def evaluate_spec(spec: Sequence[Any], task: str, env_config: Mapping[str, Any], trials: int,
                  workers: int = 2, seed: int = 0, split: str | None = "test") -> dict[str, Any]:
  """Success rate of the policy `spec` (export_spec, reference_spec); arguments and result as `evaluate`."""
  if not isinstance(trials, int) or trials < 1:
    raise ValueError(f"evaluation trials must be a positive integer, got {trials!r}")
  if not isinstance(workers, int) or workers < 0:
    raise ValueError(f"evaluation workers must be an integer >= 0, got {workers!r}")
  env_config = env_config_for_split(task, env_config, split)
  if workers == 0:
    per_trial = run_spec_trials(spec, task, env_config, seed, range(trials))
  else:
    n = min(workers, trials)
    chunks = [list(range(trials))[k::n] for k in range(n)]
    with mp.get_context("spawn").Pool(n) as pool:
      results = pool.map(_worker, [(tuple(spec), task, env_config, seed, chunk) for chunk in chunks])
    by_trial = {}
    for chunk, result in zip(chunks, results):
      by_trial.update(zip(chunk, result))
    per_trial = [by_trial[t] for t in range(trials)]
  successes = int(sum(per_trial))
  low, high = statistics.wilson_interval(successes, trials)
  return {"trials": trials, "successes": successes, "success_rate": successes / trials, "wilson_low": low,
          "wilson_high": high, "per_trial": [bool(s) for s in per_trial]}


def evaluate(export_dir: str, task: str, env_config: Mapping[str, Any], trials: int, workers: int = 2,
             seed: int = 0, split: str | None = "test",
             cem_overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
  """Success rate of an export's policy over `trials` trials with a 95 % Wilson interval.

  Args:
    export_dir: an export directory (visionary_jax.export).
    task: "grasping" or "stacking".
    env_config: the config's `env` section.
    trials: number of trials (the paper: 200).
    workers: worker processes; 0 runs the trials in this process.
    seed: evaluation seed (trial t resets with trial_seed(seed, t)).
    split: grasping object split to evaluate on (None keeps env_config's).
    cem_overrides: policy CEM fields replacing the export's `cem` section (e.g. {"num_samples": 16}).
  Returns:
    {"trials", "successes", "success_rate", "wilson_low", "wilson_high", "per_trial"}.
  """
  return evaluate_spec(export_spec(export_dir, cem_overrides), task, env_config, trials, workers, seed, split)


def evaluate_reference(name: str, task: str, env_config: Mapping[str, Any],
                       collect_config: Mapping[str, Any] | None, trials: int, workers: int = 2, seed: int = 0,
                       split: str | None = "test") -> dict[str, Any]:
  """Success rate of a reference policy (visionary_jax.envs.reference) with a 95 % Wilson interval.

  Args:
    name: "random", "descend_close" or "script" (reference.NAMES).
    task: "grasping" or "stacking".
    env_config: the config's `env` section.
    collect_config: the config's `collect` section ("script" reads its noise and exploration knobs).
    trials, workers, seed, split: as `evaluate`.
  Returns:
    `evaluate`'s dict plus "policy": name.
  """
  spec = reference_spec(name, task, collect_config)
  return dict(evaluate_spec(spec, task, env_config, trials, workers, seed, split), policy=name)


def write_curve(workdir: str, curve: Sequence[Mapping[str, Any]]) -> None:
  """eval_curve.json and eval_curve.png (success rate and Wilson interval against training step)."""
  from visionary_jax.viz import plots  # pylint: disable=g-import-not-at-top  (matplotlib only when plotting)
  atomic.write_json(os.path.join(workdir, "eval_curve.json"), list(curve))
  plots.success_curve(curve, os.path.join(workdir, "eval_curve.png"))


def append_to_curve(workdir: str, step: int, result: Mapping[str, Any]) -> list[dict[str, Any]]:
  """Adds an `evaluate` result at `step` to workdir's curve and rewrites it (`write_curve`); returns the curve.

  Entries from `step` on (left by a run killed after evaluating them) are replaced.
  """
  curve = [c for c in read_curve(workdir) if c["step"] < step]
  curve.append({k: v for k, v in result.items() if k != "per_trial"} | {"step": step})
  write_curve(workdir, curve)
  return curve


def read_curve(workdir: str) -> list[dict[str, Any]]:
  path = os.path.join(workdir, "eval_curve.json")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return json.load(f)

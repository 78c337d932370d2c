"""A training run as the launchers and the study make one: QT-Opt on a dataset, evaluated in PyBullet
every `train.eval_every` steps, then exported.

Outputs in the workdir: what `qtopt.trainer.train` writes, `evals/latest` (the
newest evaluated policy), the evaluation curve (`eval_curve.json`, `.png`) and
`export/`.
"""

import os
from typing import Any, Callable

import ml_collections

from visionary_jax import evaluation
from visionary_jax import export as export_lib
from visionary_jax import genotype as genotype_lib
from visionary_jax.qtopt import train_state as train_state_lib
from visionary_jax.qtopt import trainer

EXPORT_WEIGHTS = ("online", "target")


def check_export_weights(config: ml_collections.ConfigDict) -> None:
  if config.train.export_weights not in EXPORT_WEIGHTS:
    raise ValueError(f"train config field 'export_weights' must be one of {EXPORT_WEIGHTS}, "
                     f"got {config.train.export_weights!r}")


def policy_weights(config: ml_collections.ConfigDict, arch: trainer.Architecture,
                   state: train_state_lib.TrainState) -> tuple[Any, Any]:
  """(params, arch params) that evaluations and the export get: the online network's, or with
  `train.export_weights` "target" the Polyak average's (Q_target1). A one-shot search exports its online
  weights, whose architecture logits `experiments.derive` reads from the checkpoint."""
  if config.train.export_weights == "target" and not isinstance(arch, genotype_lib.SearchSpace):
    return state.target["params"], state.target["arch"]
  return state.params, state.arch


def periodic_evaluation(config: ml_collections.ConfigDict, workdir: str, arch: trainer.Architecture,
                        log: Callable[[str], None] = print) -> trainer.Evaluate:
  """The trainer's callback: export the state, run `train.eval_trials` test trials, append to the curve."""

  def evaluate(step: int, state: train_state_lib.TrainState) -> dict[str, float]:
    directory = export_lib.export(os.path.join(workdir, "evals", "latest"), config, arch,
                                  *policy_weights(config, arch, state), step)
    result = evaluation.evaluate(directory, config.task, config.env, config.train.eval_trials,
                                 config.train.eval_workers, seed=config.seed)
    evaluation.append_to_curve(workdir, step, result)
    log(f"evaluation at step {step}: success {result['success_rate']:.3f} "
        f"[{result['wilson_low']:.3f}, {result['wilson_high']:.3f}] over {result['trials']} trials")
    return {"eval/success_rate": result["success_rate"], "eval/wilson_low": result["wilson_low"],
            "eval/wilson_high": result["wilson_high"]}

  return evaluate


def run(config: ml_collections.ConfigDict, workdir: str, arch_flag: str | trainer.Architecture,
        log: Callable[[str], None] = print) -> str:
  """experiments/train.py: dataset -> replay sampler -> training (periodic evaluation) -> export.

  `arch_flag` is an --arch value (see `trainer.architecture_from_flag`) or the
  architecture itself (e.g. the fusion-only SearchSpace of an ablation).
  Returns the export directory, `workdir/export`.
  """
  arch = arch_flag if isinstance(arch_flag, trainer.Architecture) else trainer.architecture_from_flag(arch_flag)
  check_export_weights(config)
  evaluate = periodic_evaluation(config, workdir, arch, log) if config.train.eval_every else None
  state = trainer.train_on_dataset(config, workdir, arch, evaluate=evaluate, log=log)
  directory = export_lib.export(os.path.join(workdir, "export"), config, arch, *policy_weights(config, arch, state),
                                int(state.step))
  log(f"exported step {int(state.step)} to {directory}")
  return directory

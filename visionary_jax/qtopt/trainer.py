"""The training loop: pmapped QT-Opt updates over replay batches, metrics, checkpoints, resume.

It depends on the networks and the episodes only: periodic evaluation is a
callback its caller passes in (visionary_jax/training.py). A run is a workdir. Starting a run whose workdir has checkpoints continues
from the newest one (train state and replay position), so a run killed at any
point and restarted ends with exactly the parameters of an uninterrupted run.
"""

import json
import math
import os
from typing import Any, Callable, Protocol

import jax
import ml_collections
import numpy as np

from visionary_jax import atomic
from visionary_jax import checkpoints as checkpoints_lib
from visionary_jax import genotype as genotype_lib
from visionary_jax import metrics as metrics_lib
from visionary_jax.episodes import dataset as dataset_lib
from visionary_jax.episodes import sampler as sampler_lib
from visionary_jax.nets import qnetwork
from visionary_jax.qtopt import optimizer as optimizer_lib
from visionary_jax.qtopt import train_state as train_state_lib
from visionary_jax.qtopt import update

Architecture = genotype_lib.Genotype | genotype_lib.SearchSpace
# (step, host train state) -> scalar metrics: periodic evaluation, passed in by the caller.
Evaluate = Callable[[int, train_state_lib.TrainState], dict[str, float]]


class Batches(Protocol):
  """What the loop needs from a replay sampler (visionary_jax.episodes.sampler.ReplaySampler)."""

  bootstrap_per_device: int  # leading transitions of each device's slice that bootstrap

  def __next__(self) -> dict[str, np.ndarray]: ...
  def state(self) -> dict[str, Any]: ...
  def restore(self, state: dict[str, Any]) -> None: ...


def architecture_from_flag(value: str) -> Architecture:
  """"search" -> the full search space, "baseline" -> QT-Opt's network, else a genotype JSON path."""
  if value == "search":
    return genotype_lib.SearchSpace()
  if value == "baseline":
    return genotype_lib.BASELINE
  if not os.path.isfile(value):
    raise ValueError(f"--arch must be 'search', 'baseline' or a genotype JSON file; {value!r} is none of these")
  return genotype_lib.load_json(value)


def describe_architecture(arch: Architecture) -> dict[str, Any]:
  """JSON description of what a run trains (saved with checkpoints and exports)."""
  if isinstance(arch, genotype_lib.SearchSpace):
    return {"kind": "search", "fusion": arch.fusion, "attention": arch.attention,
            "fixed": arch.fixed.to_json_dict()}
  return {"kind": "genotype", "genotype": arch.to_json_dict()}


def _arch_metrics(arch_params, arch: Architecture) -> dict[str, float]:
  """Softmax op weights and sigmoid edge weights per location, as `arch/loc{i}/...` scalars."""
  if not isinstance(arch, genotype_lib.SearchSpace) or not arch_params:
    return {}
  out = {}
  for i, entry in genotype_lib.architecture_weights(arch_params, arch).items():
    for op, w in entry.get("op_weights", {}).items():
      out[f"arch/loc{i}/op/{op}"] = w
    for source, w in entry.get("attention_weights", {}).items():
      out[f"arch/loc{i}/edge/{source}"] = w
  return out


# Metrics of an update that must be finite, the loss first.
FINITE_METRICS = ("loss", "grad_norm", "update_norm", "param_norm", "arch_grad_norm", "arch_param_norm")


def _check_finite(device_metrics: dict[str, Any], step: int, ckpts: checkpoints_lib.Checkpoints) -> None:
  """FloatingPointError naming the step, the non-finite metrics and the last good checkpoint."""
  values = jax.device_get({k: device_metrics[k][0] for k in FINITE_METRICS if k in device_metrics})
  bad = [k for k in FINITE_METRICS if k in values and not math.isfinite(float(values[k]))]
  if not bad:
    return
  first = bad[0]
  also = f" (also non-finite: {', '.join(bad[1:])})" if bad[1:] else ""
  last = ckpts.latest_step()
  raise FloatingPointError(
      f"non-finite {first} ({float(values[first])}) in the update from step {step - 1} to {step}{also}; "
      "training stopped. The last good checkpoint is " + (f"step {last} in {ckpts.directory}" if last is not None
                                                          else "none (no checkpoint was written yet)"))


def _resume(ckpts: checkpoints_lib.Checkpoints, template: train_state_lib.TrainState, description: dict[str, Any],
            batches: Batches, log: Callable[[str], None]) -> train_state_lib.TrainState | None:
  """The newest good checkpoint's train state, with `batches` moved to its position; None without one."""
  resumed = ckpts.restore_latest(template, log)
  if resumed is None:
    return None
  latest, host_state, host = resumed
  if host.get("architecture") != description:
    raise ValueError(f"checkpoint step {latest} in {ckpts.directory} was written for architecture "
                     f"{host.get('architecture')}, this run trains {description}")
  batches.restore(host["sampler"])
  log(f"resumed from step {latest} in {ckpts.directory}")
  return host_state


def train(config: ml_collections.ConfigDict, workdir: str, arch: Architecture, batches: Batches,
          evaluate: Evaluate | None = None,
          log: Callable[[str], None] = print) -> train_state_lib.TrainState:
  """Trains to `config.train.steps`, resuming from the newest checkpoint in `workdir/checkpoints`.

  Args:
    config: a task config (experiments/configs/grasping.py); uses `seed`, `network`, `train`.
    workdir: run directory: checkpoints/, metrics.jsonl, tensorboard/, config.json.
    arch: the architecture trained (a Genotype, or a SearchSpace for the one-shot search).
    batches: replay batches shaped [local devices, B / devices, ...] with a resumable position.
    evaluate: optional (step, host state) -> scalar metrics, called every `train.eval_every` steps.
    log: where progress lines go.
  Returns:
    The final train state, on the host.
  Raises:
    FloatingPointError: a non-finite loss, gradient, parameter or update norm; the message names the step
      and the last good checkpoint.
    checkpoints.CheckpointDamaged: every checkpoint in `workdir/checkpoints` is damaged (a damaged newest
      one alone is moved aside, reported through `log`, and the run resumes from the previous one).
  """
  tc = config.train
  for field in ("steps", "log_every", "checkpoint_every"):
    if not isinstance(tc[field], int) or tc[field] < 1:
      raise ValueError(f"train config field {field!r} must be a positive integer, got {tc[field]!r}")
  if not isinstance(tc.eval_every, int) or tc.eval_every < 0:
    raise ValueError(f"train config field 'eval_every' must be an integer >= 0, got {tc.eval_every!r}")
  network = qnetwork.build(config.network, arch)
  optimizer = optimizer_lib.make(tc)
  update_config = update.UpdateConfig.from_config(config, bootstrap_size=batches.bootstrap_per_device)
  devices = jax.local_devices()
  description = describe_architecture(arch)

  os.makedirs(workdir, exist_ok=True)
  ckpts = checkpoints_lib.Checkpoints(os.path.join(workdir, "checkpoints"), tc.keep_checkpoints)
  host_state = jax.device_get(jax.jit(lambda key: train_state_lib.create(network, optimizer, key))(
      jax.random.PRNGKey(config.seed)))
  try:
    resumed = _resume(ckpts, host_state, description, batches, log)
  except BaseException:
    ckpts.close()
    raise
  if resumed is not None:
    host_state = resumed
  else:
    atomic.write_json(os.path.join(workdir, "config.json"), json.loads(config.to_json()))
    atomic.write_json(os.path.join(workdir, "architecture.json"), description)
  start = int(host_state.step)
  writer = metrics_lib.Writer(workdir, resume_step=start)
  progress = metrics_lib.Progress(start, tc.steps)
  step_fn = update.make_pmapped_step(network, optimizer, update_config, devices)
  state = update.replicate(host_state, devices)
  weight_learning_rate = optimizer_lib.weight_learning_rate(tc)
  try:
    for step in range(start + 1, tc.steps + 1):
      batch = next(batches)
      update.check_batch(batch, len(devices), update_config)
      state, device_metrics = step_fn(state, batch)
      _check_finite(device_metrics, step, ckpts)
      if step % tc.log_every == 0 or step == tc.steps:
        values = {k: float(v[0]) for k, v in device_metrics.items()}
        # The update into `step` is the optimiser's (step - 1)-th: optax counts from 0.
        values.update(learning_rate=float(weight_learning_rate(step - 1)),
                      arch_learning_rate=tc.arch_learning_rate)
        values.update(_arch_metrics(jax.device_get(jax.tree_util.tree_map(lambda x: x[0], state.arch)), arch))
        line = progress.line(step, values)
        values["steps_per_s"] = progress.rate
        writer.write(step, values)
        log(line)
      # Evaluate before checkpointing: if the evaluation fails, the resumed run redoes it.
      if evaluate is not None and tc.eval_every and step % tc.eval_every == 0:
        writer.write(step, evaluate(step, update.unreplicate(state)))
      if step % tc.checkpoint_every == 0 or step == tc.steps:
        ckpts.save(step, update.unreplicate(state), {"sampler": batches.state(), "architecture": description})
  finally:
    writer.close()
    ckpts.close()
  return update.unreplicate(state)


def train_on_dataset(config: ml_collections.ConfigDict, workdir: str, arch: Architecture,
                     evaluate: Evaluate | None = None, log: Callable[[str], None] = print) -> train_state_lib.TrainState:
  """`train` on the episodes of `config.train.dataset_dir`, through a replay sampler of `config.replay`.

  Returns the final train state, on the host.
  """
  dataset_lib.check_train_dataset_dir(config)
  processes = jax.process_count()
  if config.replay.batch_size % (processes * jax.local_device_count()):
    raise ValueError(f"replay config field 'batch_size' ({config.replay.batch_size}) must divide over "
                     f"{processes} process(es) x {jax.local_device_count()} local device(s)")
  data = dataset_lib.from_train_config(config)
  log(f"dataset {config.train.dataset_dir}: {data.num_episodes} episodes, {data.num_transitions} transitions")
  host_replay = config.replay.copy_and_resolve_references()
  host_replay.batch_size = config.replay.batch_size // processes
  batches = sampler_lib.from_config(data, host_replay, seed=config.seed * 1000 + jax.process_index(),
                                    num_devices=jax.local_device_count(),
                                    bootstrap_from_next_action=update.needs_next_action(config.train.target))
  try:
    return train(config, workdir, arch, batches, evaluate=evaluate, log=log)
  finally:
    batches.close()

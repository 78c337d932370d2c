"""The evolutionary baseline of Table II: regularized evolution with a held-out Bellman-error fitness.

The search itself is visionary_jax.search.evolution; this module gives it a fitness
made of a short QT-Opt training run and runs it under a workdir so that a rerun
reuses every fitness already recorded.
"""

import functools
import itertools
import os
import time
from typing import Any, Mapping

import jax
import ml_collections
import numpy as np

from visionary_jax import atomic
from visionary_jax import genotype as genotype_lib
from visionary_jax import run_files
from visionary_jax.episodes import dataset as dataset_lib
from visionary_jax.episodes import sampler as sampler_lib
from visionary_jax.nets import qnetwork
from visionary_jax.qtopt import train_state as train_state_lib
from visionary_jax.qtopt import trainer
from visionary_jax.qtopt import update
from visionary_jax.search import evolution


def heldout_loss(trainable: Mapping[str, Any], target: Mapping[str, Any], lagged: Mapping[str, Any],
                 batch: Mapping[str, jax.Array], rng: jax.Array, step: jax.Array, *, network: qnetwork.QNetwork,
                 config: update.UpdateConfig) -> jax.Array:
  """The QT-Opt loss on one batch without a gradient step or image augmentation: a trained state's Bellman error.

  Args:
    trainable, target, lagged: {"params", "arch"} of the online and the two target networks.
    batch: transitions (update.BATCH_KEYS) with leading axis B, e.g. `Dataset.transitions`.
    rng, step: the target CEM's keys are those an update at `step` of a run seeded with `rng` uses.
    network, config: the network and the update hyper-parameters (bound with functools.partial).
  Returns:
    [] mean log loss between Q(s, a) and the clipped double-Q target y.
  """
  b = batch["reward"].shape[0]
  _, cem_keys = update.augment_and_cem_keys(update.transition_keys(rng, step, b, None))
  y, _ = update.bellman_targets(network, config, target, lagged, batch, cem_keys)
  loss, _ = update.loss_fn(trainable, network, batch, y)
  return loss


def heldout_bellman_error(state: train_state_lib.TrainState, network: qnetwork.QNetwork,
                          config: ml_collections.ConfigDict, data: dataset_lib.Dataset,
                          heldout: np.ndarray, num_batches: int, batch_size: int, seed: int) -> float:
  """Mean `heldout_loss` over `num_batches` fixed batches of held-out transitions (the same for any network)."""
  loss = jax.jit(functools.partial(heldout_loss, network=network, config=update.UpdateConfig.from_config(config)))
  values = []
  for j in range(num_batches):
    rng = np.random.default_rng([seed, j])
    batch = data.transitions(heldout[rng.integers(0, len(heldout), batch_size)])
    values.append(float(loss(state.trainable, state.target, state.lagged, batch, jax.random.PRNGKey(seed), j)))
  return float(np.mean(values))


def _compact(genotype: genotype_lib.Genotype) -> str:
  """ops and kept edges in one line, e.g. `noop add noop noop noop | edges 0 1 0 0 2`."""
  return " ".join(genotype.ops) + " | edges " + " ".join(str(len(a)) for a in genotype.attention)


def run(config: ml_collections.ConfigDict, workdir: str, seed: int,
        log: run_files.Log = print) -> tuple[genotype_lib.Genotype, dict[str, Any]]:
  """Regularized evolution (visionary_jax.search.evolution) with a held-out Bellman-error fitness.

  Fitness of a genotype: train it from scratch for `study.evolution.fitness_steps`
  QT-Opt steps (the `train` hyper-parameters, seed `seed`, the same replay stream for
  every candidate) on the dataset's episodes except every `holdout_every`-th one, then
  fitness = - the QT-Opt log loss against its own clipped double-Q targets on
  `fitness_batches` fixed batches of the held-out episodes. Evaluation success in
  PyBullet is not used: at our data and step budgets the success of a short run is near
  0 for every genotype and affordable trial counts cannot rank them. The initial
  population holds the baseline and random genotypes; mutation changes one merge op or
  one attention edge in the full Visionary space.

  Budget: (population_size + cycles) runs of fitness_steps steps, by default the
  search's `search_steps` in total (the steps of one one-shot search); every candidate
  also compiles its own network. budget.json records the gradient steps and the wall
  time actually spent (training, compiling and scoring every candidate; a candidate
  interrupted and resumed counts only the attempt that finished it).

  Writes workdir/candidates/NNN/ (a trainer workdir and fitness.json per candidate),
  history.json, budget.json and result.json (last). Returns (best genotype, budget).
  """
  ec = config.study.evolution
  os.makedirs(workdir, exist_ok=True)
  data = dataset_lib.from_train_config(config)
  train_idx, heldout_idx = dataset_lib.holdout_split(data, ec.holdout_every)
  log(f"evolution: {len(train_idx)} training and {len(heldout_idx)} held-out transitions; "
      f"{ec.population_size + ec.cycles} candidates x {ec.fitness_steps} steps")
  fitness_config = run_files.stage_config(config, seed, ec.fitness_steps, 0)
  devices = jax.local_device_count()
  if config.replay.batch_size % devices:
    raise ValueError(f"replay config field 'batch_size' ({config.replay.batch_size}) must divide over "
                     f"{devices} local device(s)")
  counter = itertools.count()

  def fitness(genotype: genotype_lib.Genotype) -> float:
    k = next(counter)
    directory = os.path.join(workdir, "candidates", f"{k:03d}")
    path = os.path.join(directory, "fitness.json")
    if os.path.exists(path):
      cached = run_files.read_json(path, f"evolution candidate {k}")
      if cached.get("genotype") == genotype.to_json_dict():
        return float(cached["fitness"])
    os.makedirs(directory, exist_ok=True)
    start = time.perf_counter()
    batches = sampler_lib.from_config(data, config.replay, seed=seed * 1000, num_devices=devices,
                                      bootstrap_from_next_action=update.needs_next_action(config.train.target),
                                      subset=train_idx)
    try:
      state = trainer.train(fitness_config, directory, genotype, batches, log=run_files.indent(log, "      "))
    finally:
      batches.close()
    network = qnetwork.build(config.network, genotype)
    error = heldout_bellman_error(state, network, config, data, heldout_idx, ec.fitness_batches,
                                  config.replay.batch_size, seed)
    atomic.write_json(path, {"genotype": genotype.to_json_dict(), "heldout_bellman_error": error,
                             "fitness": -error, "steps": int(state.step), "seconds": time.perf_counter() - start})
    return -error

  def progress(item: evolution.Evaluated) -> None:
    log(f"  candidate {item.cycle + 1}/{ec.population_size + ec.cycles}: held-out Bellman error "
        f"{-item.fitness:.4f}  {_compact(item.genotype)}")

  history = evolution.regularized_evolution(fitness, ec.population_size, ec.sample_size, ec.cycles, seed,
                                            initial=(genotype_lib.BASELINE,), progress=progress)
  best = evolution.best(history)
  seconds = 0.0
  for k in range(len(history)):
    path = os.path.join(workdir, "candidates", f"{k:03d}", "fitness.json")
    seconds += run_files.read_json(path, f"evolution candidate {k}")["seconds"]
  budget = {"fitness_runs": len(history), "steps_per_run": int(ec.fitness_steps),
            "gradient_steps": len(history) * int(ec.fitness_steps), "wall_seconds": seconds,
            "one_shot_search_steps": int(config.study.search_steps), "population_size": int(ec.population_size),
            "sample_size": int(ec.sample_size), "cycles": int(ec.cycles), "holdout_every": int(ec.holdout_every),
            "train_transitions": int(len(train_idx)), "heldout_transitions": int(len(heldout_idx))}
  atomic.write_json(os.path.join(workdir, "history.json"), [
      {"cycle": e.cycle, "fitness": e.fitness, "genotype": e.genotype.to_json_dict()} for e in history])
  atomic.write_json(os.path.join(workdir, "budget.json"), budget)
  atomic.write_json(os.path.join(workdir, "result.json"), {"best": best.genotype.to_json_dict(),
                                                           "fitness": best.fitness, "cycle": best.cycle})
  log(f"  best: candidate {best.cycle + 1}, held-out Bellman error {-best.fitness:.4f}; budget "
      f"{budget['gradient_steps']} gradient steps, {seconds:.0f} s")
  return best.genotype, budget

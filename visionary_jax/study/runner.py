"""The experiments of the paper's Section V: search, derive, retrain and evaluate every variant and seed.

A study root (experiments/study.py --workdir=ROOT) is laid out as
  ROOT/study.json                  the study's config and dataset size; a rerun must match it
  ROOT/<variant>/seed_<k>/search/  the one-shot search run (a trainer workdir, with
                                   architecture_weights.png), or the evolution's candidates
  ROOT/<variant>/seed_<k>/derived/ genotype.json (with the search's op and edge weights),
                                   architecture.png, flops.md, derive.json (written last)
  ROOT/<variant>/seed_<k>/train/   the derived genotype trained from scratch (a trainer
                                   workdir: eval_curve.json, export/)
Variants (Table II of the paper):
  baseline        QT-Opt's network (genotype.BASELINE), no search;
  fusion_only     one-shot search of the merge ops only (supernet modules, Eq. 3);
  attention_only  one-shot search of the peer-attention edges only (Eq. 4), ops as the baseline;
  visionary       one-shot search of both (Fig. 4);
  evolution       regularized evolution over the full genotype space (visionary_jax/search/evolution_baseline.py);
  transfer        a given genotype (config.study.transfer_genotype, e.g. found on another task).
Every variant's final network is trained from scratch for `study.retrain_steps` with the
config's `train` hyper-parameters and evaluated every `study.eval_every` steps (and at the
last step) with `study.eval_trials` PyBullet trials: the paper's protocol. Run seed k sets
`config.seed = k` (initialisation, replay stream and evaluation scenes).

Rerunning resumes: a stage whose output is complete is skipped, a training run that
stopped part-way continues from its newest checkpoint, and evolution candidates whose
fitness was recorded are not retrained.
"""

import json
import os
import time
from typing import Any, Sequence

from flax import traverse_util
import ml_collections

from visionary_jax import atomic
from visionary_jax import evaluation
from visionary_jax import genotype as genotype_lib
from visionary_jax import run_files
from visionary_jax import training
from visionary_jax.episodes import dataset as dataset_lib
from visionary_jax.episodes import shards as shards_lib
from visionary_jax.search import evolution_baseline
from visionary_jax.search import one_shot

SEARCH_VARIANTS = {"fusion_only": "fusion", "attention_only": "attention", "visionary": "full"}
BASELINE_VARIANT = "baseline"
VARIANTS = ("baseline", "fusion_only", "attention_only", "visionary", "evolution", "transfer")
STUDY_JSON = "study.json"
STUDY_FORMAT = "visionary_jax.study"


def run_dir(root: str, variant: str, seed: int) -> str:
  return os.path.join(root, variant, f"seed_{seed}")


def check_study(config: ml_collections.ConfigDict, variants: Sequence[str], seeds: Sequence[int]) -> None:
  """Raises ValueError naming the first bad study field, variant or seed."""
  sc = config.study
  positive = {"seeds": sc.seeds, "search_steps": sc.search_steps, "retrain_steps": sc.retrain_steps,
              "eval_trials": sc.eval_trials, "evolution.population_size": sc.evolution.population_size,
              "evolution.sample_size": sc.evolution.sample_size, "evolution.fitness_steps": sc.evolution.fitness_steps,
              "evolution.fitness_batches": sc.evolution.fitness_batches}
  for name, value in positive.items():
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise ValueError(f"study config field {name!r} must be a positive integer, got {value!r}")
  for name, value in {"eval_every": sc.eval_every, "evolution.cycles": sc.evolution.cycles}.items():
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
      raise ValueError(f"study config field {name!r} must be an integer >= 0, got {value!r}")
  if sc.evolution.sample_size > sc.evolution.population_size:
    raise ValueError(f"study config field 'evolution.sample_size' ({sc.evolution.sample_size}) must not exceed "
                     f"'evolution.population_size' ({sc.evolution.population_size})")
  if not variants:
    raise ValueError("no variants to run")
  for variant in variants:
    if variant not in VARIANTS:
      raise ValueError(f"unknown variant {variant!r}; variants are {VARIANTS}")
  if len(set(variants)) != len(variants):
    raise ValueError(f"variants repeat: {list(variants)}")
  if not seeds:
    raise ValueError("no seeds to run")
  for seed in seeds:
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < evaluation.EVAL_SEED_BASE:
      raise ValueError(f"seed {seed!r} must be an integer in [0, 2**30)")
  if "transfer" in variants:
    if not sc.transfer_genotype:
      raise ValueError("variant 'transfer' needs study config field 'transfer_genotype' (a genotype JSON path)")
    if not os.path.isfile(sc.transfer_genotype):
      raise ValueError(f"study config field 'transfer_genotype': {sc.transfer_genotype} is not a file")
    genotype_lib.load_json(sc.transfer_genotype)
  dataset_lib.check_train_dataset_dir(config)


# A study may resume with other values of these: a run resumed from any checkpoint ends where
# the uninterrupted run would have, and metrics records do not feed back into training.
RESUME_NEUTRAL_FIELDS = frozenset({"train.checkpoint_every", "train.log_every"})


def _study_record(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """study.json: what every run of the study shares.

  That is the config without the variant and seed lists and the transfer genotype (each
  transfer run records its genotype file in derived/derive.json).
  """
  data = json.loads(config.to_json())
  del data["study"]["variants"], data["study"]["seeds"], data["study"]["transfer_genotype"]
  episodes = transitions = 0
  for _, meta in shards_lib.iter_sidecars(config.train.dataset_dir):
    episodes += int(meta["episodes"])
    transitions += int(meta["transitions"])
  return {"format": STUDY_FORMAT, "version": 1, "task": config.task, "preset": config.preset,
          "dataset": {"dir": config.train.dataset_dir, "episodes": episodes, "transitions": transitions},
          "config": data}


def _write_study_record(root: str, config: ml_collections.ConfigDict,
                        defaults: ml_collections.ConfigDict | None = None) -> None:
  """Writes ROOT/study.json, or checks that an existing one describes the same study.

  A field the existing record lacks (added to the configs since it was written) is
  accepted when it holds its default, from `defaults` (the preset's unmodified config).
  The fields in RESUME_NEUTRAL_FIELDS may differ: they set only when a run writes its
  checkpoints and metrics records, not what it computes.
  """
  record = _study_record(config)
  path = os.path.join(root, STUDY_JSON)
  if os.path.exists(path):
    differ = differing_study_fields(read_study_record(path), record, defaults)
    if differ:
      raise ValueError(f"{path} was written for another config (fields that differ: {differ[:6]}"
                       f"{' ...' if len(differ) > 6 else ''}); resume with the same config or use a new --workdir")
  atomic.write_json(path, record)


def read_study_record(path: str) -> dict[str, Any]:
  """A study.json, or a ValueError naming the file when it is not one."""
  record = run_files.read_json(path, "study record")
  if not isinstance(record, dict) or record.get("format") != STUDY_FORMAT:
    raise ValueError(f"{path} is not a {STUDY_FORMAT} record")
  return record


def differing_study_fields(old: dict[str, Any], new: dict[str, Any],
                           defaults: ml_collections.ConfigDict | None = None) -> list[str]:
  """Config fields (dotted, sorted) in which two study records describe different studies.

  A field `old` lacks (added to the configs since it was written) does not count when `new`
  holds its default, from `defaults` (the preset's unmodified config), nor do the fields
  in RESUME_NEUTRAL_FIELDS, which set only when a run writes its checkpoints and metrics.
  """
  flatten = lambda tree: traverse_util.flatten_dict(tree, sep=".")
  before, now = flatten(old.get("config", {})), flatten(new.get("config", {}))
  default = flatten(json.loads(defaults.to_json())) if defaults is not None else {}
  added_at_default = lambda k: k not in before and k in default and now.get(k) == default[k]
  return sorted(k for k in set(before) | set(now)
                if before.get(k) != now.get(k) and not added_at_default(k) and k not in RESUME_NEUTRAL_FIELDS)


def _retrain(config: ml_collections.ConfigDict, genotype_path: str, workdir: str, seed: int,
             log: run_files.Log) -> dict[str, Any]:
  """Trains the genotype from scratch with periodic evaluation; the curve always ends at the last step."""
  sc = config.study
  steps = sc.retrain_steps
  curve = evaluation.read_curve(workdir)
  if run_files.exported_step(workdir) == steps and curve and curve[-1]["step"] == steps:
    log(f"  train: done ({steps} steps, final success {curve[-1]['success_rate']:.3f})")
    return curve[-1]
  log(f"  train: {steps} steps from scratch, evaluated every {sc.eval_every or steps} steps "
      f"on {sc.eval_trials} trials -> {workdir}")
  run_config = run_files.stage_config(config, seed, steps, sc.eval_every)
  os.makedirs(workdir, exist_ok=True)
  with run_files.timed(workdir):
    export_dir = training.run(run_config, workdir, genotype_lib.load_json(genotype_path), log=run_files.indent(log))
    curve = evaluation.read_curve(workdir)
    if not curve or curve[-1]["step"] != steps:
      result = evaluation.evaluate(export_dir, config.task, config.env, sc.eval_trials,
                                   run_config.train.eval_workers, seed=seed)
      curve = evaluation.append_to_curve(workdir, steps, result)
  log(f"  train: final success {curve[-1]['success_rate']:.3f} [{curve[-1]['wilson_low']:.3f}, "
      f"{curve[-1]['wilson_high']:.3f}] over {curve[-1]['trials']} trials")
  return curve[-1]


def run_one(config: ml_collections.ConfigDict, root: str, variant: str, seed: int,
            log: run_files.Log = print) -> dict[str, Any]:
  """Runs (or resumes) one (variant, seed): search or evolution -> derived genotype -> retrain.

  Returns {"variant", "seed", "genotype" (JSON dict), "final" (last curve entry)}.
  """
  sc = config.study
  indent = run_files.indent(log)
  directory = run_dir(root, variant, seed)
  search_dir, derived_dir = os.path.join(directory, "search"), os.path.join(directory, "derived")
  derive_json = os.path.join(derived_dir, one_shot.DERIVE_JSON)
  derived_done = os.path.exists(derive_json)
  if variant in SEARCH_VARIANTS:
    space = one_shot.SPACES[SEARCH_VARIANTS[variant]]
    if run_files.exported_step(search_dir) == sc.search_steps:
      log(f"  search: done ({sc.search_steps} steps)")
    else:
      log(f"  search: {sc.search_steps} steps, {SEARCH_VARIANTS[variant]} space -> {search_dir}")
      one_shot.search(run_files.stage_config(config, seed, sc.search_steps, 0), search_dir, space, log=indent)
    if derived_done and run_files.read_json(derive_json, "derived").get("step") == sc.search_steps:
      log("  derive: done")
    else:
      log(f"  derive: -> {derived_dir}")
      one_shot.derive(search_dir, derived_dir, sc.search_steps, log=indent)
  elif variant == "evolution":
    if os.path.exists(os.path.join(search_dir, "result.json")) and derived_done:
      log("  evolution: done")
    else:
      log(f"  evolution: regularized evolution -> {search_dir}")
      best, budget = evolution_baseline.run(config, search_dir, seed, log=indent)
      one_shot.write_derived(derived_dir, best, config.network, config.preset,
                             f"best of {budget['fitness_runs']} genotypes by regularized evolution (seed {seed})",
                             {"source": "evolution", "search": os.path.abspath(search_dir), "budget": budget},
                             log=indent)
  elif variant == "transfer" and derived_done:
    made_from = run_files.read_json(derive_json, "derived").get("genotype_file")
    if made_from != os.path.abspath(sc.transfer_genotype):
      raise ValueError(f"{directory} trains the genotype of {made_from}; study config field 'transfer_genotype' "
                       f"now names {sc.transfer_genotype}: use another --workdir for another transfer")
  elif not derived_done:
    if variant == BASELINE_VARIANT:
      genotype, weights, info = genotype_lib.BASELINE, None, {"source": "baseline"}
      title = "QT-Opt baseline (Grasping44, action added after the second pooling)"
    else:
      path = os.path.abspath(sc.transfer_genotype)
      genotype, weights = genotype_lib.load_json(path), genotype_lib.load_json_weights(path)
      info = {"source": "transfer", "genotype_file": path}
      title = f"transferred from {path}"
    log(f"  genotype: {title} -> {derived_dir}")
    one_shot.write_derived(derived_dir, genotype, config.network, config.preset, title, info, weights or None,
                           log=indent)
  final = _retrain(config, os.path.join(derived_dir, "genotype.json"), os.path.join(directory, "train"), seed, log)
  genotype = genotype_lib.load_json(os.path.join(derived_dir, "genotype.json"))
  return {"variant": variant, "seed": seed, "genotype": genotype.to_json_dict(), "final": final}


def run_study(config: ml_collections.ConfigDict, root: str, variants: Sequence[str] | None = None,
              seeds: Sequence[int] | None = None, log: run_files.Log = print,
              defaults: ml_collections.ConfigDict | None = None) -> list[dict[str, Any]]:
  """experiments/study.py: every (variant, seed) in turn, resuming what a previous run left.

  Args:
    config: a task config with its `study` section.
    root: the study root (layout in the module docstring).
    variants: variants to run (default `config.study.variants`).
    seeds: seeds to run (default 0 .. config.study.seeds - 1).
    log: where progress lines go.
    defaults: the preset's unmodified config; a root written before a config field existed
      resumes when that field holds its default.
  Returns:
    `run_one`'s summary of every run, in order.
  """
  variants = tuple(config.study.variants if variants is None else variants)
  seeds = tuple(range(config.study.seeds) if seeds is None else seeds)
  check_study(config, variants, seeds)
  config = config.copy_and_resolve_references()
  config.train.dataset_dir = os.path.abspath(config.train.dataset_dir)
  if config.study.transfer_genotype:
    config.study.transfer_genotype = os.path.abspath(config.study.transfer_genotype)
  os.makedirs(root, exist_ok=True)
  _write_study_record(root, config, defaults)
  jobs = [(v, s) for v in variants for s in seeds]
  results = []
  start = time.perf_counter()
  for n, (variant, seed) in enumerate(jobs, 1):
    log(f"[{n}/{len(jobs)}] {variant} seed {seed} ({time.perf_counter() - start:.0f} s elapsed) "
        f"-> {run_dir(root, variant, seed)}")
    results.append(run_one(config, root, variant, seed, log))
  log(f"study finished: {len(jobs)} runs in {root}; tables and figures: python -m experiments.report "
      f"--workdir={root} --output=DIR")
  return results

"""The one-shot search and its derivation (experiments/search.py, experiments/derive.py), and FLOPs.

`search` trains a search network (Fig. 4, or the fusion-only / attention-only
ablations of Table II) with the QT-Opt loss, weights and architecture logits
together (Eq. 2), and plots the architecture weights over training. `derive`
applies the paper's pruning rule to a search checkpoint: the argmax merge op
per location, the attention edges with sigmoid weight > 0.5.
"""

import os
from typing import Any, Mapping

import jax
import ml_collections
import numpy as np

from visionary_jax import atomic
from visionary_jax import checkpoints as checkpoints_lib
from visionary_jax import genotype as genotype_lib
from visionary_jax import metrics as metrics_lib
from visionary_jax import run_files
from visionary_jax import training
from visionary_jax.nets import flops as flops_lib
from visionary_jax.nets import qnetwork
from visionary_jax.qtopt import optimizer as optimizer_lib
from visionary_jax.qtopt import train_state as train_state_lib
from visionary_jax.viz import diagram
from visionary_jax.viz import plots

SPACES = {
    "full": genotype_lib.SearchSpace(),
    "fusion": genotype_lib.SearchSpace(attention=False),
    "attention": genotype_lib.SearchSpace(fusion=False),
}
DERIVE_JSON = "derive.json"


def search_space(name: str) -> genotype_lib.SearchSpace:
  """"full" | "fusion" | "attention" -> the SearchSpace (fusion-only and attention-only keep the baseline's rest)."""
  if name not in SPACES:
    raise ValueError(f"--space must be one of {sorted(SPACES)}, got {name!r}")
  return SPACES[name]


def search(config: ml_collections.ConfigDict, workdir: str, space: genotype_lib.SearchSpace,
           log: run_files.Log = print) -> str:
  """One-shot search: trains the search network for `config.train.steps` (Eq. 2), then plots its weights.

  Writes the trainer's outputs to `workdir` (checkpoints, metrics.jsonl, export/ of the
  derived network), its wall time to timing.json and the op and edge weights against
  training step to architecture_weights.png. Returns the export directory.
  """
  os.makedirs(workdir, exist_ok=True)
  with run_files.timed(workdir):
    export_dir = training.run(config, workdir, space, log=log)
  records = metrics_lib.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  picture = os.path.join(workdir, "architecture_weights.png")
  plots.architecture_weights(records, picture, f"architecture weights of the search ({_space_name(space)} space, "
                             f"{config.task}, {config.preset} preset)")
  log(f"architecture weights over training: {picture}")
  return export_dir


def _space_name(space: genotype_lib.SearchSpace) -> str:
  return next((name for name, s in SPACES.items() if s == space), "custom")


def read_search_run(search_dir: str) -> tuple[ml_collections.ConfigDict, genotype_lib.SearchSpace]:
  """(config, search space) of a search run directory, from its config.json and architecture.json."""
  if not os.path.isdir(search_dir):
    raise ValueError(f"--search={search_dir} is not a directory")
  description = run_files.read_json(os.path.join(search_dir, "architecture.json"), f"search run {search_dir}")
  kind = description.get("kind") if isinstance(description, dict) else None
  if kind != "search":
    raise ValueError(f"search run {search_dir}: architecture.json describes {kind!r} training, not a search "
                     "(run experiments/search.py or experiments/train.py --arch=search)")
  try:
    space = genotype_lib.SearchSpace(fusion=bool(description["fusion"]), attention=bool(description["attention"]),
                                     fixed=genotype_lib.Genotype.from_json_dict(description["fixed"]))
  except (KeyError, ValueError) as e:
    raise ValueError(f"search run {search_dir}: architecture.json is not a search space description ({e})") from None
  config = ml_collections.ConfigDict(run_files.read_json(os.path.join(search_dir, "config.json"),
                                                        f"search run {search_dir}"))
  for section in ("network", "train"):
    if section not in config:
      raise ValueError(f"search run {search_dir}: config.json lacks the {section!r} section")
  return config, space


def search_architecture(search_dir: str, step: int | None = None) -> tuple[int, dict[str, Any]]:
  """(step, `arch` collection) of a search run's checkpoint: the newest, or `step`."""
  config, space = read_search_run(search_dir)
  directory = os.path.join(search_dir, "checkpoints")
  if not os.path.isdir(directory):
    raise ValueError(f"search run {search_dir} has no checkpoints/ (has it started?)")
  network = qnetwork.build(config.network, space)
  optimizer = optimizer_lib.make(config.train)
  shapes = jax.eval_shape(lambda key: train_state_lib.create(network, optimizer, key), jax.random.PRNGKey(0))
  template = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes)
  ckpts = checkpoints_lib.Checkpoints(directory, int(config.train.keep_checkpoints))
  try:
    steps = ckpts.all_steps()
    if not steps:
      raise ValueError(f"search run {search_dir} has no checkpoint yet")
    if step is None:
      step = max(steps)
    elif step not in steps:
      raise ValueError(f"--step={step}: search run {search_dir} has checkpoints at steps {sorted(steps)}")
    state, _ = ckpts.restore(step, template)
  finally:
    ckpts.close()
  return step, state.arch


def write_derived(output_dir: str, genotype: genotype_lib.Genotype, network_config: ml_collections.ConfigDict,
                  preset: str, title: str, info: Mapping[str, Any],
                  weights: Mapping[int, Mapping[str, Mapping[str, float]]] | None = None,
                  log: run_files.Log = print) -> None:
  """genotype.json (with `weights`), architecture.png, flops.md, then derive.json (the completion mark).

  Args:
    output_dir: the derived/ directory.
    genotype: the architecture.
    network_config: the `network` section the FLOPs are counted at.
    preset: its name, for the FLOPs table.
    title: the picture's title line.
    info: what derive.json records about the source (search run and step, evolution, ...).
    weights: `genotype.architecture_weights` of the search, or None.
    log: where the summary lines go.
  """
  os.makedirs(output_dir, exist_ok=True)
  genotype_path = os.path.join(output_dir, "genotype.json")
  genotype_lib.save_json(genotype, genotype_path, extra=weights)
  picture = os.path.join(output_dir, "architecture.png")
  diagram.draw(genotype, picture, title, weights)
  table = flops_lib.flops_table({preset: qnetwork.NetworkSpec.from_config(network_config)}, {"found": genotype})
  atomic.write(os.path.join(output_dir, "flops.md"), lambda f: f.write(
      "Forward FLOPs per sample (XLA cost analysis) of the search, found and base networks.\n\n" + table + "\n"),
               mode="w")
  atomic.write_json(os.path.join(output_dir, DERIVE_JSON), dict(info, genotype=genotype.to_json_dict()))
  for line in genotype.describe().splitlines():
    log(line)
  for line in table.splitlines():
    log(line)
  log(f"genotype: {genotype_path}; picture: {picture}")


def derive(search_dir: str, output_dir: str, step: int | None = None,
           log: run_files.Log = print) -> genotype_lib.Genotype:
  """experiments/derive.py: the paper's pruning rule on a search checkpoint (argmax op, edges > 0.5).

  Writes `write_derived`'s files for the newest checkpoint of `search_dir` (or `step`),
  with the FLOPs at the run's own network config. Returns the genotype.
  """
  config, space = read_search_run(search_dir)
  step, arch = search_architecture(search_dir, step)
  weights = genotype_lib.architecture_weights(arch, space)
  try:
    genotype = genotype_lib.derive(arch, space)
  except ValueError as e:
    raise ValueError(f"search run {search_dir} step {step}: the derived architecture is invalid: {e}") from None
  info = {"source": "search", "search": os.path.abspath(search_dir), "step": step, "space": _space_name(space)}
  write_derived(output_dir, genotype, config.network, str(config.get("preset", "run")),
                f"derived from {search_dir} at step {step} ({_space_name(space)} space)", info, weights, log)
  return genotype

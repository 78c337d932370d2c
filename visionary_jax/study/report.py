"""Tables and figures of a study root (experiments/report.py): Table I, Fig. 6, FLOPs, found genotypes.

Reads what visionary_jax.study.runner writes: ROOT/study.json and, for every run,
ROOT/<variant>/seed_<k>/train/eval_curve.json and derived/genotype.json. A run
counts once its curve reaches `study.retrain_steps`; the others are listed as
incomplete.

Table I (the paper's, with every variant as rows, so it is also Table II):
  final      each run's success rate at its last evaluation (the retrain's last
             step): mean ± sample std (ddof=1) over runs, and the best run's;
  peak       each run's highest evaluation along its curve: mean ± std;
  t, df, p   Student's independent two-sample t-test (pooled variance,
             two-sided) of the final success rates against the baseline's; it
             needs at least 2 runs on both sides.
"""

import csv
import dataclasses
import io
import math
import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from visionary_jax import atomic
from visionary_jax import genotype as genotype_lib
from visionary_jax import run_files
from visionary_jax.nets import flops as flops_lib
from visionary_jax.nets import qnetwork
from visionary_jax.study import runner
from visionary_jax.study import statistics
from visionary_jax.viz import plots

Curve = list[dict[str, Any]]  # eval_curve.json: [{"step", "success_rate", "trials", ...}], steps ascending
ARCHIVE_SOURCE_JSON = "source.json"  # where an archived run came from (visionary_jax/study/archive.py)


def load_study(root: str) -> dict[str, Any]:
  """ROOT/study.json, checked; ValueError naming the file for anything else."""
  if not os.path.isdir(root):
    raise ValueError(f"--workdir={root} is not a directory")
  path = os.path.join(root, runner.STUDY_JSON)
  record = runner.read_study_record(path)
  study = record.get("config", {}).get("study", {}) if isinstance(record.get("config"), dict) else {}
  dataset = record.get("dataset") if isinstance(record.get("dataset"), dict) else {}
  missing = ([k for k in ("task", "preset") if k not in record]
             + [f"dataset.{k}" for k in ("dir", "episodes", "transitions") if k not in dataset]
             + [f"config.study.{k}" for k in ("retrain_steps", "search_steps", "eval_every", "eval_trials")
                if not isinstance(study.get(k), int)])
  if missing:
    raise ValueError(f"{path} lacks the fields {missing}")
  return record


def check_curve(curve: Any, path: str) -> Curve:
  """The parsed eval_curve.json, or a ValueError naming the file and the bad entry."""
  if not isinstance(curve, list) or not curve:
    raise ValueError(f"{path}: an evaluation curve must be a non-empty list")
  last = -1
  for k, entry in enumerate(curve):
    if not isinstance(entry, dict):
      raise ValueError(f"{path}: entry {k} must be an object")
    step, rate = entry.get("step"), entry.get("success_rate")
    if not isinstance(step, int) or isinstance(step, bool) or step <= last:
      raise ValueError(f"{path}: entry {k} field 'step' must be an integer above the previous entry's, got {step!r}")
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate <= 1:
      raise ValueError(f"{path}: entry {k} field 'success_rate' must be a number in [0, 1], got {rate!r}")
    last = step
  return curve


def _variant_order(names) -> list[str]:
  known = [v for v in runner.VARIANTS if v in names]
  return known + sorted(set(names) - set(known))


def _seeds(root: str, variant: str) -> list[int]:
  """Seeds k of the ROOT/variant/seed_k directories, ascending."""
  return sorted(int(d[5:]) for d in os.listdir(os.path.join(root, variant)) if d.startswith("seed_") and d[5:].isdigit())


def read_runs(root: str, retrain_steps: int) -> tuple[dict[str, dict[int, Curve]], list[str]]:
  """({variant: {seed: curve}} of the complete runs, descriptions of the incomplete ones)."""
  runs: dict[str, dict[int, Curve]] = {}
  incomplete = []
  variants = [v for v in os.listdir(root) if os.path.isdir(os.path.join(root, v))]
  for variant in _variant_order(variants):
    for seed in _seeds(root, variant):
      path = os.path.join(runner.run_dir(root, variant, seed), "train", "eval_curve.json")
      if not os.path.exists(path):
        incomplete.append(f"{variant} seed {seed}: no evaluation yet")
        continue
      curve = check_curve(run_files.read_json(path, "evaluation curve"), path)
      if curve[-1]["step"] < retrain_steps:
        incomplete.append(f"{variant} seed {seed}: evaluated up to step {curve[-1]['step']} of {retrain_steps}")
        continue
      runs.setdefault(variant, {})[seed] = curve
  return runs, incomplete


@dataclasses.dataclass(frozen=True)
class Row:
  """One variant of Table I; rates are fractions in [0, 1]."""

  variant: str
  runs: int
  final_mean: float
  final_std: float  # sample std (ddof=1); 0 for one run
  final_best: float
  peak_mean: float
  peak_std: float
  test: statistics.TTest | None  # final success against the baseline's


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
  v = np.asarray(values, np.float64)
  return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def table_one(runs: Mapping[str, Mapping[int, Curve]], baseline: str = runner.BASELINE_VARIANT) -> list[Row]:
  """Table I rows in variant order (see the module docstring)."""
  finals = {v: [c[-1]["success_rate"] for _, c in sorted(seeds.items())] for v, seeds in runs.items()}
  peaks = {v: [max(e["success_rate"] for e in c) for _, c in sorted(seeds.items())] for v, seeds in runs.items()}
  rows = []
  for variant in _variant_order(runs):
    test = None
    if variant != baseline and len(finals[variant]) >= 2 and len(finals.get(baseline, ())) >= 2:
      test = statistics.student_t_test(finals[variant], finals[baseline])
    final_mean, final_std = _mean_std(finals[variant])
    peak_mean, peak_std = _mean_std(peaks[variant])
    rows.append(Row(variant, len(finals[variant]), final_mean, final_std, max(finals[variant]), peak_mean, peak_std,
                    test))
  return rows


def _test_cells(test: statistics.TTest | None) -> list[str]:
  if test is None:
    return ["", "", ""]
  if not math.isfinite(test.t):  # both groups constant: the test is undefined
    return ["n/a", str(test.df), "n/a"]
  return [f"{test.t:.3f}", str(test.df), f"{test.p:.4g}"]


def _percent_spread(mean: float, std: float, runs: int) -> str:
  """'m ± s' in %, or 'm' alone for a single run, whose spread is unknown."""
  return f"{100 * mean:.1f} ± {100 * std:.1f}" if runs > 1 else f"{100 * mean:.1f}"


def table_markdown(rows: Sequence[Row]) -> str:
  """Table I as Markdown, success rates in %."""
  lines = ["| variant | runs | final success (%) | best run (%) | peak success (%) | t | df | p |",
           "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    t, df, p = _test_cells(r.test)
    lines.append(f"| {r.variant} | {r.runs} | {_percent_spread(r.final_mean, r.final_std, r.runs)} | "
                 f"{100 * r.final_best:.1f} | {_percent_spread(r.peak_mean, r.peak_std, r.runs)} | {t} | {df} | {p} |")
  return "\n".join(lines)


def table_csv(rows: Sequence[Row]) -> str:
  """Table I as CSV, success rates in % with two decimals."""
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(["variant", "runs", "final_mean", "final_std", "final_best", "peak_mean", "peak_std", "t", "df",
                   "p"])
  for r in rows:
    writer.writerow([r.variant, r.runs] + [f"{100 * x:.2f}" for x in (r.final_mean, r.final_std, r.final_best,
                                                                     r.peak_mean, r.peak_std)]
                    + _test_cells(r.test))
  return out.getvalue()


def curves_for_plot(runs: Mapping[str, Mapping[int, Curve]]) -> dict[str, list[plots.Curve]]:
  return {v: [([e["step"] for e in c], [e["success_rate"] for e in c]) for _, c in sorted(seeds.items())]
          for v, seeds in runs.items()}


def found_genotypes(root: str) -> dict[str, dict[int, genotype_lib.Genotype]]:
  """{variant: {seed: genotype}} of every run with derived/genotype.json."""
  out: dict[str, dict[int, genotype_lib.Genotype]] = {}
  for variant in _variant_order([v for v in os.listdir(root) if os.path.isdir(os.path.join(root, v))]):
    for seed in _seeds(root, variant):
      path = os.path.join(runner.run_dir(root, variant, seed), "derived", "genotype.json")
      if os.path.exists(path):
        out.setdefault(variant, {})[seed] = genotype_lib.load_json(path)
  return out


def genotypes_markdown(root: str, genotypes: Mapping[str, Mapping[int, genotype_lib.Genotype]]) -> str:
  """One section per distinct genotype of each variant, naming the seeds that found it and their files.

  The files are named relative to `root`, so the text is the same wherever the root lies.
  """
  lines = []
  for variant, seeds in genotypes.items():
    by_genotype: dict[genotype_lib.Genotype, list[int]] = {}
    for seed, genotype in seeds.items():
      by_genotype.setdefault(genotype, []).append(seed)
    for genotype, group in by_genotype.items():
      lines += [f"### {variant} seed{'s' if len(group) > 1 else ''} {', '.join(map(str, group))}", ""]
      for seed in group:
        derived = os.path.relpath(os.path.join(runner.run_dir(root, variant, seed), "derived"), root)
        picture = os.path.join(derived, "architecture.png")
        lines.append(f"- `{os.path.join(derived, 'genotype.json')}`"
                     + (f", picture `{picture}`" if os.path.exists(os.path.join(root, picture)) else ""))
      lines += ["", "```", genotype.describe(), "```", ""]
  return "\n".join(lines)


def distinct_found(genotypes: Mapping[str, Mapping[int, genotype_lib.Genotype]]) -> dict[str, genotype_lib.Genotype]:
  """{label: genotype} of the distinct non-baseline genotypes, labelled by the runs that found them."""
  found: dict[genotype_lib.Genotype, list[str]] = {}
  for variant, seeds in genotypes.items():
    for seed, genotype in seeds.items():
      if genotype != genotype_lib.BASELINE:
        found.setdefault(genotype, []).append(f"{variant} s{seed}")
  return {", ".join(labels): genotype for genotype, labels in found.items()}


def runs_on_other_datasets(root: str, runs: Mapping[str, Mapping[int, Curve]],
                           dataset: Mapping[str, Any]) -> dict[tuple[int, int], list[str]]:
  """{(episodes, transitions): ["variant seed k", ...]} of archived runs whose source.json names another dataset size."""
  other: dict[tuple[int, int], list[str]] = {}
  for variant, seeds in runs.items():
    for seed in sorted(seeds):
      path = os.path.join(runner.run_dir(root, variant, seed), ARCHIVE_SOURCE_JSON)
      if not os.path.exists(path):
        continue
      own = run_files.read_json(path, "archive source").get("dataset")
      if isinstance(own, dict) and (own.get("episodes"), own.get("transitions")) != (dataset["episodes"],
                                                                                  dataset["transitions"]):
        other.setdefault((own.get("episodes"), own.get("transitions")), []).append(f"{variant} seed {seed}")
  return other


def evolution_budget_markdown(root: str) -> str:
  """The evolution's compute next to one one-shot search of the same seed (visionary), per seed."""
  lines = ["| seed | evolution runs x steps | evolution gradient steps | evolution wall time | "
           "one-shot search steps | one-shot search wall time | time ratio |", "|---|---|---|---|---|---|---|"]
  seeds = _seeds(root, "evolution") if os.path.isdir(os.path.join(root, "evolution")) else []
  for seed in seeds:
    path = os.path.join(runner.run_dir(root, "evolution", seed), "search", "budget.json")
    if not os.path.exists(path):
      continue
    budget = run_files.read_json(path, "evolution budget")
    timing_path = os.path.join(runner.run_dir(root, "visionary", seed), "search", run_files.TIMING_JSON)
    search_seconds = (run_files.read_json(timing_path, "search timing")["seconds"]
                      if os.path.exists(timing_path) else None)
    ratio = f"{budget['wall_seconds'] / search_seconds:.2f}" if search_seconds else "-"
    lines.append(f"| {seed} | {budget['fitness_runs']} x {budget['steps_per_run']} | {budget['gradient_steps']} | "
                 f"{budget['wall_seconds']:.0f} s | {budget['one_shot_search_steps']} | "
                 f"{'-' if search_seconds is None else f'{search_seconds:.0f} s'} | {ratio} |")
  return "\n".join(lines) if len(lines) > 2 else ""


def write_report(root: str, output: str, flops_specs: Mapping[str, qnetwork.NetworkSpec],
                 log: Callable[[str], None] = print) -> dict[str, str]:
  """Writes table_one.md/.csv, learning_curves.png, flops.md, genotypes.md and report.md to `output`.

  report.md and genotypes.md name files relative to `root` and no path outside it, so a report of a
  committed study archive reads the same on every machine.

  Args:
    root: the study root.
    output: the report directory.
    flops_specs: {preset name: trunk spec} the FLOPs table is computed at (e.g. paper and cpu).
    log: where the paths written are announced.
  Returns:
    {file name: path} of the files written.
  """
  record = load_study(root)
  study = record["config"]["study"]
  runs, incomplete = read_runs(root, int(study["retrain_steps"]))
  if not runs:
    raise ValueError(f"study {root} has no complete run yet ({len(incomplete)} incomplete)")
  os.makedirs(output, exist_ok=True)
  paths = {name: os.path.join(output, name) for name in
           ("table_one.md", "table_one.csv", "learning_curves.png", "flops.md", "genotypes.md", "report.md")}
  rows = table_one(runs)
  table = table_markdown(rows)
  atomic.write(paths["table_one.md"], lambda f: f.write(table + "\n"), mode="w")
  atomic.write(paths["table_one.csv"], lambda f: f.write(table_csv(rows)), mode="w")
  log(f"Table I: {paths['table_one.md']}, {paths['table_one.csv']}")
  plots.learning_curves(curves_for_plot(runs), paths["learning_curves.png"],
                        f"{record['task']}, {record['preset']} preset: success rate (mean ± std over runs)")
  log(f"learning curves: {paths['learning_curves.png']}")
  genotypes = found_genotypes(root)
  found = distinct_found(genotypes)
  flops = flops_lib.flops_table(flops_specs, found or {"baseline": genotype_lib.BASELINE}) if flops_specs else ""
  atomic.write(paths["flops.md"], lambda f: f.write(flops + "\n"), mode="w")
  log(f"FLOPs ({', '.join(flops_specs) or 'no preset'}): {paths['flops.md']}")
  genotype_text = genotypes_markdown(root, genotypes)
  atomic.write(paths["genotypes.md"], lambda f: f.write(genotype_text), mode="w")
  budget = evolution_budget_markdown(root)
  dataset = record["dataset"]
  header = [
      f"# Study report: {record['task']}, `{record['preset']}` preset", "",
      f"Read from a study root (config in its `study.json`; the files named below are relative to it), written "
      f"by `python -m experiments.study --config=experiments/configs/{record['task']}.py:{record['preset']} "
      f"--workdir=ROOT` (plus any `--config.*` overrides recorded in study.json).", "",
      f"- dataset: {dataset['episodes']} episodes, {dataset['transitions']} transitions "
      "(its directory: `dataset.dir` in study.json)",
      f"- one-shot search: {study['search_steps']} steps; every final network trained from scratch for "
      f"{study['retrain_steps']} steps, evaluated every {study['eval_every'] or study['retrain_steps']} steps and at "
      f"the last on {study['eval_trials']} trials",
      *[f"- re-collected with the same command, {episodes} episodes, {transitions} transitions: "
        f"{', '.join(names)}" for (episodes, transitions), names in
        runs_on_other_datasets(root, runs, dataset).items()],
      "- runs per variant: " + ", ".join(f"{v} {len(s)} (seeds {', '.join(map(str, sorted(s)))})"
                                         for v, s in runs.items()), ""]
  if incomplete:
    header += ["Incomplete runs (not in the tables): " + "; ".join(incomplete) + ".", ""]
  body = ["## Table I: success rate per variant", "", table, "",
          "final: success at the last evaluation, mean ± std over runs; best run: the highest final; peak: each "
          "run's best evaluation, mean ± std; t, df, p: Student's two-sample t-test of the final success against "
          "the baseline.", "", "## Learning curves", "", "![learning curves](learning_curves.png)", "",
          "## FLOPs per sample (forward pass)", "", flops, ""]
  if budget:
    body += ["## Evolution budget against one one-shot search", "", budget, ""]
  body += ["## Found genotypes", "", genotype_text]
  atomic.write(paths["report.md"], lambda f: f.write("\n".join(header + body)), mode="w")
  log(f"report: {paths['report.md']}")
  return paths

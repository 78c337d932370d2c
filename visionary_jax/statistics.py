"""Statistics for the paper's tables: mean +/- std, best, Student's t-test, Wilson intervals.

Table I of the paper reports, per variant over K runs, the mean and standard
deviation of the success rate, the best run, and an independent two-sample
Student's t-test (equal variances) against the baseline.
"""

import csv
import dataclasses
import io
import math
from typing import Sequence

import numpy as np
from scipy import stats


@dataclasses.dataclass(frozen=True)
class TTest:
  t: float
  df: int
  p: float  # two-sided


def student_t_test(treatment: Sequence[float], baseline: Sequence[float]) -> TTest:
  """Independent two-sample Student's t-test with pooled variance, treatment minus baseline."""
  a, b = np.asarray(treatment, np.float64), np.asarray(baseline, np.float64)
  if a.size < 2 or b.size < 2:
    raise ValueError(f"a t-test needs at least 2 runs per group, got {a.size} and {b.size}")
  result = stats.ttest_ind(a, b, equal_var=True)
  return TTest(t=float(result.statistic), df=int(a.size + b.size - 2), p=float(result.pvalue))


def student_t_test_from_summary(mean_a: float, std_a: float, n_a: int,
                                mean_b: float, std_b: float, n_b: int) -> TTest:
  """The same test from means, sample standard deviations (ddof=1) and counts."""
  result = stats.ttest_ind_from_stats(mean_a, std_a, n_a, mean_b, std_b, n_b, equal_var=True)
  return TTest(t=float(result.statistic), df=int(n_a + n_b - 2), p=float(result.pvalue))


def wilson_interval(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
  """95 % (by default) Wilson score interval of a success rate."""
  if trials <= 0 or not 0 <= successes <= trials:
    raise ValueError(f"need 0 <= successes <= trials and trials > 0, got {successes}/{trials}")
  p = successes / trials
  denom = 1 + z * z / trials
  centre = (p + z * z / (2 * trials)) / denom
  half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
  return max(0.0, centre - half), min(1.0, centre + half)


@dataclasses.dataclass(frozen=True)
class VariantSummary:
  name: str
  runs: int
  mean: float
  std: float  # sample standard deviation (ddof=1); 0 for a single run
  best: float
  test: TTest | None  # against the baseline; None for the baseline itself


def summarise(results: dict[str, Sequence[float]], baseline: str) -> list[VariantSummary]:
  """Per-variant summary of final success rates (one per run), tested against `baseline`."""
  if baseline not in results:
    raise ValueError(f"baseline variant {baseline!r} is not among {sorted(results)}")
  rows = []
  for name, values in results.items():
    v = np.asarray(values, np.float64)
    if v.size == 0:
      raise ValueError(f"variant {name!r} has no runs")
    test = None
    if name != baseline and v.size >= 2 and len(results[baseline]) >= 2:
      test = student_t_test(v, results[baseline])
    rows.append(VariantSummary(name, int(v.size), float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0,
                               float(v.max()), test))
  return rows


_HEADER = ("variant", "runs", "mean", "std", "best", "t", "df", "p")


def _cells(row: VariantSummary, scale: float) -> list[str]:
  t = row.test
  return [row.name, str(row.runs), f"{scale * row.mean:.1f}", f"{scale * row.std:.1f}", f"{scale * row.best:.1f}",
          "" if t is None else f"{t.t:.2f}", "" if t is None else str(t.df), "" if t is None else f"{t.p:.3g}"]


def to_markdown(rows: Sequence[VariantSummary], scale: float = 100.0) -> str:
  """Table I-style Markdown: success rates in % (scale 100), mean +/- std, best, t-test."""
  lines = ["| variant | runs | mean success (%) | best (%) | t | df | p |", "|---|---|---|---|---|---|---|"]
  for row in rows:
    c = _cells(row, scale)
    lines.append(f"| {c[0]} | {c[1]} | {c[2]} ± {c[3]} | {c[4]} | {c[5]} | {c[6]} | {c[7]} |")
  return "\n".join(lines)


def to_csv(rows: Sequence[VariantSummary], scale: float = 100.0) -> str:
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(_HEADER)
  for row in rows:
    writer.writerow(_cells(row, scale))
  return out.getvalue()

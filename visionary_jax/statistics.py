"""Statistics for the paper's tables: Student's t-test and Wilson intervals.

Table I of the paper tests each variant's success rates over K runs against
the baseline's with an independent two-sample Student's t-test (equal
variances); `visionary_jax.report` builds the table itself. Evaluations
report a success rate with its Wilson interval.
"""

import dataclasses
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

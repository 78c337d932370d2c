"""Statistics for the paper's tables: Student's t-test and Wilson intervals.

Table I of the paper tests each variant's success rates over K runs against
the baseline's with an independent two-sample Student's t-test (equal
variances); `visionary_jax.study.report` builds the table itself. Evaluations
report a success rate with its Wilson interval.
"""

import dataclasses
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


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
  """Wilson score interval of a success rate (95 % by default)."""
  if trials <= 0 or not 0 <= successes <= trials:
    raise ValueError(f"need 0 <= successes <= trials and trials > 0, got {successes}/{trials}")
  interval = stats.binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
  return float(interval.low), float(interval.high)

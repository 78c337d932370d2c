"""Statistics against hand-computed values and the paper's Table I."""

import numpy as np
import pytest

from visionary_jax.study import statistics


def test_t_test_hand_computed():
  # means 5 and 2, both sample variances 1: pooled sd 1, t = 3 / sqrt(2/3) = 3.6742, df 4.
  result = statistics.student_t_test([4, 5, 6], [1, 2, 3])
  assert result.t == pytest.approx(3.674235, abs=1e-5)
  assert result.df == 4
  assert result.p == pytest.approx(0.02131, abs=5e-5)


def test_t_test_reproduces_paper_table_one():
  # Visionary 84.1 +/- 4.4 vs base 74.8 +/- 7.3, 15 runs each: the paper reports t = 4.23, df = 28, p < 0.001.
  # Fifteen runs per group with exactly the reported means and sample standard deviations.
  spread = np.random.default_rng(0).normal(size=(2, 15))
  spread = (spread - spread.mean(1, keepdims=True)) / spread.std(1, ddof=1, keepdims=True)
  result = statistics.student_t_test(84.1 + 4.4 * spread[0], 74.8 + 7.3 * spread[1])
  assert result.t == pytest.approx(4.23, abs=0.005)
  assert result.df == 28
  assert result.p < 0.001


def test_t_test_needs_two_runs():
  with pytest.raises(ValueError, match="at least 2 runs"):
    statistics.student_t_test([0.5], [0.4, 0.6])


def test_wilson_interval_hand_computed():
  # 50 / 100: centre 0.5, half width 1.96 * sqrt(0.25/100 + 1.96^2/40000) / (1 + 1.96^2/100) = 0.0960.
  low, high = statistics.wilson_interval(50, 100)
  assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
  low, high = statistics.wilson_interval(0, 10)
  assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
  with pytest.raises(ValueError):
    statistics.wilson_interval(3, 0)
  with pytest.raises(ValueError):
    statistics.wilson_interval(11, 10)
  # 99 %: z = 2.5758, the same formula.
  low, high = statistics.wilson_interval(50, 100, confidence=0.99)
  assert low == pytest.approx(0.3753, abs=1e-4) and high == pytest.approx(0.6247, abs=1e-4)

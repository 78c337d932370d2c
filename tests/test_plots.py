"""Learning-curve aggregation by hand, and the PNG."""

import matplotlib.image
import numpy as np
import pytest

from visionary_jax import plots


def test_mean_std_over_runs_uses_common_steps():
  runs = [([0, 1000, 2000], [0.1, 0.5, 0.7]), ([0, 1000], [0.3, 0.7])]
  steps, mean, std = plots.mean_std_over_runs(runs)
  np.testing.assert_array_equal(steps, [0, 1000])
  np.testing.assert_allclose(mean, [0.2, 0.6])
  np.testing.assert_allclose(std, [0.1, 0.1])
  with pytest.raises(ValueError, match="share no evaluation step"):
    plots.mean_std_over_runs([([0], [0.1]), ([5], [0.2])])


def test_learning_curves_png(tmp_path):
  path = str(tmp_path / "curves.png")
  plots.learning_curves({"base": [([0, 1, 2], [0.1, 0.2, 0.3])] * 2, "visionary": [([0, 1, 2], [0.2, 0.4, 0.5])]},
                        path, "test")
  assert matplotlib.image.imread(path).std() > 0.01

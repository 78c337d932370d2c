"""Learning-curve aggregation by hand, and the PNG."""

import matplotlib.image
import numpy as np
import pytest

from visionary_jax.viz import plots


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


def test_architecture_weight_series_from_metrics_records():
  records = [{"step": 2, "wall_time": 5.0, "loss": 0.7, "arch/loc0/op/add": 0.3, "arch/loc0/op/noop": 0.1},
             {"step": 1, "arch/loc0/op/add": 0.2, "arch/loc3/edge/dilated2": 0.6},
             {"step": 2, "eval/success_rate": 0.5}]
  series = plots.architecture_weight_series(records)
  assert sorted(series) == [0, 3]
  assert series[0]["op"] == {"add": ([1, 2], [0.2, 0.3]), "noop": ([2], [0.1])}
  assert series[0]["edge"] == {} and series[3]["op"] == {}
  assert series[3]["edge"] == {"dilated2": ([1], [0.6])}
  with pytest.raises(ValueError, match="only a search run logs them"):
    plots.architecture_weight_series([{"step": 1, "loss": 0.5}])


def test_architecture_weights_png(tmp_path):
  path = str(tmp_path / "weights.png")
  records = [{"step": s, "arch/loc1/edge/action": 0.5 + 0.01 * s, "arch/loc1/edge/loc0": 0.5 - 0.01 * s}
             for s in range(1, 20)]
  plots.architecture_weights(records, path, "edges only")
  assert matplotlib.image.imread(path).std() > 0.01

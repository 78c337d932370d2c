"""evaluation.append_to_curve: a resumed run's evaluation replaces the killed run's later points."""

import os

from visionary_jax import evaluation


def _result(successes: int) -> dict:
  return {"trials": 4, "successes": successes, "success_rate": successes / 4, "wilson_low": 0.0,
          "wilson_high": 1.0, "per_trial": [True] * successes + [False] * (4 - successes)}


def test_append_to_curve_replaces_points_from_its_step_on(tmp_path):
  workdir = str(tmp_path)
  assert evaluation.append_to_curve(workdir, 3, _result(1))[-1] == {
      "trials": 4, "successes": 1, "success_rate": 0.25, "wilson_low": 0.0, "wilson_high": 1.0, "step": 3}
  evaluation.append_to_curve(workdir, 6, _result(2))
  evaluation.append_to_curve(workdir, 9, _result(3))  # the killed run got this far; its checkpoint is step 3
  curve = evaluation.append_to_curve(workdir, 6, _result(4))
  assert [(c["step"], c["successes"]) for c in curve] == [(3, 1), (6, 4)]
  assert evaluation.read_curve(workdir) == curve
  assert os.path.getsize(os.path.join(workdir, "eval_curve.png")) > 1000

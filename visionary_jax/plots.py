"""Learning curves as PNG: success rate against training step, mean and std band per variant (Fig. 6)."""

from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

Curve = tuple[Sequence[int], Sequence[float]]  # (steps, success rates) of one run


def mean_std_over_runs(runs: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(steps, mean, std) over runs at the steps every run evaluated."""
  if not runs:
    raise ValueError("no runs to average")
  common = sorted(set.intersection(*(set(int(s) for s in steps) for steps, _ in runs)))
  if not common:
    raise ValueError("the runs share no evaluation step")
  table = np.array([[dict(zip((int(s) for s in steps), rates))[s] for s in common] for steps, rates in runs],
                   np.float64)
  return np.asarray(common), table.mean(axis=0), table.std(axis=0)


def learning_curves(variants: Mapping[str, Sequence[Curve]], path: str, title: str = "") -> None:
  """Writes a PNG with one mean line and +/- std band per variant."""
  fig, ax = plt.subplots(figsize=(7, 4.2))
  for name, runs in variants.items():
    steps, mean, std = mean_std_over_runs(runs)
    line, = ax.plot(steps, mean, label=f"{name} ({len(runs)} runs)")
    ax.fill_between(steps, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1), color=line.get_color(), alpha=0.2)
  ax.set_xlabel("training step")
  ax.set_ylabel("success rate")
  ax.set_ylim(0, 1)
  ax.grid(alpha=0.3)
  ax.legend(loc="lower right")
  if title:
    ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)

"""Dataset summary: success fraction, episode lengths and a PNG grid of camera frames."""

import os
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from visionary_jax import action_space  # pylint: disable=g-import-not-at-top,wrong-import-position
from visionary_jax import atomic  # pylint: disable=g-import-not-at-top,wrong-import-position
from visionary_jax.episodes import dataset as dataset_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from visionary_jax.viz import plots  # pylint: disable=g-import-not-at-top,wrong-import-position

SUMMARY_JSON = "summary.json"
SUMMARY_PNG = "summary.png"
# Gripper heights (metres above the tray floor) bounding the bins of `grasp_attempts_by_height`.
ATTEMPT_HEIGHT_EDGES = (0.02, 0.05, 0.10, 0.20)


def grasp_attempts(data: dataset_lib.Dataset) -> np.ndarray:
  """bool [T]: transitions whose command is close and which end their episode (grasp attempts)."""
  return action_space.commands_close(data.action) & data.terminated


def grasp_attempts_by_height(data: dataset_lib.Dataset) -> list[dict[str, Any]]:
  """Terminal close commands binned by the gripper height before them, with their success.

  What a grasping Q-function can learn about closing: if nearly every low
  close succeeds, height alone predicts success. Rows: {"low", "high" (None
  for unbounded), "attempts", "success" (None when empty)}.
  """
  attempt = grasp_attempts(data)
  height = data.height[data.frame[attempt]]
  success = data.reward[attempt] > 0
  bins = np.searchsorted(np.asarray(ATTEMPT_HEIGHT_EDGES), height, side="right")
  edges = (None,) + ATTEMPT_HEIGHT_EDGES + (None,)
  rows = []
  for b in range(len(ATTEMPT_HEIGHT_EDGES) + 1):
    in_bin = bins == b
    rows.append({"low": edges[b], "high": edges[b + 1], "attempts": int(in_bin.sum()),
                 "success": float(success[in_bin].mean()) if in_bin.any() else None})
  return rows


def summarize(data: dataset_lib.Dataset, task: str) -> dict[str, Any]:
  """Counts, success fraction and episode-length histogram of a dataset; grasping adds its attempts by height."""
  lengths = data.episode_length
  counts = np.bincount(lengths)
  scripted = data.episode_scripted
  frac = lambda mask: float(data.episode_success[mask].mean()) if mask.any() else None
  return {
      "episodes": int(data.num_episodes),
      "transitions": int(data.num_transitions),
      "image_size": int(data.image_size),
      "success_fraction": float(data.episode_success.mean()),
      "success_fraction_scripted": frac(scripted),
      "success_fraction_random": frac(~scripted),
      "scripted_fraction": float(scripted.mean()),
      "physics_failures": int(data.physics_failure.sum()),
      "mean_episode_length": float(lengths.mean()),
      "episode_length_histogram": {str(n): int(c) for n, c in enumerate(counts) if c},
      "unique_seeds": int(len(np.unique(data.episode_seed))),
      **({"grasp_attempts_by_height": grasp_attempts_by_height(data)} if task == "grasping" else {}),
      "bad_shards": [{"path": b.path, "problem": b.problem} for b in data.bad_shards],
  }


def plot(data: dataset_lib.Dataset, path: str, rows: int = 6, columns: int = 8):
  """Writes a PNG: `rows` episodes (successes first) x up to `columns` frames, and a histogram."""
  success = np.flatnonzero(data.episode_success)
  failure = np.flatnonzero(~data.episode_success)
  chosen = list(success[:rows // 2]) + list(failure[:rows - min(len(success), rows // 2)])
  chosen = chosen[:rows]
  fig = plt.figure(figsize=(1.3 * columns, 1.4 * (len(chosen) + 2)))
  grid = fig.add_gridspec(len(chosen) + 2, columns)
  strips = []
  for episode in chosen:
    outcome = "success" if data.episode_success[episode] else "failure"
    strips.append((f"ep {int(data.episode_index[episode])}\n{outcome}", data.episode_frames(int(episode)),
                   lambda t: f"t={t}"))
  plots.frame_strips(fig, grid, strips, columns)
  ax = fig.add_subplot(grid[len(chosen):, :])
  lengths = data.episode_length
  bins = np.arange(1, lengths.max() + 2) - 0.5
  ax.hist([lengths[data.episode_success], lengths[~data.episode_success]], bins=bins,
          stacked=True, label=["success", "failure"], color=["tab:green", "tab:gray"])
  ax.set_xlabel("episode length (steps)")
  ax.set_ylabel("episodes")
  ax.legend(fontsize=7)
  ax.set_title(f"{data.num_episodes} episodes, success fraction "
               f"{data.episode_success.mean():.3f}", fontsize=9)
  fig.tight_layout()
  plots.save_atomically(fig, path, dpi=80)


def write_summary(workdir: str, task: str, image_size: int | None = None,
                  skip_bad_shards: bool = False) -> dict[str, Any]:
  """Writes workdir/summary.json and workdir/summary.png for `task`'s workdir/episodes; returns the dict."""
  data = dataset_lib.Dataset(os.path.join(workdir, "episodes"), image_size,
                             skip_bad_shards=skip_bad_shards, mmap=True)
  result = summarize(data, task)
  atomic.write_json(os.path.join(workdir, SUMMARY_JSON), result)
  plot(data, os.path.join(workdir, SUMMARY_PNG))
  return result

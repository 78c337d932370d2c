"""Figures as PNG: learning curves (success rate against training step, mean and std band per variant,
Fig. 6), a search run's architecture weights against training step, and strips of camera frames."""

from typing import Any, Callable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from visionary_jax import action_space  # pylint: disable=g-import-not-at-top
from visionary_jax import atomic  # pylint: disable=g-import-not-at-top

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
  save_atomically(fig, path, dpi=110)


Series = dict[int, dict[str, dict[str, tuple[list[int], list[float]]]]]


def success_curve(curve: Sequence[Mapping[str, Any]], path: str) -> None:
  """Success rate and 95 % Wilson interval against training step, from evaluation results with a "step"."""
  steps = [c["step"] for c in curve]
  fig, ax = plt.subplots(figsize=(5, 3.5))
  ax.fill_between(steps, [c["wilson_low"] for c in curve], [c["wilson_high"] for c in curve], alpha=0.3,
                  label="95 % Wilson interval")
  ax.plot(steps, [c["success_rate"] for c in curve], marker="o", label="success rate")
  ax.set_xlabel("training step")
  ax.set_ylabel("success rate")
  ax.set_ylim(0, 1)
  ax.legend(loc="lower right")
  fig.tight_layout()
  save_atomically(fig, path, dpi=120)


def architecture_weight_series(records: Sequence[Mapping[str, object]]) -> Series:
  """Architecture weights over training from metrics.jsonl records of a search run.

  Args:
    records: `metrics.read_jsonl` records; those with `arch/loc{i}/op/{op}` (softmax op
      weights) or `arch/loc{i}/edge/{source}` (sigmoid edge weights) keys are used.
  Returns:
    {location: {"op": {op: (steps, weights)}, "edge": {source: (steps, weights)}}}, steps ascending.
  Raises:
    ValueError: no record holds an architecture weight (not a search run's metrics).
  """
  series: Series = {}
  for record in sorted(records, key=lambda r: int(r["step"])):
    for key, value in record.items():
      parts = key.split("/")
      if len(parts) != 4 or parts[0] != "arch" or not parts[1].startswith("loc") or parts[2] not in ("op", "edge"):
        continue
      steps, values = series.setdefault(int(parts[1][3:]), {"op": {}, "edge": {}})[parts[2]].setdefault(
          parts[3], ([], []))
      steps.append(int(record["step"]))
      values.append(float(value))
  if not series:
    raise ValueError("the metrics hold no architecture weights (arch/loc{i}/op/... or arch/loc{i}/edge/...); "
                     "only a search run logs them")
  return dict(sorted(series.items()))


def architecture_weights(records: Sequence[Mapping[str, object]], path: str, title: str = "") -> None:
  """Writes a PNG of the architecture weights against training step, one column per merge location.

  Top row: the softmax weight of each merge op (if the fusion ops were searched);
  bottom row: the sigmoid weight of each peer-attention edge (if attention was
  searched), with the 0.5 pruning threshold dashed.
  """
  series = architecture_weight_series(records)
  kinds = [k for k in ("op", "edge") if any(entry[k] for entry in series.values())]
  locations = sorted(series)
  fig, axes = plt.subplots(len(kinds), len(locations), figsize=(3.2 * len(locations), 2.8 * len(kinds)),
                           squeeze=False, sharex=True)
  for row, kind in enumerate(kinds):
    for column, location in enumerate(locations):
      ax = axes[row][column]
      for name, (steps, values) in series[location][kind].items():
        ax.plot(steps, values, label=name)
      if kind == "edge":
        ax.axhline(0.5, color="#888888", linestyle="--", linewidth=0.8)
      ax.set_ylim(0, 1)
      ax.set_title(f"L{location} {'merge op (softmax)' if kind == 'op' else 'attention edges (sigmoid)'}",
                   fontsize=9)
      ax.grid(alpha=0.3)
      if row == len(kinds) - 1:
        ax.set_xlabel("training step")
      ax.legend(fontsize=6, loc="best")
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  save_atomically(fig, path, dpi=100)


def frame_strips(fig: Any, grid: Any, strips: Sequence[tuple[str, np.ndarray, Callable[[int], str]]],
                 columns: int) -> None:
  """Row r of `grid` shows strip r: (row label, frames uint8 [T, S, S, 3], title of frame t).

  A strip longer than `columns` is sampled evenly, keeping its first and last frames.
  """
  for r, (label, frames, title) in enumerate(strips):
    picks = np.unique(np.linspace(0, len(frames) - 1, min(columns, len(frames))).astype(int))
    for col, t in enumerate(picks):
      ax = fig.add_subplot(grid[r, col])
      ax.imshow(frames[t], interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      if col == 0:
        ax.set_ylabel(label, fontsize=7)
      ax.set_title(title(int(t)), fontsize=7)


def save_atomically(fig: Any, path: str, dpi: int) -> None:
  """Writes the figure to `path` as PNG through visionary_jax.atomic (temp file, fsync, rename) and closes it."""
  try:
    atomic.write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
  finally:
    plt.close(fig)


def gripper_labels(step: Mapping[str, Any]) -> tuple[str, str]:
  """(state before the step, "o" or "c"; command taken, "open" or "close") of a recorded rollout step."""
  return ("c" if step["gripper_closed"] > 0.5 else "o",
          "close" if action_space.commands_close(step["action"]) else "open")


def rollout_frames(trials: Sequence[Mapping[str, Any]], path: str, columns: int = 10) -> None:
  """PNG of evaluation rollouts, a row per trial.

  Args:
    trials: {"trial": int, "success": bool, "steps": [{"image", "height", "gripper_closed", "action"}]}
      as experiments/rollout.py records them.
    columns: frames per row at most (sampled evenly over the episode).
  """
  if not trials:
    raise ValueError("no trials to draw")
  fig = plt.figure(figsize=(1.3 * columns, 1.75 * len(trials)))
  grid = fig.add_gridspec(len(trials), columns)
  strips = []
  for trial in trials:
    steps = trial["steps"]

    def title(t, steps=steps):
      state, command = gripper_labels(steps[t])
      return f"t={t} h={steps[t]['height']:.2f}{state}\n-> {command}"

    label = f"trial {trial['trial']}\n{'success' if trial['success'] else 'failure'}"
    strips.append((label, np.stack([s["image"] for s in steps]), title))
  frame_strips(fig, grid, strips, columns)
  fig.tight_layout()
  save_atomically(fig, path, dpi=90)


def rollout_gif(trials: Sequence[Mapping[str, Any]], path: str, scale: int = 4, frame_ms: int = 500) -> None:
  """Animated GIF of evaluation rollouts: the trials side by side, one GIF frame per environment step.

  A trial that has ended holds its last camera frame with a green (success) or
  red (failure) border; a running trial has a grey one.

  Args:
    trials: as `rollout_frames` takes them (each step's "image" uint8 [S, S, 3]).
    scale: pixels per camera pixel (nearest neighbour).
    frame_ms: display time of a GIF frame.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if not trials:
    raise ValueError("no trials to draw")
  border = max(scale, 2)
  colours = {None: (128, 128, 128), True: (40, 170, 60), False: (200, 40, 40)}
  length = max(len(t["steps"]) for t in trials)
  frames = []
  for k in range(length):
    tiles = []
    for trial in trials:
      steps = trial["steps"]
      image = np.asarray(steps[min(k, len(steps) - 1)]["image"], np.uint8)
      image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
      ended = bool(trial["success"]) if k >= len(steps) - 1 else None
      tiles.append(np.pad(image, ((border, border), (border, border), (0, 0)), constant_values=0)
                   + _border_mask(image.shape, border, colours[ended]))
    frames.append(Image.fromarray(np.concatenate(tiles, axis=1)))
  atomic.write(path, lambda f: frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:],
                                              duration=frame_ms, loop=0))


def _border_mask(shape: tuple[int, ...], border: int, colour: tuple[int, int, int]) -> np.ndarray:
  """uint8 [H + 2 border, W + 2 border, 3]: `colour` on the border, 0 inside."""
  mask = np.zeros((shape[0] + 2 * border, shape[1] + 2 * border, 3), np.uint8)
  mask[:border], mask[-border:], mask[:, :border], mask[:, -border:] = colour, colour, colour, colour
  return mask

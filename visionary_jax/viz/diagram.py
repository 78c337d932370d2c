"""A picture of an architecture in the spirit of the paper's Fig. 5, written as PNG.

The trunk runs left to right: image, the stages between merge locations, the
5 locations with their merge op, and the head. The action path runs below it
into every location whose op uses the action. Kept peer-attention edges are
dashed red arcs from their source (action, an earlier location, a dilated
branch) to the location they attend, labelled with their sigmoid weight when
the search's weights are given.
"""

from typing import Mapping

import matplotlib

matplotlib.use("Agg")
from matplotlib import patches  # pylint: disable=g-import-not-at-top
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

from visionary_jax import genotype as genotype_lib
from visionary_jax.viz import plots

_STAGES = ("stem + block 2a", "block 2b + pool", "block 3a", "block 3b + pool", "block 4")
_OP_COLOURS = {"noop": "#eeeeee", "add": "#9ecae1", "concat": "#a1d99b", "hadamard": "#fdae6b",
               "conv_filter": "#bcbddc"}


def draw(genotype: genotype_lib.Genotype, path: str, title: str = "",
         weights: Mapping[int, Mapping[str, Mapping[str, float]]] | None = None) -> None:
  """Writes a PNG of `genotype` to `path`.

  Args:
    genotype: the architecture.
    path: output PNG file.
    title: a line above the picture.
    weights: optional `genotype.architecture_weights(arch, space)`: the merge
      op's softmax weight and each kept edge's sigmoid weight are printed.
  """
  plots.save_atomically(figure(genotype, title, weights), path, dpi=110)


def figure(genotype: genotype_lib.Genotype, title: str = "",
           weights: Mapping[int, Mapping[str, Mapping[str, float]]] | None = None):
  """The matplotlib figure that `draw` saves (arguments as there)."""
  fig, ax = plt.subplots(figsize=(16, 5.6))
  ax.set_ylim(-3.4, 3.2)
  ax.axis("off")
  y = 0.0
  centres: dict[str, tuple[float, float]] = {}

  def box(x, yy, text, colour, width=1.1, height=0.8):
    ax.add_patch(patches.FancyBboxPatch((x - width / 2, yy - height / 2), width, height,
                                        boxstyle="round,pad=0.03", fc=colour, ec="#333333"))
    ax.text(x, yy, text, ha="center", va="center", fontsize=8)

  def arrow(start, end, colour="#333333", style="-", rad=0.0):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(
        arrowstyle="->", color=colour, linestyle=style, connectionstyle=f"arc3,rad={rad}"))

  box(0, y, "image", "#ffffff", width=0.8)
  x = 0.0
  for i in range(genotype_lib.NUM_LOCATIONS):
    arrow((x + 0.45, y), (x + 0.95, y))
    x += 1.55
    box(x, y, _STAGES[i].replace(" + ", "\n+ "), "#f7f7f7")
    arrow((x + 0.6, y), (x + 0.95, y))
    x += 1.35
    op = genotype.ops[i]
    label = f"L{i}\n{op}"
    if weights and "op_weights" in weights.get(i, {}):
      label += f"\n({weights[i]['op_weights'][op]:.2f})"
    box(x, y, label, _OP_COLOURS[op], width=0.8, height=0.9)
    centres[f"loc{i}"] = (x, y)
    if weights and "attention_weights" in weights.get(i, {}) and genotype.attention[i]:
      kept = "\n".join(f"{n} {weights[i]['attention_weights'][n]:.2f}" for n in genotype.attention[i])
      ax.text(x + 0.45, y - 0.5, kept, ha="left", va="top", fontsize=6, color="#cb181d", linespacing=1.1)
  arrow((x + 0.42, y), (x + 0.85, y))
  head_x, head_width = x + 1.4, 1.0
  box(head_x, y, "dense x2\nlogit\nQ = sigmoid", "#ffffff", width=head_width, height=1.0)
  ax.set_xlim(-0.6, head_x + head_width / 2 + 0.2)  # 0.2: the box's rounding pad and a margin

  action_xy = (1.2, -2.5)
  box(*action_xy, "action + state", "#fff7bc", width=1.3, height=0.6)
  centres["action"] = action_xy
  for i in range(genotype_lib.NUM_LOCATIONS):
    if genotype.ops[i] != "noop":
      cx, cy = centres[f"loc{i}"]
      arrow((action_xy[0] + 0.65, action_xy[1]), (cx, cy - 0.47))

  for k, rate in enumerate(genotype_lib.DILATION_RATES):
    name = genotype_lib.dilated_name(rate)
    if rate in genotype.dilation_rates:
      dx = centres["loc1"][0] - 1.35 + 1.4 * k
      centres[name] = (dx, 2.2)
      box(dx, 2.2, f"dilated conv\nrate {rate}", "#fcbba1", width=1.1, height=0.6)
      arrow((centres["loc1"][0] - 0.4, 0.47), (dx, 1.9))

  for i, sources in enumerate(genotype.attention):
    tx, ty = centres[f"loc{i}"]
    for source in sources:
      sx, sy = centres[source]
      if source == "action":
        arrow((sx + 0.3, sy + 0.3), (tx - 0.2, ty - 0.47), "#cb181d", "--", 0.15)
      elif source == f"loc{i}":
        arrow((tx - 0.2, ty + 0.47), (tx + 0.1, ty + 0.47), "#cb181d", "--", -1.5)
      elif source.startswith("loc"):
        arrow((sx + 0.1, sy + 0.47), (tx - 0.1, ty + 0.47), "#cb181d", "--", -0.35)
      else:
        arrow((sx, sy - 0.3), (tx, ty + 0.47), "#cb181d", "--", 0.1)

  ax.text(-0.5, 3.1, title or "architecture", fontsize=10, va="top")
  edges = ("kept peer-attention edges (sigmoid weight > 0.5, listed under each location)" if weights
           else "the genotype's peer-attention edges")
  ax.text(-0.5, -3.3, f"dashed red: {edges}; black arrows from the action: locations whose merge op uses it",
          fontsize=8)
  fig.tight_layout()
  return fig

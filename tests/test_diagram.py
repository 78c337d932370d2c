"""The architecture picture is a real PNG for every kind of genotype."""

import matplotlib.image
import matplotlib.pyplot
import pytest

import arch_fixtures
from visionary_jax import genotype as G
from visionary_jax.viz import diagram


@pytest.mark.parametrize("genotype", [
    G.BASELINE,
    G.Genotype(ops=("noop", "conv_filter", "hadamard", "concat", "add"),
               attention=((), ("action", "dilated4"), ("loc0", "loc2"), (), ("action", "loc3", "dilated2")))])
@pytest.mark.parametrize("with_weights", [True, False])  # a search's derivation; an evolution's genotype
def test_draw_writes_png(tmp_path, genotype, with_weights):
  path = str(tmp_path / "arch.png")
  weights = G.architecture_weights(arch_fixtures.one_hot_arch(genotype, magnitude=2.0)) if with_weights else None
  diagram.draw(genotype, path, "test", weights)
  pixels = matplotlib.image.imread(path)
  assert pixels.shape[0] > 300 and pixels.shape[1] > 1000
  assert pixels.std() > 0.05  # not a blank canvas


@pytest.mark.parametrize("genotype", [G.BASELINE, G.Genotype(
    ops=("conv_filter",) * 5, attention=(("action",), ("loc0", "dilated2", "dilated4"), (), (), ("loc4",)))])
def test_every_box_lies_inside_the_picture(genotype):
  fig = diagram.figure(genotype, "test", G.architecture_weights(arch_fixtures.one_hot_arch(genotype, magnitude=2.0)))
  try:
    fig.canvas.draw()
    ax = fig.axes[0]
    frame = ax.get_window_extent()
    boxes = [patch.get_window_extent() for patch in ax.patches if patch.get_width() > 0]
    assert len(boxes) >= 12  # image, 5 stages, 5 locations, head, action (+ dilated convs)
    for box in boxes:
      assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, box
  finally:
    matplotlib.pyplot.close(fig)

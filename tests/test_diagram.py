"""The architecture picture is a real PNG for every kind of genotype."""

import matplotlib.image
import pytest

from visionary_jax import diagram
from visionary_jax import genotype as G


@pytest.mark.parametrize("genotype", [
    G.BASELINE,
    G.Genotype(ops=("noop", "conv_filter", "hadamard", "concat", "add"),
               attention=((), ("action", "dilated4"), ("loc0", "loc2"), (), ("action", "loc3", "dilated2")))])
@pytest.mark.parametrize("with_weights", [True, False])  # a search's derivation; an evolution's genotype
def test_draw_writes_png(tmp_path, genotype, with_weights):
  path = str(tmp_path / "arch.png")
  weights = G.architecture_weights(G.one_hot_arch(genotype, magnitude=2.0)) if with_weights else None
  diagram.draw(genotype, path, "test", weights)
  pixels = matplotlib.image.imread(path)
  assert pixels.shape[0] > 300 and pixels.shape[1] > 1000
  assert pixels.std() > 0.05  # not a blank canvas

"""FLOPs from XLA's cost analysis against a hand count of the baseline's convolutions."""

import pytest

from experiments.configs import base
from visionary_jax import genotype as G
from visionary_jax.nets import flops
from visionary_jax.nets import qnetwork


def _taps(n_in: int, n_out: int, kernel: int, stride: int, dilation: int, pad_before: int) -> int:
  """Kernel taps that land inside the input, summed over output positions of one axis."""
  return sum(1 for o in range(n_out) for t in range(kernel) if 0 <= o * stride + t * dilation - pad_before < n_in)


def _conv_flops(n_in, kernel, c_in, c_out, stride=1, padding="SAME"):
  if padding == "SAME":
    n_out = -(-n_in // stride)
    pad = max((n_out - 1) * stride + kernel - n_in, 0) // 2
  else:
    n_out, pad = (n_in - kernel) // stride + 1, 0
  return 2 * _taps(n_in, n_out, kernel, stride, 1, pad) ** 2 * c_in * c_out, n_out


@pytest.mark.slow
def test_baseline_paper_flops_match_hand_count():
  spec = qnetwork.NetworkSpec.from_config(base.network("paper"))
  c = spec.channels
  total, n = _conv_flops(472, 6, 3, c, stride=2)
  n //= 3
  for _ in range(6):
    f, n = _conv_flops(n, 5, c, c)
    total += f
  n //= 3
  total += 2 * 256 * c  # the add op's projection of the action embedding
  for _ in range(6):
    f, n = _conv_flops(n, 3, c, c)
    total += f
  n //= 2
  for _ in range(3):
    f, n = _conv_flops(n, 3, c, c, padding="VALID")
    total += f
  total += 2 * (n * n * c * 64 + 64 * 64 + 64) + 2 * 9 * 256
  counted = flops.forward_flops_per_sample(qnetwork.QNetwork(spec, G.BASELINE))
  # Convolutions and dense layers are all but ~1 % of the work; the rest is norms, ReLUs, pools.
  assert total <= counted <= 1.01 * total, (counted, total)


def test_search_costs_more_than_derived_more_than_base(smoke_spec):
  derived = G.Genotype(ops=("noop", "concat", "noop", "hadamard", "noop"), attention=((), ("action",), (), (), ()))
  base_flops, derived_flops, search_flops = (
      flops.forward_flops_per_sample(qnetwork.QNetwork(smoke_spec, a)) for a in (G.BASELINE, derived, G.SearchSpace()))
  assert base_flops < derived_flops < search_flops


def test_flops_are_per_sample(smoke_spec):
  net = qnetwork.QNetwork(smoke_spec, G.BASELINE)
  assert flops.forward_flops_per_sample(net, batch=4) == pytest.approx(flops.forward_flops_per_sample(net), rel=1e-3)

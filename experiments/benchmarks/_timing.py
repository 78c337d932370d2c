"""Timing helpers shared by the benchmark suites."""

import statistics
import time
from typing import Callable, Mapping

import jax
import jax.numpy as jnp


def time_interleaved(fns: Mapping[str, Callable[[], object]], rounds: int, warmup: int = 2) -> dict[str, float]:
  """Median seconds per call of each zero-argument fn, calls interleaved round by round.

  Interleaving puts every fn under the same machine conditions, so their
  ratios stay meaningful when the machine's speed drifts.
  """
  for fn in fns.values():
    for _ in range(warmup):
      jax.block_until_ready(fn())
  samples: dict[str, list[float]] = {name: [] for name in fns}
  for _ in range(rounds):
    for name, fn in fns.items():
      start = time.perf_counter()
      jax.block_until_ready(fn())
      samples[name].append(time.perf_counter() - start)
  return {name: statistics.median(s) for name, s in samples.items()}


def matmul_flops_per_s(n: int = 2048, rounds: int = 10) -> float:
  """Achieved FLOP/s of a jitted dense float32 [n, n] @ [n, n] matmul on the default device."""
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
  b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  seconds = time_interleaved({"matmul": lambda: matmul(a, b)}, rounds)["matmul"]
  return 2.0 * n**3 / seconds

"""Regularized evolution finds a known best genotype of a toy fitness, within a budget."""

import numpy as np
import pytest

from visionary_jax import genotype as G
from visionary_jax.search import evolution

TARGET = G.Genotype(ops=("noop", "conv_filter", "hadamard", "concat", "add"),
                    attention=((), ("action", "dilated4"), ("loc0",), (), ("action", "loc3")))


def _agreement(genotype: G.Genotype) -> float:
  """Locations with the target's op plus attention decisions that agree with the target's."""
  score = sum(a == b for a, b in zip(genotype.ops, TARGET.ops))
  for i in range(G.NUM_LOCATIONS):
    for c in G.attention_candidates(i):
      score += (c in genotype.attention[i]) == (c in TARGET.attention[i])
  return float(score)


def test_finds_the_known_best_genotype():
  history = evolution.regularized_evolution(_agreement, population_size=30, sample_size=10, cycles=1500, seed=0)
  assert len(history) == 1530
  assert evolution.best(history).genotype == TARGET
  # Better than random search with the same number of evaluations.
  rng = np.random.default_rng(0)
  random_best = max(_agreement(evolution.random_genotype(rng)) for _ in range(1530))
  assert evolution.best(history).fitness > random_best


def test_is_deterministic_for_a_seed():
  run = lambda seed: [e.genotype for e in evolution.regularized_evolution(_agreement, 8, 3, 30, seed)]
  assert run(1) == run(1)
  assert run(1) != run(2)


def test_mutation_changes_exactly_one_decision():
  rng = np.random.default_rng(0)
  for _ in range(200):
    child = evolution.mutate(TARGET, rng)
    assert _agreement(child) == _agreement(TARGET) - 1


def test_initial_population_starts_with_given_genotypes():
  history = evolution.regularized_evolution(_agreement, 4, 2, 0, 0, initial=(G.BASELINE,))
  assert history[0].genotype == G.BASELINE and len(history) == 4


def test_bad_settings():
  with pytest.raises(ValueError, match="sample_size <= population_size"):
    evolution.regularized_evolution(_agreement, 3, 5, 10, 0)

"""Regularized evolution over genotypes (Real et al. 2019), the paper's evolutionary baseline (Table II).

A population of genotypes is kept as a queue. Each cycle samples `sample_size`
members at random, mutates the fittest of them (one merge op changed, or one
attention edge toggled, in the same search space the one-shot search uses),
evaluates the child, appends it and removes the oldest member. The fitness is
any callable genotype -> float (larger is better): in the experiments, a short
training run followed by an evaluation or a held-out Bellman error.
"""

import dataclasses
from typing import Callable

import numpy as np

from visionary_jax import genotype as genotype_lib


@dataclasses.dataclass(frozen=True)
class Evaluated:
  genotype: genotype_lib.Genotype
  fitness: float
  cycle: int  # 0 .. population_size - 1 for the initial population


def random_genotype(rng: np.random.Generator) -> genotype_lib.Genotype:
  """A uniformly random valid genotype: each op uniform, each edge kept with probability 1/2."""
  while True:
    ops = tuple(str(rng.choice(genotype_lib.OPS)) for _ in range(genotype_lib.NUM_LOCATIONS))
    attention = tuple(tuple(c for c in genotype_lib.attention_candidates(i) if rng.random() < 0.5)
                      for i in range(genotype_lib.NUM_LOCATIONS))
    try:
      return genotype_lib.Genotype(ops, attention)
    except ValueError:  # a genotype that never reads the action: draw again
      continue


def mutate(parent: genotype_lib.Genotype, rng: np.random.Generator) -> genotype_lib.Genotype:
  """The parent with one merge op replaced by another, or one attention edge toggled."""
  while True:
    location = int(rng.integers(genotype_lib.NUM_LOCATIONS))
    ops, attention = list(parent.ops), [list(a) for a in parent.attention]
    if rng.random() < 0.5:
      ops[location] = str(rng.choice([op for op in genotype_lib.OPS if op != parent.ops[location]]))
    else:
      edge = str(rng.choice(genotype_lib.attention_candidates(location)))
      if edge in attention[location]:
        attention[location].remove(edge)
      else:
        attention[location].append(edge)
    try:
      return genotype_lib.Genotype(tuple(ops), tuple(tuple(a) for a in attention))
    except ValueError:
      continue


def regularized_evolution(fitness: Callable[[genotype_lib.Genotype], float], population_size: int,
                          sample_size: int, cycles: int, seed: int,
                          initial: tuple[genotype_lib.Genotype, ...] = (),
                          progress: Callable[[Evaluated], None] | None = None) -> list[Evaluated]:
  """Runs the search; returns every evaluated genotype in order (population first, then children).

  Args:
    fitness: genotype -> score, larger is better; called population_size + cycles times.
    population_size: members kept alive.
    sample_size: members sampled per cycle to pick a parent from (tournament).
    cycles: children evaluated after the initial population.
    seed: seeds every random choice.
    initial: genotypes placed first in the initial population (e.g. the baseline); the rest are random.
    progress: called with each evaluation.
  """
  if not 1 <= sample_size <= population_size:
    raise ValueError(f"evolution needs 1 <= sample_size <= population_size, got {sample_size} and {population_size}")
  if cycles < 0:
    raise ValueError(f"evolution cycles must be >= 0, got {cycles}")
  rng = np.random.default_rng(seed)
  history: list[Evaluated] = []

  def evaluate(genotype: genotype_lib.Genotype, cycle: int) -> Evaluated:
    item = Evaluated(genotype, float(fitness(genotype)), cycle)
    history.append(item)
    if progress:
      progress(item)
    return item

  population = [evaluate(g, k) for k, g in enumerate(initial[:population_size])]
  while len(population) < population_size:
    population.append(evaluate(random_genotype(rng), len(population)))
  for cycle in range(population_size, population_size + cycles):
    contenders = rng.choice(len(population), size=sample_size, replace=False)
    parent = max((population[k] for k in contenders), key=lambda e: e.fitness)
    population.append(evaluate(mutate(parent.genotype, rng), cycle))
    population.pop(0)
  return history


def best(history: list[Evaluated]) -> Evaluated:
  """The fittest genotype evaluated (the earliest among ties)."""
  return max(history, key=lambda e: e.fitness)

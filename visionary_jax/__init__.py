"""Visionary in JAX/Flax: differentiable architecture search for vision-based robot Q-learning.

The public API (imported on first use, so `import visionary_jax` stays cheap):
  QNetwork       the Q-network module (visionary_jax.nets.qnetwork)
  Genotype       a discrete architecture; BASELINE is QT-Opt's network (visionary_jax.genotype)
  SearchSpace    what the one-shot search network searches (visionary_jax.genotype)
  load_policy    an exported network as a CEM policy (visionary_jax.export)
  make_env       a PyBullet task at a config preset (visionary_jax.envs)

Importing the package registers the gymnasium ids `visionary_jax/Grasping-v0` and
`visionary_jax/Stacking-v0`, whose keyword arguments are `make_env`'s:
  gymnasium.make("visionary_jax/Grasping-v0", preset="smoke")
"""

import importlib

import gymnasium

__version__ = "0.1.0"

_PUBLIC = {
    "QNetwork": "visionary_jax.nets.qnetwork",
    "Genotype": "visionary_jax.genotype",
    "BASELINE": "visionary_jax.genotype",
    "SearchSpace": "visionary_jax.genotype",
    "load_policy": "visionary_jax.export",
    "make_env": "visionary_jax.envs",
}
__all__ = list(_PUBLIC)

for _task in ("grasping", "stacking"):
  gymnasium.register(f"visionary_jax/{_task.capitalize()}-v0", entry_point="visionary_jax.envs:make_env",
                     kwargs={"task": _task})


def __getattr__(name: str):
  if name in _PUBLIC:
    return getattr(importlib.import_module(_PUBLIC[name]), name)
  raise AttributeError(f"module 'visionary_jax' has no attribute {name!r}")


def __dir__() -> list[str]:
  return sorted(list(globals()) + __all__)

"""Visionary in JAX/Flax: differentiable architecture search for vision-based robot Q-learning."""

__version__ = "0.1.0"

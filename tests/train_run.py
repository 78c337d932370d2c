"""Subprocess helper: a smoke training run on a synthetic dataset, printing one line per step.

Usage: python tests/train_run.py DATASET WORKDIR OUT.npz [--poison=K]
Trains the baseline at the smoke preset for 8 steps (checkpoint every 2) and
writes the final train state's leaves to OUT.npz. --poison=K makes the reward
of batch K (0-based) NaN.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # pylint: disable=g-import-not-at-top

import episode_fixtures
from experiments.configs import grasping
from visionary_jax import checkpoints
from visionary_jax import genotype as G
from visionary_jax.episodes import dataset as dataset_lib
from visionary_jax.episodes import sampler as sampler_lib
from visionary_jax.qtopt import trainer

STEPS = 8


def config():
  c = grasping.get_config("smoke")
  c.train.steps = STEPS
  c.train.checkpoint_every = 2
  c.train.log_every = 1
  return c


def make_dataset(directory: str):
  episode_fixtures.write_dataset(directory, num_episodes=12, per_shard=4, image_size=32)


class Poisoned:
  """A sampler whose batch `k` has NaN rewards."""

  def __init__(self, inner, k):
    self.inner, self.k = inner, k
    self.bootstrap_per_device = inner.bootstrap_per_device

  def __next__(self):
    position = self.inner.state()["position"]
    batch = next(self.inner)
    if position == self.k:
      batch = dict(batch, reward=np.full_like(batch["reward"], np.nan))
    return batch

  def state(self):
    return self.inner.state()

  def restore(self, state):
    self.inner.restore(state)


def main(argv):
  dataset_dir, workdir, out = argv[1:4]
  poison = int(argv[4].split("=")[1]) if len(argv) > 4 else None
  c = config()
  if not os.path.isdir(dataset_dir):
    os.makedirs(dataset_dir)
    make_dataset(dataset_dir)
  data = dataset_lib.Dataset(dataset_dir, image_size=c.network.image_size)
  batches = sampler_lib.from_config(data, c.replay, seed=c.seed, num_devices=1)
  if poison is not None:
    batches = Poisoned(batches, poison)
  state = trainer.train(c, workdir, G.BASELINE, batches, log=lambda line: print(line, flush=True))
  np.savez(out, **checkpoints.flatten(state))


if __name__ == "__main__":
  main(sys.argv)

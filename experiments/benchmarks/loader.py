"""Replay loader speed at the `cpu` preset against the learner's consumption.

Measures the sampler's transitions/s (prefetch thread on, batches of
config.replay.batch_size reshaped for the local devices) over an in-memory
dataset and over the same dataset memory-mapped.

Dataset: `BENCHMARK_LOADER_DATA=DIR` (a collector workdir) if set, else
synthetic shards with the `cpu` preset's shapes (64x64 images, 9-step episodes,
2000 episodes); sampling cost does not depend on pixel values.

`loader_over_training` = sampler transitions/s / (batch_size / learner step s),
where the learner step is one QT-Opt update of the baseline (Bellman target
with CEM on the target networks + gradient step, timed as in `--suite=train`):
the fastest of our networks, so the ratio is the smallest any of them sees.
"""

import os
import tempfile
import time

import numpy as np

from experiments.benchmarks import _timing
from experiments.benchmarks import train as train_benchmark
from experiments.configs import grasping as grasping_config
from visionary_jax import action_space
from visionary_jax import genotype
from visionary_jax.episodes import collect as collect_lib
from visionary_jax.episodes import dataset as dataset_lib
from visionary_jax.episodes import sampler as sampler_lib
from visionary_jax.episodes import shards


def _synthetic(directory: str, image_size: int, episodes: int = 2000, length: int = 9,
               per_shard: int = 100):
  rng = np.random.default_rng(0)
  for start in range(0, episodes, per_shard):
    batch = []
    for i in range(start, min(start + per_shard, episodes)):
      term = np.zeros(length, bool)
      term[-1] = True
      batch.append(shards.Episode(
          image=rng.integers(0, 256, (length + 1, image_size, image_size, 3), np.uint8),
          gripper_closed=np.zeros(length + 1, np.float32),
          height=rng.uniform(0, 0.3, length + 1).astype(np.float32),
          action=rng.uniform(-1, 1, (length, action_space.ACTION_DIM)).astype(np.float32),
          reward=np.full(length, -0.01, np.float32), terminated=term,
          truncated=np.zeros(length, bool), index=i, seed=i, success=False, scripted=False,
          physics_failure=False))
    shards.write_shard(directory, batch, "grasping")


def _sampler_rate(data, batch_size, num_devices, seconds=8.0):
  s = sampler_lib.ReplaySampler(data, batch_size, num_devices, seed=0, prefetch=4)
  next(s)
  n, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    next(s)
    n += 1
  rate = n * batch_size / (time.perf_counter() - start)
  s.close()
  return rate


def _learner_step_seconds(config, batch) -> float:
  """Seconds of one QT-Opt update of the baseline at the config's batch (target + gradient step)."""
  grad, target = train_benchmark.step_functions(config, genotype.BASELINE, batch)
  seconds = _timing.time_interleaved({"grad": grad, "target": target}, rounds=5)
  return seconds["grad"] + seconds["target"]


def run() -> dict:
  config = grasping_config.get_config("cpu")
  batch_size = int(config.replay.batch_size)
  image_size = int(config.env.image_size)
  result = {"batch_size": batch_size, "image_size": image_size}
  with tempfile.TemporaryDirectory(prefix="bench-loader-") as tmp:
    directory = os.environ.get("BENCHMARK_LOADER_DATA")
    if directory:
      directory = os.path.join(directory, collect_lib.EPISODES_DIR)
      result["dataset"] = directory
    else:
      directory = tmp
      _synthetic(directory, image_size)
      result["dataset"] = "synthetic, cpu preset shapes"
    start = time.perf_counter()
    data = dataset_lib.Dataset(directory, image_size, mmap=False)
    result["load_seconds"] = time.perf_counter() - start
    result["transitions"] = int(data.num_transitions)
    result["sampler_transitions_per_s"] = _sampler_rate(data, batch_size, 1)
    mapped = dataset_lib.Dataset(directory, image_size, mmap=True, verify_checksum=False)
    result["sampler_memmap_transitions_per_s"] = _sampler_rate(mapped, batch_size, 1)
    batch = sampler_lib.ReplaySampler(data, batch_size, 1, prefetch=0).batch(0)

  step_seconds = _learner_step_seconds(config, {k: v[0] for k, v in batch.items()})
  result["train_step_source"] = "QT-Opt update of the baseline: Bellman target (CEM) + gradient step"
  result["train_step_seconds"] = step_seconds
  result["learner_transitions_per_s"] = batch_size / step_seconds
  result["loader_over_training"] = result["sampler_transitions_per_s"] / (batch_size / step_seconds)
  return result

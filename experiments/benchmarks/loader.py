"""Replay loader speed at the `cpu` preset against the learner's consumption.

Measures the sampler's transitions/s (prefetch thread on, batches of
config.replay.batch_size reshaped for the local devices) over an in-memory
dataset and over the same dataset memory-mapped.

Dataset: `BENCHMARK_LOADER_DATA=DIR` (a collector workdir) if set, else
synthetic shards with the `cpu` preset's shapes (64x64 images, 9-step episodes,
2000 episodes); sampling cost does not depend on pixel values.

`loader_over_training` = sampler transitions/s / (batch_size / train step s).
The train step time comes, in this order of preference, from
  1. visionary_jax.nets, if importable: a jitted gradient step (sigmoid
     cross-entropy, SGD) of the search network at the `cpu` preset batch. It
     lacks QT-Opt's CEM target and target networks, so it under-estimates the
     real step and the ratio it gives is a lower bound;
  2. the environment variable VISIONARY_TRAIN_STEP_SECONDS.
The output's `train_step_source` says which was used; without either,
`loader_over_training` is null.
"""

import os
import tempfile
import time

import numpy as np

from experiments.configs import grasping as grasping_config
from visionary_jax import action_space
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


def _nets_train_step(config, batch) -> float:
  """Seconds per jitted gradient step of visionary_jax.nets' search network (raises if absent)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from visionary_jax import genotype  # pylint: disable=g-import-not-at-top
  from visionary_jax.nets import qnetwork  # pylint: disable=g-import-not-at-top

  network = qnetwork.build(config.network, genotype.SearchSpace())
  variables = qnetwork.init_variables(network, jax.random.PRNGKey(0), batch=2)
  flat = lambda x: x.reshape((-1,) + x.shape[2:])
  image = jnp.asarray(flat(batch["image"]))
  state_action = jnp.asarray(action_space.state_action(
      flat(batch["action"]), flat(batch["gripper_closed"]), flat(batch["height"])))
  target = jnp.asarray(np.clip(flat(batch["reward"]), 0.0, 1.0))

  def loss(v):
    logits = network.apply(v, image, state_action)
    return jnp.mean(jnp.maximum(logits, 0) - logits * target + jnp.log1p(jnp.exp(-jnp.abs(logits))))

  @jax.jit
  def step(v):
    value, grads = jax.value_and_grad(loss)(v)
    return jax.tree_util.tree_map(lambda p, g: p - 1e-3 * g, v, grads), value

  variables, value = step(variables)
  jax.block_until_ready(value)
  times = []
  for _ in range(5):
    start = time.perf_counter()
    variables, value = step(variables)
    jax.block_until_ready(value)
    times.append(time.perf_counter() - start)
  return float(np.median(times))


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

  step_seconds, source = None, None
  try:
    step_seconds = _nets_train_step(config, batch)
    source = "visionary_jax.nets search network: jitted gradient step, no CEM (step time is a lower bound)"
  except ImportError as e:
    source = f"visionary_jax.nets not importable ({e})"
  except Exception as e:  # pylint: disable=broad-except
    source = f"visionary_jax.nets step failed ({type(e).__name__}: {e})"
  if step_seconds is None and os.environ.get("VISIONARY_TRAIN_STEP_SECONDS"):
    step_seconds = float(os.environ["VISIONARY_TRAIN_STEP_SECONDS"])
    source += "; used VISIONARY_TRAIN_STEP_SECONDS"
  result["train_step_source"] = source
  result["train_step_seconds"] = step_seconds
  if step_seconds is None:
    result["learner_transitions_per_s"] = None
    result["loader_over_training"] = None
  else:
    result["learner_transitions_per_s"] = batch_size / step_seconds
    result["loader_over_training"] = result["sampler_transitions_per_s"] / (batch_size / step_seconds)
  return result

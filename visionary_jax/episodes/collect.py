"""Offline data collection with local worker processes and cluster job arrays.

Episode i of a dataset (0 <= i < num_episodes) is reset with seed
`episode_seed(config.seed, i)` and its policy draws from
`np.random.default_rng([config.seed, i])`, so an episode is the same whichever
worker collects it. Episodes are grouped in blocks of `episodes_per_shard`;
block b belongs to global worker b % G, where G = num_workers (job array size)
x local_workers and global worker = worker_index x local_workers + local id.
Workers therefore write disjoint shard names into one shared directory
without coordinating. A rerun lists the complete shards and collects only the
missing episode ranges, so it resumes without duplicating or dropping any.
"""

import dataclasses
import logging
import multiprocessing as mp
import os
import queue
import time
from typing import Any, Callable, Mapping

import numpy as np

from visionary_jax import envs
from visionary_jax.envs import policies
from visionary_jax.episodes import shards as shards_lib

EPISODES_DIR = "episodes"
# "export": an exported policy's CEM (collect.export_dir) with the config's noise; appended to a dataset
# by rerunning with a larger --num_episodes, it adds the data where a trained policy goes.
POLICIES = (*policies.POLICIES, "export")


def episode_seed(config_seed: int, index: int) -> int:
  """The env.reset seed of global episode `index`: unique per (config seed, index)."""
  if not 0 <= index < 2**32 or not 0 <= config_seed < 2**31:
    raise ValueError(f"episode index {index} or config seed {config_seed} out of range")
  return (int(config_seed) << 32) + int(index)


def run_episode(env, policy, config_seed: int, index: int) -> shards_lib.Episode:
  """Runs global episode `index` to its end and returns it."""
  seed = episode_seed(config_seed, index)
  observation, _ = env.reset(seed=seed)
  policy.reset(env, np.random.default_rng([config_seed, index]))
  frames = [observation]
  actions, rewards, terminated, truncated = [], [], [], []
  info = {}
  done = False
  while not done:
    action = np.asarray(policy(observation), np.float32)
    observation, reward, term, trunc, info = env.step(action)
    frames.append(observation)
    actions.append(action)
    rewards.append(reward)
    terminated.append(term)
    truncated.append(trunc)
    done = term or trunc
  return shards_lib.Episode(
      image=np.stack([f["image"] for f in frames]),
      gripper_closed=np.array([f["gripper_closed"][0] for f in frames], np.float32),
      height=np.array([f["height"][0] for f in frames], np.float32),
      action=np.stack(actions),
      reward=np.array(rewards, np.float32),
      terminated=np.array(terminated, bool),
      truncated=np.array(truncated, bool),
      index=index, seed=seed, success=bool(info.get("success", False)),
      scripted=bool(getattr(policy, "scripted", False)),
      physics_failure=bool(info.get("physics_failure")))


def missing_ranges(num_episodes: int, episodes_per_shard: int,
                   done: list[tuple[int, int]]) -> list[tuple[int, int]]:
  """Episode ranges [start, end) still to collect, each inside one block of the shard size."""
  if num_episodes < 1 or episodes_per_shard < 1:
    raise ValueError(f"num_episodes ({num_episodes}) and episodes_per_shard "
                     f"({episodes_per_shard}) must be >= 1")
  covered = np.zeros(num_episodes, bool)
  for start, end in done:
    covered[start:min(end, num_episodes)] = True
  ranges = []
  for block in range(0, num_episodes, episodes_per_shard):
    stop = min(block + episodes_per_shard, num_episodes)
    i = block
    while i < stop:
      if covered[i]:
        i += 1
        continue
      j = i
      while j < stop and not covered[j]:
        j += 1
      ranges.append((i, j))
      i = j
  return ranges


def owner(start: int, episodes_per_shard: int, num_global_workers: int) -> int:
  return (start // episodes_per_shard) % num_global_workers


def completed_ranges(directory: str) -> list[tuple[int, int]]:
  return [shards_lib.shard_range(p) for p in shards_lib.list_shards(directory)]


def check_existing(directory: str, task: str, config_seed: int, image_size: int,
                   camera_fov: float = shards_lib.LEGACY_CAMERA_FOV):
  """Refuses to resume into a directory holding another task's, seed's, image size's or camera's shards."""
  want = {"task": task, "config_seed": config_seed, "image_size": image_size,
          "camera_fov": float(camera_fov)}
  for side, meta in shards_lib.iter_sidecars(directory):
    have = {**{k: meta.get(k) for k in want}, "camera_fov": shards_lib.camera_fov(meta)}
    if have != want:
      raise ValueError(f"{side}: the workdir holds episodes with {have}, this run is {want}; "
                       "use another --workdir")


@dataclasses.dataclass
class WorkerSpec:
  """What one worker process needs; plain data so it crosses process boundaries."""
  task: str
  env_config: dict[str, Any]
  collect_config: dict[str, Any]
  seed: int
  directory: str
  ranges: list[tuple[int, int]]
  global_worker: int


class ExportScript:
  """An exported CEM policy in a script's place (collect.policy "export"): QT-Opt's on-policy round.

  Each episode reseeds the policy's CEM from the episode's generator, so an
  episode stays a function of (config, seed, index). `policies.Mixed` adds the
  config's translation noise and random actions around it.
  """

  def __init__(self, export_dir: str):
    from visionary_jax import export  # pylint: disable=g-import-not-at-top  (JAX only for this policy)
    self.policy = export.load_policy(export_dir)

  def reset(self, env, rng: np.random.Generator):
    del env
    self.policy.reseed(int(rng.integers(2**31)))

  def __call__(self, observation) -> np.ndarray:
    return np.array(self.policy(observation), np.float32)


def _make_policy(task: str, c: Mapping[str, Any]):
  if c["policy"] == "export":
    return policies.Mixed(ExportScript(c["export_dir"]), c["scripted_fraction"], c["noise"],
                          c["random_action_prob"])
  return policies.make(task, c["policy"], c["scripted_fraction"], c["noise"],
                       c["random_action_prob"], **{k: c[k] for k in policies.GRASPING_KNOBS})


def _clean_stale_temps(directory: str, ranges: list[tuple[int, int]]):
  """Removes temp files of this worker's own shards left by a killed run."""
  names = {shards_lib.shard_name(s, e) for s, e in ranges}
  names |= {n[:-len(".npz")] + ".json" for n in names}
  for entry in os.listdir(directory):
    if entry.startswith(".tmp-") and any(entry.startswith(f".tmp-{n}-") for n in names):
      os.remove(os.path.join(directory, entry))


def worker(spec: WorkerSpec, report: Callable[[tuple], None]):
  """Collects `spec.ranges`, one shard per range, reporting ("episode", success) as it goes."""
  _clean_stale_temps(spec.directory, spec.ranges)
  env = envs.make(spec.task, spec.env_config)
  policy = _make_policy(spec.task, spec.collect_config)
  try:
    for start, end in spec.ranges:
      episodes = []
      for index in range(start, end):
        try:
          episode = run_episode(env, policy, spec.seed, index)
        except Exception as e:  # pylint: disable=broad-except
          # A broken simulator state must not poison later episodes: rebuild and retry once.
          logging.warning("worker %d: episode %d raised %r; rebuilding the env", spec.global_worker,
                          index, e)
          env.close()
          env = envs.make(spec.task, spec.env_config)
          episode = run_episode(env, policy, spec.seed, index)
        episodes.append(episode)
        report(("episode", episode.success))
      shards_lib.write_shard(spec.directory, episodes, spec.task, spec.seed,
                             float(spec.env_config["camera_fov"]))
      report(("shard", start, end))
  finally:
    env.close()


def _worker_process(spec: WorkerSpec, progress: mp.Queue, parent: int):
  def report(msg):
    if os.getppid() != parent:  # the launcher was killed: stop instead of running orphaned
      raise SystemExit(f"worker {spec.global_worker}: launcher {parent} is gone")
    progress.put(msg)

  try:
    worker(spec, report)
    progress.put(("done", spec.global_worker))
  except BaseException as e:  # pylint: disable=broad-except
    progress.put(("error", spec.global_worker, f"{type(e).__name__}: {e}"))
    raise


def collect(config, workdir: str, num_episodes: int | None = None, local_workers: int | None = None,
            worker_index: int = 0, num_workers: int = 1, progress_every: float = 5.0,
            print_fn: Callable[[str], None] = print) -> dict[str, Any]:
  """Collects this machine's share of the dataset into `workdir/episodes`; returns counts.

  Args:
    config: a task config (experiments/configs/grasping.py or stacking.py).
    workdir: run directory; shards go to `workdir/episodes/`.
    num_episodes: dataset size (default config.collect.num_episodes).
    local_workers: processes on this machine (default config.collect.local_workers).
    worker_index: this machine's index in a job array, in [0, num_workers).
    num_workers: size of the job array.
    progress_every: seconds between progress lines.
    print_fn: where progress lines go.
  """
  from visionary_jax import metrics  # pylint: disable=g-import-not-at-top  (JAX stays out of the workers)
  c = config.collect
  num_episodes = int(c.num_episodes if num_episodes is None else num_episodes)
  local_workers = int(c.local_workers if local_workers is None else local_workers)
  if num_episodes < 1:
    raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
  if local_workers < 1:
    raise ValueError(f"local_workers must be >= 1, got {local_workers}")
  if not 0 <= worker_index < num_workers:
    raise ValueError(f"worker_index must be in [0, num_workers={num_workers}), got {worker_index}")
  if c.policy not in POLICIES:
    raise ValueError(f"config field collect.policy must be one of {POLICIES}, got {c.policy!r}")
  if (c.policy == "export") != bool(c.get("export_dir")):
    raise ValueError("config field collect.export_dir must name an export directory exactly when "
                     f"collect.policy is 'export' (policy {c.policy!r}, export_dir {c.get('export_dir')!r})")
  if c.policy == "export":
    from visionary_jax import export  # pylint: disable=g-import-not-at-top
    exported = export.read_config(c.export_dir, ("network", "cem"))  # a bad export fails here, not in a worker
    if exported.network.image_size != config.env.image_size:
      raise ValueError(f"collect.export_dir {c.export_dir}: its network sees {exported.network.image_size} px "
                       f"images, env.image_size is {config.env.image_size}")
  directory = os.path.join(workdir, EPISODES_DIR)
  os.makedirs(directory, exist_ok=True)
  per_shard = int(c.episodes_per_shard)
  num_global = num_workers * local_workers
  check_existing(directory, config.task, int(config.seed), int(config.env.image_size),
                 float(config.env.camera_fov))
  todo = missing_ranges(num_episodes, per_shard, completed_ranges(directory))
  specs = []
  for local in range(local_workers):
    g = worker_index * local_workers + local
    mine = [r for r in todo if owner(r[0], per_shard, num_global) == g]
    if mine:
      specs.append(WorkerSpec(config.task, config.env.to_dict(), c.to_dict(), int(config.seed),
                              directory, mine, g))
  target = sum(e - s for spec in specs for s, e in spec.ranges)
  already = num_episodes - sum(e - s for s, e in todo)
  print_fn(f"collect: {config.task} -> {directory}: {already}/{num_episodes} episodes present, "
           f"{target} to collect here with {len(specs)} process(es) "
           f"(worker {worker_index} of {num_workers})")
  done, successes, start = 0, 0, time.time()
  first = last = None  # arrival times of the first and last episode reports
  if specs:
    ctx = mp.get_context("spawn")
    progress = ctx.Queue()
    procs = [ctx.Process(target=_worker_process, args=(spec, progress, os.getpid()), daemon=True)
             for spec in specs]
    for p in procs:
      p.start()
    finished, last_line = 0, time.time()
    try:
      while finished < len(procs):
        try:
          msg = progress.get(timeout=0.5)
        except queue.Empty:
          dead = [p for p in procs if p.exitcode not in (None, 0)]
          if dead:
            raise RuntimeError(f"collect: worker process {dead[0].pid} died with exit code "
                               f"{dead[0].exitcode}")
          msg = None
        if msg is not None:
          if msg[0] == "episode":
            done += 1
            successes += int(msg[1])
            last = time.time()
            first = first or last
          elif msg[0] == "done":
            finished += 1
          elif msg[0] == "error":
            raise RuntimeError(f"collect: worker {msg[1]} failed: {msg[2]}")
        now = time.time()
        if now - last_line >= progress_every or (finished == len(procs) and msg is not None):
          last_line = now
          rate = done / max(now - start, 1e-9)
          eta = (target - done) / rate if rate > 0 else float("inf")
          print_fn(f"collect: {already + done}/{num_episodes} episodes  {rate:.2f} episodes/s  "
                   f"success {successes / max(done, 1):.3f}  ETA {metrics.format_duration(eta)}")
    finally:
      for p in procs:
        if p.is_alive():
          p.terminate()
        p.join()
  result = {"directory": directory, "collected": done, "successes": successes,
            "seconds": time.time() - start, "num_episodes": num_episodes,
            # Rate once every process is running (excludes process start-up and imports).
            "steady_episodes_per_s": (done - 1) / (last - first) if done > 1 and last > first
                                     else float("nan")}
  remaining = missing_ranges(num_episodes, per_shard, completed_ranges(directory))
  result["complete"] = not remaining
  if not remaining:
    from visionary_jax.episodes import summary  # pylint: disable=g-import-not-at-top
    shards_lib.write_manifest(directory, {"task": config.task, "seed": int(config.seed),
                                          "num_episodes": num_episodes})
    result["summary"] = summary.write_summary(workdir, config.task, int(config.env.image_size))
    print_fn(f"collect: dataset complete: {result['summary']['episodes']} episodes, success "
             f"fraction {result['summary']['success_fraction']:.3f}; summary in {workdir}")
  return result


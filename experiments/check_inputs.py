"""Damaged files and bad flags tried against the launchers; writes what the user sees as a Markdown table.

  python -m experiments.check_inputs [--output=docs/reliability.md] [--cases=unknown_field,unknown_preset]

Builds every input in a temp dir at the `smoke` preset: a synthetic dataset
(12 episodes of 32x32 frames, no simulator), a 9-episode collected dataset (3
shards with a manifest), a 6-step training run with its checkpoints and export,
then damages copies of them and runs each launcher as a subprocess. A row gives
the command (temp paths shown as $TMP), the exit status (2: usage, 1: data,
experiments/launcher.py), the number of stderr lines (a traceback or a help dump
shows here) and the line the user reads: the last stderr line of a failure, or
the case's line of a run that went on.
"""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Callable

from absl import app
from absl import flags
import numpy as np

from experiments import launcher
from experiments.configs import grasping
from visionary_jax import atomic
from visionary_jax import genotype as genotype_lib
from visionary_jax.episodes import shards

_OUTPUT = flags.DEFINE_string("output", None, "Markdown file for the table (default: print it).")
_CASES = flags.DEFINE_list("cases", None, "Names of the cases to run (default: all).")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "--config=experiments/configs/grasping.py:smoke"
TRAIN_STEPS = 6  # the smoke preset's, checkpoints every 2 steps
TIMEOUT = 600  # seconds a launcher may take before the case counts as hanging


@dataclasses.dataclass
class Result:
  command: list[str]
  status: int
  stdout: str
  stderr: str
  line: str = ""  # overrides the shown line (a case that checks more than the exit)


class Inputs:
  """The undamaged inputs, each built on first use under `tmp`."""

  def __init__(self, tmp: str):
    self.tmp = tmp
    self._built = {}

  def path(self, *parts: str) -> str:
    return os.path.join(self.tmp, *parts)

  def copy(self, source: str, name: str) -> str:
    target = self.path(name)
    shutil.copytree(source, target)
    return target

  def _once(self, key: str, build: Callable[[], str]) -> str:
    if key not in self._built:
      self._built[key] = build()
    return self._built[key]

  @property
  def synthetic(self) -> str:
    """episodes/ of 12 synthetic episodes in 3 shards."""
    return self._once("synthetic", lambda: write_synthetic(self.path("synthetic"), 12))

  @property
  def collected(self) -> str:
    """A collect workdir of 9 episodes (3 shards and manifest.json in its episodes/)."""
    def build():
      workdir = self.path("collected")
      run_launcher("collect", CONFIG, f"--workdir={workdir}", "--num_episodes=9", check=True)
      return workdir
    return self._once("collected", build)

  @property
  def trained(self) -> str:
    """A finished 6-step training run (checkpoints at steps 2, 4, 6, export/)."""
    def build():
      workdir = self.path("trained")
      run_launcher("train", CONFIG, f"--workdir={workdir}", f"--config.train.dataset_dir={self.synthetic}",
                   check=True)
      return workdir
    return self._once("trained", build)


def synthetic_episode(index: int, length: int, image_size: int, rng: np.random.Generator,
                      reward_value: float = -0.01) -> shards.Episode:
  """A random episode of `length` transitions whose last is terminal; rewards `reward_value`, 1 on success."""
  success = index % 3 == 0
  reward = np.full(length, reward_value, np.float32)
  reward[-1] = 1.0 if success else reward_value
  terminated = np.arange(length) == length - 1
  return shards.Episode(
      image=rng.integers(0, 256, (length + 1, image_size, image_size, 3), dtype=np.uint8),
      gripper_closed=(np.arange(length + 1) % 2).astype(np.float32),
      height=np.linspace(0.3, 0.05, length + 1, dtype=np.float32),
      action=rng.uniform(-1, 1, (length, 7)).astype(np.float32),
      reward=reward, terminated=terminated, truncated=np.zeros(length, bool),
      index=index, seed=index, success=success, scripted=False, physics_failure=False)


def write_synthetic(directory: str, num_episodes: int, per_shard: int = 4, reward_value: float = -0.01) -> str:
  config = grasping.get_config("smoke")
  rng = np.random.default_rng(0)
  episodes = [synthetic_episode(i, 2 + i % 4, config.network.image_size, rng, reward_value)
              for i in range(num_episodes)]
  os.makedirs(directory, exist_ok=True)
  for start in range(0, num_episodes, per_shard):
    shards.write_shard(directory, episodes[start:start + per_shard], config.task,
                       camera_fov=float(config.env.camera_fov))
  return directory


def run_launcher(name: str, *args: str, check: bool = False) -> Result:
  """`python -m experiments.NAME ARGS` from the checkout's root; a case past TIMEOUT is killed (status -1)."""
  command = [sys.executable, "-m", f"experiments.{name}", *args]
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  try:
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=None if check else TIMEOUT)
    result = Result(command[1:], done.returncode, done.stdout, done.stderr)
  except subprocess.TimeoutExpired as e:
    text = lambda out: out.decode(errors="replace") if isinstance(out, bytes) else out or ""
    result = Result(command[1:], -1, text(e.stdout), text(e.stderr), line=f"still running after {TIMEOUT} s; killed")
  if check and result.status:
    raise RuntimeError(f"{name} failed while building the inputs:\n{result.stderr[-3000:]}")
  return result


def went_on(result: Result, pattern: str) -> Result:
  """For a run that exits 0: show its first stdout line matching `pattern` (what it made of the input)."""
  if result.status == 0:
    lines = [l.strip() for l in result.stdout.splitlines() if re.search(pattern, l)]
    result.line = lines[0] if lines else ""
  return result


def newest_checkpoint_file(run: str) -> str:
  """The largest file under the newest step of run/checkpoints (a data file of the train state)."""
  root = os.path.join(run, "checkpoints")
  newest = max((d for d in os.listdir(root) if d.isdigit()), key=int)
  files = [os.path.join(d, f) for d, _, names in os.walk(os.path.join(root, newest)) for f in names]
  return max(files, key=os.path.getsize)


def flip_bytes(path: str, count: int = 8) -> None:
  with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 2)
    data = bytearray(f.read(count))
    f.seek(os.path.getsize(path) // 2)
    f.write(bytes(b ^ 0xFF for b in data))


def truncate_half(path: str) -> None:
  os.truncate(path, os.path.getsize(path) // 2)


def make_read_only(directory: str) -> None:
  """chmod 555, and as root (who writes anyway) the immutable attribute where the filesystem has it."""
  os.makedirs(directory, exist_ok=True)
  os.chmod(directory, 0o555)
  if os.geteuid() == 0:
    subprocess.run(["chattr", "+i", directory], capture_output=True, check=False)


def undo_read_only(directory: str) -> None:
  if os.geteuid() == 0:
    subprocess.run(["chattr", "-i", directory], capture_output=True, check=False)
  os.chmod(directory, 0o755)


def genotype_file(inputs: Inputs, name: str, content: bytes | dict) -> str:
  path = inputs.path(name)
  with open(path, "wb") as f:
    f.write(content if isinstance(content, bytes) else json.dumps(content).encode())
  return path


def baseline_json() -> dict:
  return genotype_lib.BASELINE.to_json_dict()


# --- the cases: each builds its damaged input and runs one launcher -------------------------------------


def deleted_shard(inputs):
  episodes = os.path.join(inputs.copy(inputs.collected, "deleted_shard"), "episodes")
  os.remove(shards.list_shards(episodes)[1])
  return went_on(run_launcher("train", CONFIG, f"--workdir={inputs.path('deleted_shard_run')}",
                              f"--config.train.dataset_dir={episodes}"), r"^dataset |skip")


def deleted_sidecar(inputs):
  episodes = os.path.join(inputs.copy(inputs.collected, "deleted_sidecar"), "episodes")
  os.remove(shards.sidecar_path(shards.list_shards(episodes)[1]))
  return went_on(run_launcher("train", CONFIG, f"--workdir={inputs.path('deleted_sidecar_run')}",
                              f"--config.train.dataset_dir={episodes}"), r"^dataset |skip")


def _resume_damaged(inputs, name, damage):
  run = inputs.copy(inputs.trained, name)
  damage(newest_checkpoint_file(run))
  return went_on(run_launcher("train", CONFIG, f"--workdir={run}", f"--config.train.dataset_dir={inputs.synthetic}",
                              f"--config.train.steps={TRAIN_STEPS + 2}"), r"is damaged|^resumed from")


def flipped_checkpoint(inputs):
  return _resume_damaged(inputs, "flipped_checkpoint", flip_bytes)


def truncated_checkpoint(inputs):
  return _resume_damaged(inputs, "truncated_checkpoint", truncate_half)


def recollection(inputs):
  """Deletes the last shard of a copy and collects again: the shard must come back with the same arrays."""
  workdir = inputs.copy(inputs.collected, "recollection")
  last = shards.list_shards(os.path.join(workdir, "episodes"))[-1]
  os.remove(last)
  os.remove(shards.sidecar_path(last))
  result = run_launcher("collect", CONFIG, f"--workdir={workdir}", "--num_episodes=9")
  original = os.path.join(inputs.collected, "episodes", os.path.basename(last))
  if result.status == 0:
    with np.load(original) as a, np.load(last) as b:
      differ = sorted(k for k in a.files if a[k].shape != b[k].shape or not np.array_equal(a[k], b[k]))
    name = os.path.basename(last)
    result.line = (f"re-collected {name}: every array equals the first collection's" if not differ else
                   f"re-collected {name} differs from the first collection in {differ}")
  return result


def help_dump(inputs):
  return run_launcher("train", CONFIG, f"--workdir={inputs.path('help_dump')}",
                      f"--config.train.dataset_dir={inputs.synthetic}", "--config.train.optimizer=rmsprop")


def unknown_field(inputs):
  return run_launcher("train", CONFIG, f"--workdir={inputs.path('unknown_field')}", "--config.train.nonexistent=1")


def unknown_preset(inputs):
  return run_launcher("train", "--config=experiments/configs/grasping.py:huge",
                      f"--workdir={inputs.path('unknown_preset')}")


def unwritable_workdir(inputs):
  workdir = inputs.path("read_only")
  make_read_only(workdir)
  try:
    return run_launcher("train", CONFIG, f"--workdir={workdir}", f"--config.train.dataset_dir={inputs.synthetic}")
  finally:
    undo_read_only(workdir)


def image_size_mismatch(inputs):
  return run_launcher("train", CONFIG, f"--workdir={inputs.path('image_size')}",
                      f"--config.train.dataset_dir={inputs.synthetic}", "--config.env.image_size=48")


def non_utf8_genotype(inputs):
  path = genotype_file(inputs, "latin1.json", '{"format": "visionary_jax.genotype", "op": "caf\xe9"}'.encode("latin-1"))
  return run_launcher("train", CONFIG, f"--workdir={inputs.path('non_utf8')}",
                      f"--config.train.dataset_dir={inputs.synthetic}", f"--arch={path}")


def collect_workdir_as_dataset(inputs):
  return run_launcher("train", CONFIG, f"--workdir={inputs.path('collect_workdir_run')}",
                      f"--config.train.dataset_dir={inputs.collected}")


def _damaged_shard(inputs, name, damage):
  episodes = inputs.copy(inputs.synthetic, name)
  damage(shards.list_shards(episodes)[0])
  return run_launcher("train", CONFIG, f"--workdir={inputs.path(name + '_run')}",
                      f"--config.train.dataset_dir={episodes}")


def truncated_shard(inputs):
  return _damaged_shard(inputs, "truncated_shard", truncate_half)


def flipped_shard(inputs):
  return _damaged_shard(inputs, "flipped_shard", flip_bytes)


def nan_reward(inputs):
  episodes = write_synthetic(inputs.path("nan_reward"), 8, reward_value=float("nan"))
  return run_launcher("train", CONFIG, f"--workdir={inputs.path('nan_reward_run')}",
                      f"--config.train.dataset_dir={episodes}")


def empty_dataset(inputs):
  os.makedirs(inputs.path("empty"))
  return run_launcher("train", CONFIG, f"--workdir={inputs.path('empty_run')}",
                      f"--config.train.dataset_dir={inputs.path('empty')}")


def missing_dataset(inputs):
  return run_launcher("train", CONFIG, f"--workdir={inputs.path('missing_run')}",
                      f"--config.train.dataset_dir={inputs.path('no_such_dir')}")


def _bad_genotype(inputs, name, content):
  path = genotype_file(inputs, f"{name}.json", content)
  return run_launcher("train", CONFIG, f"--workdir={inputs.path(name)}",
                      f"--config.train.dataset_dir={inputs.synthetic}", f"--arch={path}")


def genotype_malformed_json(inputs):
  return _bad_genotype(inputs, "malformed_json", b'{"format": "visionary_jax.genotype", "locations": [')


def genotype_wrong_format(inputs):
  return _bad_genotype(inputs, "wrong_format", dict(baseline_json(), format="something_else"))


def genotype_unknown_op(inputs):
  data = baseline_json()
  data["locations"][2]["op"] = "multiply"
  return _bad_genotype(inputs, "unknown_op", data)


def genotype_missing_location(inputs):
  data = baseline_json()
  del data["locations"][4]
  return _bad_genotype(inputs, "missing_location", data)


def genotype_future_edge(inputs):
  data = baseline_json()
  data["locations"][0]["attention"] = ["loc4"]
  return _bad_genotype(inputs, "future_edge", data)


def genotype_no_action(inputs):
  data = baseline_json()
  for entry in data["locations"]:
    entry["op"] = "noop"
  return _bad_genotype(inputs, "no_action", data)


def swapped_export_genotype(inputs):
  export = inputs.copy(os.path.join(inputs.trained, "export"), "swapped_export")
  other = genotype_lib.Genotype(ops=("add",) * genotype_lib.NUM_LOCATIONS,
                                attention=((),) * genotype_lib.NUM_LOCATIONS)
  genotype_lib.save_json(other, os.path.join(export, "genotype.json"))
  return run_launcher("evaluate", f"--export={export}", "--trials=1", "--workers=0")


def non_utf8_export_genotype(inputs):
  export = inputs.copy(os.path.join(inputs.trained, "export"), "latin1_export")
  with open(os.path.join(export, "genotype.json"), "ab") as f:
    f.write(b"\xe9")
  return run_launcher("evaluate", f"--export={export}", "--trials=1", "--workers=0")


def bad_batch_size(inputs):
  return run_launcher("train", CONFIG, f"--workdir={inputs.path('batch_size')}",
                      f"--config.train.dataset_dir={inputs.synthetic}", "--config.replay.batch_size=0")


def bad_steps(inputs):
  return run_launcher("train", CONFIG, f"--workdir={inputs.path('steps')}",
                      f"--config.train.dataset_dir={inputs.synthetic}", "--config.train.steps=0")


def bad_trials(inputs):
  return run_launcher("evaluate", f"--export={os.path.join(inputs.trained, 'export')}", "--trials=0",
                      "--workers=0")


def bad_flag_value(inputs):
  return run_launcher("train", CONFIG, f"--workdir={inputs.path('flag_value')}", "--config.train.steps=six")


def missing_required_flag(inputs):
  return run_launcher("train", CONFIG)


# (name, what is tried, function); the first twelve are the failures the table was made for.
CASES = (
    ("deleted_shard", "a shard listed in manifest.json deleted", deleted_shard),
    ("deleted_sidecar", "only a shard's sidecar deleted", deleted_sidecar),
    ("flipped_checkpoint", "8 bytes flipped in the newest checkpoint, then resumed", flipped_checkpoint),
    ("recollection", "the last shard deleted and collected again", recollection),
    ("help_dump", "a config value the library rejects (unknown optimizer)", help_dump),
    ("unknown_field", "an unknown config field", unknown_field),
    ("unknown_preset", "an unknown config preset", unknown_preset),
    ("truncated_checkpoint", "the newest checkpoint's data file cut in half, then resumed", truncated_checkpoint),
    ("unwritable_workdir", "a read-only workdir", unwritable_workdir),
    ("image_size_mismatch", "env.image_size 48 with 32-pixel data", image_size_mismatch),
    ("non_utf8_genotype", "a Latin-1 genotype file as --arch", non_utf8_genotype),
    ("collect_workdir_as_dataset", "the collect workdir passed instead of its episodes/", collect_workdir_as_dataset),
    ("truncated_shard", "a shard cut in half", truncated_shard),
    ("flipped_shard", "8 bytes flipped in a shard", flipped_shard),
    ("nan_reward", "NaN rewards in a shard", nan_reward),
    ("empty_dataset", "an empty dataset directory", empty_dataset),
    ("missing_dataset", "a dataset directory that does not exist", missing_dataset),
    ("genotype_malformed_json", "a genotype file cut mid-JSON", genotype_malformed_json),
    ("genotype_wrong_format", "a genotype file of another format", genotype_wrong_format),
    ("genotype_unknown_op", "a genotype with an unknown op", genotype_unknown_op),
    ("genotype_missing_location", "a genotype missing a location", genotype_missing_location),
    ("genotype_future_edge", "a genotype with an attention edge from a later location", genotype_future_edge),
    ("genotype_no_action", "a genotype that never uses the action", genotype_no_action),
    ("swapped_export_genotype", "an export whose genotype.json is another network's", swapped_export_genotype),
    ("non_utf8_export_genotype", "an export whose genotype.json is not UTF-8", non_utf8_export_genotype),
    ("bad_batch_size", "replay.batch_size 0", bad_batch_size),
    ("bad_steps", "train.steps 0", bad_steps),
    ("bad_trials", "evaluate --trials=0", bad_trials),
    ("bad_flag_value", "a config value of the wrong type", bad_flag_value),
    ("missing_required_flag", "train without --workdir", missing_required_flag),
)


def shown_line(result: Result) -> str:
  """What the user reads: the case's own line, the last stderr line of a failure, else the last stdout line."""
  if result.line:
    return result.line
  lines = [l for l in (result.stderr if result.status else result.stdout).splitlines() if l.strip()]
  return lines[-1].strip() if lines else ""


def row(number: int, name: str, what: str, result: Result, tmp: str) -> dict:
  hide = lambda text: text.replace(os.path.realpath(tmp), "$TMP").replace(tmp, "$TMP").replace(ROOT + os.sep, "")
  return {"number": number, "name": name, "what": what, "command": hide("python " + " ".join(result.command)),
          "status": result.status, "stderr_lines": len(result.stderr.splitlines()),
          "message": hide(shown_line(result))}


def run_cases(names: list[str] | None = None, log: Callable[[str], None] = print) -> list[dict]:
  """Runs the named cases (all by default) in a fresh temp dir; one row per case."""
  unknown = sorted(set(names or ()) - {c[0] for c in CASES})
  if unknown:
    raise ValueError(f"unknown cases {unknown}; the cases are {[c[0] for c in CASES]}")
  rows = []
  saved = {k: os.environ.get(k) for k in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")}
  with tempfile.TemporaryDirectory(prefix="check_inputs_") as tmp:
    # The launchers compile the same smoke networks: one compilation cache for all of them.
    os.environ.update(JAX_COMPILATION_CACHE_DIR=os.path.join(tmp, "jax_cache"),
                      JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    try:
      inputs = Inputs(tmp)
      for number, (name, what, case) in enumerate(CASES, 1):
        if names and name not in names:
          continue
        r = row(number, name, what, case(inputs), tmp)
        log(f"{name}: exit {r['status']}, {r['stderr_lines']} stderr lines: {r['message']}")
        rows.append(r)
    finally:
      for k, v in saved.items():
        if v is None:
          del os.environ[k]
        else:
          os.environ[k] = v
  return rows


def _cell(text: str, limit: int = 400) -> str:
  text = text if len(text) <= limit else text[:limit - 1] + "…"
  return text.replace("|", "\\|")


def markdown(rows: list[dict]) -> str:
  lines = [
      "# What a bad input gives",
      "",
      "Each row is a damaged file or a bad flag tried against a launcher at the `smoke` preset, as",
      "`python -m experiments.check_inputs --output=docs/reliability.md` runs it (this file is its output).",
      "Exit status 2 is a usage error (flag, config, a file named on the command line), 1 a data error",
      "(dataset, checkpoint, export), 0 a run that went on; `stderr` counts the lines printed there, so a",
      "traceback or a help dump shows. $TMP is the temp dir the inputs were built in.",
      "",
      "| # | case | command | exit | stderr | message |",
      "|---|---|---|---|---|---|",
  ]
  for r in rows:
    lines.append(f"| {r['number']} | {_cell(r['what'])} | `{_cell(r['command'])}` | {r['status']} | "
                 f"{r['stderr_lines']} | {_cell(r['message'])} |")
  return "\n".join(lines) + "\n"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if _OUTPUT.value:
    launcher.check_output_file("output", _OUTPUT.value)
  table = markdown(run_cases(_CASES.value, log=lambda line: print(line, flush=True)))
  if _OUTPUT.value:
    atomic.write(_OUTPUT.value, lambda f: f.write(table.encode("utf-8")))
  else:
    print(table, end="")


if __name__ == "__main__":
  launcher.run(main)

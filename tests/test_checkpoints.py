"""Checkpoints: round trip, mismatches, damage, and a run killed with SIGKILL that resumes bitwise."""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import train_run
import update_fixtures
from visionary_jax import checkpoints
from visionary_jax import genotype as G
from visionary_jax import metrics
from visionary_jax.nets import qnetwork
from visionary_jax.qtopt import optimizer as optimizer_lib
from visionary_jax.qtopt import train_state

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
STEPS = 8


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Shared dataset, compilation cache and an uninterrupted reference run."""
  base = tmp_path_factory.mktemp("runs")
  env = update_fixtures.subprocess_env(tmp_path_factory)
  data = base / "data"

  def command(workdir, out, *extra):
    return [sys.executable, os.path.join(HERE, "train_run.py"), str(data), str(workdir), str(out), *extra]

  subprocess.run(command(base / "reference", base / "reference.npz"), env=env, check=True, timeout=300,
                 stdout=subprocess.DEVNULL)
  return base, env, command


def test_sigkill_at_random_step_then_resume_is_bitwise_equal(runs):
  base, env, command = runs
  # After the first checkpoint (step 2), before the end; unseeded on purpose, reported on failure.
  kill_after = int(np.random.default_rng().integers(3, STEPS))
  workdir = base / f"killed_{kill_after}"
  proc = subprocess.Popen(command(workdir, base / "unused.npz"), env=env, stdout=subprocess.PIPE, text=True)
  try:
    for line in proc.stdout:
      if line.startswith(f"step {kill_after}/"):
        proc.send_signal(signal.SIGKILL)
        break
    proc.wait(timeout=300)
  finally:
    if proc.poll() is None:
      proc.kill()
  assert proc.returncode == -signal.SIGKILL, f"run was not killed at step {kill_after}"
  assert not os.path.exists(base / "unused.npz")
  resumed = subprocess.run(command(workdir, base / "resumed.npz"), env=env, check=True, timeout=300,
                           capture_output=True, text=True)
  # The kill lands after the progress line of step k, before or after that step's checkpoint.
  possible = {f"resumed from step {k} " for k in range(2, kill_after + 1, 2)}
  assert any(p in resumed.stdout for p in possible), resumed.stdout
  reference, final = np.load(base / "reference.npz"), np.load(base / "resumed.npz")
  assert sorted(reference.files) == sorted(final.files) and len(reference.files) > 50
  for name in reference.files:
    np.testing.assert_array_equal(final[name], reference[name], err_msg=f"{name} (killed after step {kill_after})")
  assert int(final["step"]) == STEPS
  # Records written after the restored checkpoint were dropped and rewritten: each step exactly once.
  steps = [r["step"] for r in metrics.read_jsonl(os.path.join(workdir, "metrics.jsonl"))]
  assert steps == list(range(1, STEPS + 1)), steps


def test_non_finite_loss_stops_with_step_and_keeps_last_good_checkpoint(runs):
  base, env, command = runs
  workdir = base / "poisoned"
  result = subprocess.run(command(workdir, base / "poisoned.npz", "--poison=4"), env=env, timeout=300,
                          capture_output=True, text=True)
  assert result.returncode != 0
  assert "FloatingPointError: non-finite loss (nan) in the update from step 4 to 5" in result.stderr
  assert "last good checkpoint is step 4" in result.stderr
  assert not os.path.exists(base / "poisoned.npz")
  # The kept checkpoint equals the reference run's checkpoint of step 4, leaf for leaf.
  ref = checkpoints.Checkpoints(str(base / "reference" / "checkpoints"), keep=3)
  bad = checkpoints.Checkpoints(str(workdir / "checkpoints"), keep=3)
  assert bad.latest_step() == 4
  template = _template()
  ref_state, ref_host = ref.restore(4, template)
  bad_state, bad_host = bad.restore(4, template)
  assert ref_host == bad_host and ref_host["sampler"]["position"] == 4
  assert int(bad_state.step) == 4
  ref_flat, bad_flat = checkpoints.flatten(ref_state), checkpoints.flatten(bad_state)
  for name, value in ref_flat.items():
    np.testing.assert_array_equal(bad_flat[name], value, err_msg=name)


def _largest_data_file(step_dir) -> str:
  return max(glob.glob(os.path.join(step_dir, "state", "**", "d", "*"), recursive=True), key=os.path.getsize)


def _flip_8_bytes(path):
  with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 2)
    data = f.read(8)
    f.seek(-8, os.SEEK_CUR)
    f.write(bytes(b ^ 0xFF for b in data))


def _truncate(path):
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


@pytest.mark.parametrize("damage, problem", [
    (_flip_8_bytes, "differs from its checksum in checksums.json"),
    (_truncate, "has {half} bytes, checksums.json says {size}"),
])
def test_damaged_newest_checkpoint_is_reported_and_the_run_falls_back(runs, damage, problem):
  base, env, command = runs
  workdir = base / f"damaged_{damage.__name__}"
  shutil.copytree(base / "reference", workdir)
  newest = workdir / "checkpoints" / str(STEPS)
  damaged_file = _largest_data_file(newest)
  size = os.path.getsize(damaged_file)
  damage(damaged_file)
  resumed = subprocess.run(command(workdir, workdir / "final.npz"), env=env, timeout=300, capture_output=True,
                           text=True)
  assert resumed.returncode == 0, resumed.stderr
  moved = workdir / "checkpoints_damaged" / str(STEPS)
  relative = os.path.relpath(damaged_file, newest)
  line = f"checkpoint {newest} is damaged: file {relative} " + problem.format(size=size, half=size // 2)
  [report] = [l for l in resumed.stdout.splitlines() if "is damaged" in l]
  assert report.startswith(line), report
  assert report.endswith(f"; moved it to {moved} and falling back to step {STEPS - 2}"), report
  assert f"resumed from step {STEPS - 2} " in resumed.stdout
  assert "Traceback" not in resumed.stderr and "Event loop is closed" not in resumed.stderr
  # Nothing is lost: the damaged checkpoint is kept aside, and the redone steps match the uninterrupted run.
  assert os.path.exists(moved / os.path.relpath(damaged_file, newest))
  reference, final = np.load(base / "reference.npz"), np.load(workdir / "final.npz")
  for name in reference.files:
    np.testing.assert_array_equal(final[name], reference[name], err_msg=name)
  assert checkpoints.Checkpoints(str(workdir / "checkpoints"), keep=3).latest_step() == STEPS


def _small_run(directory, steps=(2, 4)) -> tuple[checkpoints.Checkpoints, dict]:
  state = {"params": {"w": np.arange(600, dtype=np.float32).reshape(20, 30)}, "step": np.int32(0)}
  ckpts = checkpoints.Checkpoints(str(directory), keep=3)
  for step in steps:
    ckpts.save(step, {"params": {"w": state["params"]["w"] + step}, "step": np.int32(step)}, {"position": step})
  return ckpts, state


def test_every_checkpoint_damaged_is_one_error_naming_each(tmp_path):
  ckpts, template = _small_run(tmp_path / "c")
  for step in (2, 4):
    _flip_8_bytes(_largest_data_file(ckpts.step_directory(step)))
  lines = []
  with pytest.raises(checkpoints.CheckpointDamaged,
                     match=rf"no good checkpoint in {tmp_path}/c: checkpoint {tmp_path}/c/4 is damaged: .*; "
                           rf"checkpoint {tmp_path}/c/2 is damaged: .*Move {tmp_path}/c aside"):
    ckpts.restore_latest(template, lines.append)
  assert not lines and ckpts.all_steps() == [2, 4]  # nothing moved
  with pytest.raises(checkpoints.CheckpointDamaged, match=f"checkpoint {tmp_path}/c/4 is damaged"):
    ckpts.restore(4, template)
  ckpts.close()


def test_restored_leaves_are_checked_against_their_checksums(tmp_path):
  ckpts, template = _small_run(tmp_path / "c")
  step_dir = ckpts.step_directory(4)
  sums = checkpoints.read_checksums(step_dir)
  assert set(sums["leaves"]) == {"params.w", "step"}
  assert sums["leaves"]["params.w"] == checkpoints.leaf_sha256(template["params"]["w"] + 4)
  sums["leaves"]["params.w"] = checkpoints.leaf_sha256(template["params"]["w"])
  with open(os.path.join(step_dir, checkpoints.CHECKSUMS), "w") as f:
    json.dump(sums, f)
  with pytest.raises(checkpoints.CheckpointDamaged, match="restored leaf params.w differs from its checksum"):
    ckpts.restore(4, template)
  with open(os.path.join(step_dir, checkpoints.CHECKSUMS), "w") as f:
    f.write("{not json")
  with pytest.raises(checkpoints.CheckpointDamaged, match=r"checkpoint .*/4 is damaged: checksums.json: .* is malformed JSON"):
    ckpts.restore(4, template)
  # A checkpoint whose checksums were never written (the run was killed right after the save) restores unverified.
  os.remove(os.path.join(step_dir, checkpoints.CHECKSUMS))
  step, state, host = ckpts.restore_latest(template, print)
  assert step == 4 and host == {"position": 4}
  np.testing.assert_array_equal(state["params"]["w"], template["params"]["w"] + 4)
  ckpts.close()


def test_non_finite_parameter_norm_stops_with_the_step(runs):
  """Finite weights of magnitude 3e35 give a finite loss but an infinite parameter norm: training stops."""
  base, env, command = runs
  template = _template()
  reference = checkpoints.Checkpoints(str(base / "reference" / "checkpoints"), keep=3)
  state, host = reference.restore(6, template)
  reference.close()
  flat = checkpoints.flatten(state)
  flat["params.logit.bias"] = np.full_like(flat["params.logit.bias"], 3e35)
  workdir = base / "inflated"
  inflated = checkpoints.Checkpoints(str(workdir / "checkpoints"), keep=3)
  inflated.save(6, checkpoints.unflatten(template, flat, "test"), host)
  inflated.close()
  result = subprocess.run(command(workdir, base / "inflated.npz"), env=env, timeout=300, capture_output=True,
                          text=True)
  assert result.returncode != 0
  assert "FloatingPointError: non-finite param_norm (inf) in the update from step 6 to 7" in result.stderr
  assert "last good checkpoint is step 6" in result.stderr
  assert not os.path.exists(base / "inflated.npz")


def _template():
  """A host TrainState of the smoke baseline, the structure train_run.py saves."""
  c = train_run.config()
  network = qnetwork.build(c.network, G.BASELINE)
  return jax.device_get(train_state.create(network, optimizer_lib.make(c.train), jax.random.PRNGKey(0)))


def test_keeps_last_k_and_round_trips_a_pytree(tmp_path):
  state = {"params": {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3)}, "arch": {}, "step": jnp.int32(0),
           "opt": (jnp.zeros(2), {"mu": jnp.full((2, 3), 0.5)})}
  ckpts = checkpoints.Checkpoints(str(tmp_path / "c"), keep=2)
  for step in (1, 2, 3):
    ckpts.save(step, jax.tree_util.tree_map(lambda x: x + step, state), {"sampler": {"position": step}})
  assert ckpts.all_steps() == [2, 3] and ckpts.latest_step() == 3
  restored, host = ckpts.restore(3, jax.device_get(state))
  assert host == {"sampler": {"position": 3}}
  assert jax.tree_util.tree_structure(restored) == jax.tree_util.tree_structure(state)
  for a, b in zip(jax.tree_util.tree_leaves(restored), jax.tree_util.tree_leaves(state)):
    np.testing.assert_array_equal(a, np.asarray(b) + 3)
    assert a.dtype == b.dtype


def test_checkpoint_of_another_architecture_names_the_leaves(tmp_path):
  ckpts = checkpoints.Checkpoints(str(tmp_path / "c"), keep=1)
  ckpts.save(5, {"params": {"conv": np.ones(3, np.float32)}}, {})
  with pytest.raises(ValueError, match=r"missing leaves \['params.fusion'\].*unexpected leaves \['params.conv'\]"):
    ckpts.restore(5, {"params": {"fusion": np.ones(3, np.float32)}})
  with pytest.raises(ValueError, match=r"params.conv is float32\[3\], this run needs float32\[4\]"):
    ckpts.restore(5, {"params": {"conv": np.ones(4, np.float32)}})


def test_bad_keep_names_the_field(tmp_path):
  with pytest.raises(ValueError, match="keep_checkpoints"):
    checkpoints.Checkpoints(str(tmp_path), keep=0)


def test_failed_evaluation_is_redone_on_resume(tmp_path):
  """The step's checkpoint follows its evaluation, so a crash in the evaluation does not skip it on resume."""
  from visionary_jax.episodes import dataset as dataset_lib  # pylint: disable=g-import-not-at-top
  from visionary_jax.episodes import sampler as sampler_lib  # pylint: disable=g-import-not-at-top
  from visionary_jax.qtopt import trainer  # pylint: disable=g-import-not-at-top
  c = train_run.config()
  c.train.steps, c.train.eval_every = 4, 4
  train_run.make_dataset(str(tmp_path / "data"))
  data = dataset_lib.Dataset(str(tmp_path / "data"), image_size=c.network.image_size)
  evaluated = []

  def failing(step, state):
    raise RuntimeError(f"evaluation worker died at step {step}")

  def recording(step, state):
    evaluated.append(step)
    return {"eval/success_rate": 0.0}

  def train(evaluate):
    batches = sampler_lib.from_config(data, c.replay, seed=c.seed, num_devices=1)
    try:
      trainer.train(c, str(tmp_path / "run"), G.BASELINE, batches, evaluate=evaluate, log=lambda _: None)
    finally:
      batches.close()

  with pytest.raises(RuntimeError, match="step 4"):
    train(failing)
  assert checkpoints.Checkpoints(str(tmp_path / "run" / "checkpoints"), 3).latest_step() == 2
  train(recording)
  assert evaluated == [4]

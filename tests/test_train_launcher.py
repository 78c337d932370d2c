"""experiments/train.py and experiments/evaluate.py end to end at the smoke preset, and their bad flags."""

import json
import os

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

import episode_fixtures
import update_fixtures
from visionary_jax import evaluation
from visionary_jax import export
from visionary_jax import genotype as G
from visionary_jax import metrics
from visionary_jax import training
from visionary_jax.nets import qnetwork
from visionary_jax.qtopt import trainer

CONFIG = "--config=experiments/configs/grasping.py:smoke"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
  return update_fixtures.subprocess_env(tmp_path_factory)


_run = update_fixtures.run_module


@pytest.fixture(scope="module")
def trained(tmp_path_factory, env):
  base = tmp_path_factory.mktemp("launcher")
  data = base / "episodes"
  data.mkdir()
  episode_fixtures.write_dataset(str(data), num_episodes=12, per_shard=4, image_size=32)
  workdir = base / "run"
  result = _run(env, "experiments.train", CONFIG, f"--workdir={workdir}", "--arch=baseline",
                f"--config.train.dataset_dir={data}", "--config.train.eval_every=3", "--config.train.eval_trials=1")
  return workdir, result


def test_train_writes_metrics_curve_and_export(trained):
  workdir, result = trained
  assert "step 6/6" in result.stdout and "ETA" in result.stdout
  assert result.stdout.count("task: grasping") == 1 and "parameters:" in result.stdout
  records = metrics.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  by_step = {}
  for r in records:
    by_step.setdefault(r["step"], {}).update(r)
  assert sorted(by_step) == list(range(1, 7))
  for key in ("loss", "q_mean", "q_std", "target_mean", "grad_norm", "param_norm", "learning_rate", "steps_per_s"):
    assert np.isfinite(by_step[6][key]), key
  assert "eval/success_rate" in by_step[3] and "eval/success_rate" in by_step[6]
  events = os.listdir(os.path.join(workdir, "tensorboard"))
  assert len(events) == 1 and events[0].startswith("events.out.tfevents.")
  tensorboard = event_accumulator.EventAccumulator(os.path.join(workdir, "tensorboard"))
  tensorboard.Reload()
  assert [e.step for e in tensorboard.Scalars("loss")] == list(range(1, 7))
  assert [e.step for e in tensorboard.Scalars("eval/success_rate")] == [3, 6]
  curve = json.load(open(os.path.join(workdir, "eval_curve.json")))
  assert [c["step"] for c in curve] == [3, 6] and all(c["trials"] == 1 for c in curve)
  assert os.path.getsize(os.path.join(workdir, "eval_curve.png")) > 1000
  policy = export.load_policy(os.path.join(workdir, "export"))
  assert policy.genotype == G.BASELINE
  assert json.load(open(os.path.join(workdir, "export", "export.json")))["step"] == 6


def test_evaluate_launcher_and_worker_independence(trained, env, tmp_path):
  workdir, _ = trained
  directory = os.path.join(workdir, "export")
  output = tmp_path / "result.json"
  result = _run(env, "experiments.evaluate", f"--export={directory}", "--trials=2", "--workers=2",
                f"--output={output}")
  summary = json.loads(result.stdout.strip().splitlines()[-1])
  assert summary["trials"] == 2 and 0 <= summary["wilson_low"] <= summary["success_rate"] <= summary["wilson_high"]
  full = json.load(open(output))
  assert len(full["per_trial"]) == 2 and sum(full["per_trial"]) == summary["successes"]
  # Trial 1 alone in this process ends as trial 1 did in the second worker.
  config = json.load(open(os.path.join(directory, "config.json")))
  alone = evaluation.run_trials(directory, "grasping", dict(config["env"], split="test"), 0, [1])
  assert alone == full["per_trial"][1:]


def test_evaluate_launcher_replaces_the_policy_cem_sizes(trained, env):
  directory = os.path.join(trained[0], "export")
  result = _run(env, "experiments.evaluate", f"--export={directory}", "--trials=1", "--workers=0",
                "--cem_num_samples=4", "--cem_num_elites=2", "--cem_iterations=1")
  summary = json.loads(result.stdout.strip().splitlines()[-1])
  assert summary["cem_overrides"] == {"num_samples": 4, "num_elites": 2, "iterations": 1}
  assert summary["trials"] == 1
  bad = _run(env, "experiments.evaluate", f"--export={directory}", "--trials=1", "--cem_num_elites=1000",
             check=False)
  assert bad.returncode != 0 and "num_elites" in bad.stderr and "--cem_" in bad.stderr


@pytest.mark.parametrize("args,message", [
    (("--arch=nowhere.json",), "--arch must be 'search', 'baseline' or a genotype JSON file"),
    ((), "train config field 'dataset_dir' is empty"),
    (("--config.train.dataset_dir=/nonexistent",), "/nonexistent is not a directory"),
])
def test_bad_flags_fail_with_one_clear_message(env, tmp_path, args, message):
  result = _run(env, "experiments.train", CONFIG, f"--workdir={tmp_path}", *args, check=False)
  assert result.returncode == 2  # a usage error
  assert result.stderr.startswith("train: ") and message in result.stderr
  assert len(result.stderr.splitlines()) == 1, result.stderr


def test_bad_genotype_file_is_named(tmp_path):
  path = tmp_path / "g.json"
  path.write_text('{"format": "visionary_jax.genotype", "version": 1, "locations": []}')
  with pytest.raises(ValueError, match=f"genotype file {path}"):
    trainer.architecture_from_flag(str(path))


def test_architecture_weights_become_metrics():
  space = G.SearchSpace()
  arch = {f"fusion_{i}": {"op_logits": np.zeros(5, np.float32)} for i in range(5)}
  arch.update({f"attention_{i}": {"edge_logits": np.zeros(len(G.attention_candidates(i)), np.float32)}
               for i in range(5)})
  arch["fusion_1"]["op_logits"][1] = np.log(6.0)  # add: 6 / (6 + 4)
  values = trainer._arch_metrics(arch, space)  # pylint: disable=protected-access
  assert values["arch/loc1/op/add"] == pytest.approx(0.6)
  assert values["arch/loc1/op/noop"] == pytest.approx(0.1)
  assert values["arch/loc4/edge/dilated4"] == pytest.approx(0.5)
  assert len(values) == 5 * 5 + sum(len(G.attention_candidates(i)) for i in range(5))
  assert trainer._arch_metrics({}, G.BASELINE) == {}  # pylint: disable=protected-access


def test_policy_weights_are_the_polyak_average_on_request_except_in_a_search():
  cfg = update_fixtures.config("smoke")
  network = qnetwork.build(cfg.network, G.BASELINE)
  state = update_fixtures.initial_state(network, cfg)
  params, arch = training.policy_weights(cfg, G.BASELINE, state)
  assert params is state.params and arch is state.arch
  cfg.train.export_weights = "target"
  params, arch = training.policy_weights(cfg, G.BASELINE, state)
  assert params is state.target["params"] and arch is state.target["arch"]
  assert training.policy_weights(cfg, G.SearchSpace(), state)[0] is state.params
  cfg.train.export_weights = "lagged"
  with pytest.raises(ValueError, match="'export_weights' must be one of"):
    training.check_export_weights(cfg)

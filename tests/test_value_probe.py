"""The value probe: discounted returns, the gripper flip, Q on many action sets, the grouped report, its launcher."""

import json

import jax
import numpy as np
import pytest

from conftest import perturbed_baseline
import episode_fixtures
from experiments.configs import grasping
import update_fixtures
from visionary_jax import export
from visionary_jax import genotype as G
from visionary_jax.episodes import dataset as dataset_lib
from visionary_jax.probes import value as value_probe


def test_discounted_returns_by_hand():
  reward = np.array([-0.01, -0.01, 1.0, -0.01, -0.01])
  returns = value_probe.discounted_returns(reward, np.array([3, 2]), gamma=0.5)
  # Episode 1: G2 = 1, G1 = -0.01 + 0.5, G0 = -0.01 + 0.5 * 0.49. Episode 2 has no success.
  np.testing.assert_allclose(returns, [0.235, 0.49, 1.0, -0.015, -0.01])
  with pytest.raises(ValueError, match="episode lengths sum to 4, but there are 5 rewards"):
    value_probe.discounted_returns(reward, np.array([3, 1]), 0.5)


def test_flip_and_change_of_the_gripper_state():
  action = np.zeros((4, 7), np.float32)
  action[:, 5:7] = [[1, 0], [0, 1], [1, 0], [0, 1]]  # open, close, open, close
  flipped = value_probe.flip_gripper_command(action)
  np.testing.assert_array_equal(flipped[:, 5:7], [[0, 1], [1, 0], [0, 1], [1, 0]])
  np.testing.assert_array_equal(flipped[:, :5], action[:, :5])
  closed = np.array([0.0, 0.0, 1.0, 1.0])
  np.testing.assert_array_equal(value_probe.changes_gripper_state(action, closed), [False, True, True, False])
  np.testing.assert_array_equal(value_probe.changes_gripper_state(flipped, closed), [True, False, False, True])


def test_scene_dependence_by_hand():
  # Two scenes, a 1x2 grid. Same ranking, offset by 1: no interaction.
  same = value_probe.scene_dependence(np.array([[[0.0, 2.0]], [[1.0, 3.0]]]))
  assert same["action_variance"] == pytest.approx(1.0) and same["scene_variance"] == pytest.approx(0.25)
  assert same["interaction_variance"] == pytest.approx(0.0, abs=1e-12)
  assert same["interaction_share"] == pytest.approx(0.0, abs=1e-12) and same["argmax_agreement"] == 1.0
  # Opposite rankings: the scenes' mean map is flat, all of the move preference is the scene's.
  opposite = value_probe.scene_dependence(np.array([[[0.0, 2.0]], [[2.0, 0.0]]]))
  assert opposite["action_variance"] == pytest.approx(0.0) and opposite["interaction_variance"] == pytest.approx(1.0)
  assert opposite["interaction_share"] == pytest.approx(1.0) and opposite["argmax_agreement"] == 0.5
  # Residuals of [[0, 2], [1, 0]]: grand mean 0.75, scene means 1 and 0.5, move means 0.5 and 1.
  mixed = value_probe.scene_dependence(np.array([[[0.0, 2.0]], [[1.0, 0.0]]]))
  assert mixed["action_variance"] == pytest.approx(0.0625) and mixed["interaction_variance"] == pytest.approx(0.5625)
  assert mixed["interaction_share"] == pytest.approx(0.9)


@pytest.fixture(scope="module")
def cfg():
  return grasping.get_config("smoke")


@pytest.fixture(scope="module")
def network(cfg):
  net, params = perturbed_baseline(cfg.network)
  return net, {"params": params}


@pytest.fixture(scope="module")
def data(cfg, tmp_path_factory):
  directory = tmp_path_factory.mktemp("episodes")
  episode_fixtures.write_dataset(directory, num_episodes=12, per_shard=4, image_size=cfg.network.image_size)
  return dataset_lib.Dataset(str(directory))


def test_q_values_equal_the_full_forward_pass_in_any_batching(network):
  net, variables = network
  rng = np.random.default_rng(0)
  n, s = 5, net.spec.image_size
  image = rng.integers(0, 256, (n, s, s, 3), dtype=np.uint8)
  actions = [rng.uniform(-1, 1, (n, 7)).astype(np.float32) for _ in range(2)]
  closed, height = np.array([0, 1, 0, 1, 1], np.float32), rng.uniform(0, 0.3, n).astype(np.float32)
  q = value_probe.q_values(net, variables, image, actions, closed, height, batch_size=2)
  for a, qa in zip(actions, q):
    sa = np.concatenate([a, closed[:, None], height[:, None]], axis=1)
    expected = jax.nn.sigmoid(net.apply(variables, image, sa))
    np.testing.assert_allclose(qa, expected, rtol=1e-5, atol=1e-6)


def test_probe_groups_every_drawn_transition(network, data):
  net, variables = network
  result = value_probe.probe(net, variables, data, gamma=0.9, num_transitions=20, seed=3)
  assert result["transitions"] == 20 and sum(g["n"] for g in result["groups"]) == 20
  index = np.sort(np.random.default_rng(3).choice(data.num_transitions, 20, replace=False))
  t = data.transitions(index)
  returns = value_probe.discounted_returns(data.reward, data.episode_length, 0.9)[index]
  q_data, q_flip = value_probe.q_values(net, variables, t["image"],
                                        [t["action"], value_probe.flip_gripper_command(t["action"])],
                                        t["gripper_closed"], t["height"])
  assert result["overall"]["return"] == pytest.approx(returns.mean())
  assert result["overall"]["q_data"] == pytest.approx(q_data.mean(), rel=1e-6)
  # Every fixture action commands "close", so it changes the state exactly where the gripper is open.
  closed = t["gripper_closed"] > 0.5
  for g in result["groups"]:
    if not g["n"]:
      assert g["change_fraction"] is None and g["q_change"] is None
      continue
    assert g["change_fraction"] == (1.0 if g["gripper"] == "open" else 0.0)
    low, high = g["height"]
    m = ((closed if g["gripper"] == "closed" else ~closed) & (t["height"] >= low)
         & (t["height"] < (np.inf if high is None else high)))
    assert g["n"] == m.sum()
    q_change = q_data[m] if g["gripper"] == "open" else q_flip[m]
    assert g["q_change"] == pytest.approx(q_change.mean(), rel=1e-6)
    assert g["return_change" if g["gripper"] == "open" else "return_keep"] == pytest.approx(returns[m].mean())
  table = value_probe.markdown(result)
  assert table.count("\n") == 1 + len(result["groups"]) and "| open | >= 0.12 |" in table
  with pytest.raises(ValueError, match=rf"num_transitions must be in \[1, {data.num_transitions}\]"):
    value_probe.probe(net, variables, data, 0.9, data.num_transitions + 1)


def test_start_state_maps_score_the_grid_at_episode_starts(network, data):
  net, variables = network
  maps = value_probe.start_state_maps(net, variables, data, num_scenes=3, grid=3, seed=1)
  assert maps.shape == (3, 3, 3) and np.all((maps > 0) & (maps < 1))
  starts = np.concatenate([[0], np.cumsum(data.episode_length)[:-1]])
  index = np.sort(np.random.default_rng(1).choice(starts, 3, replace=False))
  t = data.transitions(index)
  move = np.zeros((3, 7), np.float32)
  move[:] = (1.0, -1.0, -1.0, 0.0, 1.0, 1.0, 0.0)  # x = +1, y = -1: row 0, column 2
  (q,) = value_probe.q_values(net, variables, t["image"], [move], t["gripper_closed"], t["height"])
  np.testing.assert_allclose(maps[:, 0, 2], q, rtol=1e-5)
  with pytest.raises(ValueError, match=r"num_scenes must be in \[1, 12\]"):
    value_probe.start_state_maps(net, variables, data, num_scenes=13)


def test_attempt_discrimination_is_the_pairwise_auc_of_q_over_attempts(network, data):
  net, variables = network
  result = value_probe.attempt_discrimination(net, variables, data, max_attempts=100)
  # Attempts: terminal transitions closing an open gripper (every fixture action closes).
  attempts = np.flatnonzero(data.terminated & (data.gripper_closed[data.frame] < 0.5))
  assert result["attempts"] == len(attempts) > 0
  t = data.transitions(attempts)
  (q,) = value_probe.q_values(net, variables, t["image"], [t["action"]], t["gripper_closed"], t["height"])
  success = t["reward"] > 0.5
  assert 0 < success.sum() < len(success), "the fixture needs both outcomes among its attempts"
  pairs = [(1.0 if a > b else 0.5 if a == b else 0.0) for a in q[success] for b in q[~success]]
  assert result["auc"] == pytest.approx(np.mean(pairs), abs=1e-9)
  assert result["success_rate"] == pytest.approx(success.mean())
  assert result["q_success"] == pytest.approx(q[success].mean(), rel=1e-6)
  low = t["height"] < 0.05
  assert result["low_attempts"] == low.sum()
  if 0 < success[low].sum() < low.sum():
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0) for a in q[low & success] for b in q[low & ~success]]
    assert result["low_auc"] == pytest.approx(np.mean(pairs), abs=1e-9)
  assert value_probe.attempt_discrimination(net, variables, data, max_attempts=1)["attempts"] == 1


def test_launcher(cfg, network, data, tmp_path_factory):
  net, variables = network
  directory = export.export(str(tmp_path_factory.mktemp("exports") / "baseline"), cfg, G.BASELINE,
                            variables["params"], {}, 3)
  env = update_fixtures.subprocess_env(tmp_path_factory)
  out = tmp_path_factory.getbasetemp() / "probe.json"
  result = update_fixtures.run_module(env, "experiments.value_probe", f"--export={directory}",
                                      f"--dataset_dir={data.directory}", "--transitions=16", "--scenes=12",
                                      f"--output={out}")
  last = json.loads(result.stdout.strip().splitlines()[-1])
  saved = json.load(open(out))
  assert last["transitions"] == 16 and last["q_data"] == pytest.approx(saved["overall"]["q_data"])
  assert saved["dataset_dir"] == data.directory and len(saved["groups"]) == 6
  assert saved["start_state"]["scenes"] == 12 and 0 <= last["start_interaction_share"] <= 1
  assert last["attempt_attempts"] == saved["attempts"]["attempts"] > 0
  bad = update_fixtures.run_module(env, "experiments.value_probe", f"--export={directory}", check=False)
  assert bad.returncode != 0 and "train config field 'dataset_dir' is empty" in bad.stderr
  bad = update_fixtures.run_module(env, "experiments.value_probe", f"--export={directory}",
                                   f"--dataset_dir={data.directory}", "--transitions=0", check=False)
  assert bad.returncode != 0 and "--transitions=0: 0 is not a positive integer" in bad.stderr
  bad = update_fixtures.run_module(env, "experiments.value_probe", f"--export={data.directory}", check=False)
  assert bad.returncode != 0 and "export.json" in bad.stderr

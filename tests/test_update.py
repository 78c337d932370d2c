"""The pmapped QT-Opt update: device-count invariance, single trace, targets, partitions, joint search step."""

import os
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import conftest
import update_fixtures
from visionary_jax import genotype as G
from visionary_jax.nets import qnetwork
from visionary_jax.qtopt import cem
from visionary_jax.qtopt import optimizer as optimizer_lib
from visionary_jax.qtopt import train_state
from visionary_jax.qtopt import update

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


@pytest.fixture(scope="module")
def cfg():
  return update_fixtures.config("smoke")


@pytest.fixture(scope="module")
def baseline(cfg):
  return qnetwork.build(cfg.network, G.BASELINE)


def test_update_on_2_and_4_devices_equals_one_device(tmp_path):
  out = tmp_path / "update.npz"
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu",
             PYTHONPATH=os.pathsep.join([ROOT, HERE]))
  subprocess.run([sys.executable, os.path.join(HERE, "update_multidevice.py"), "4", str(out)],
                 env=env, check=True, timeout=300)
  arrays = np.load(out)
  runs = {n: {k[1:]: arrays[k] for k in arrays.files if k.startswith(str(n))} for n in (1, 2, 4)}
  one = runs[1]
  assert len(one) > 50
  for n in (2, 4):
    assert runs[n].keys() == one.keys()
    for key in one:
      np.testing.assert_allclose(runs[n][key], one[key], rtol=2e-4, atol=1e-6, err_msg=f"{n} devices: {key}")
  # The update moved the weights (the comparison is not between two untouched states).
  assert one["['metrics']['update_norm']"] > 0
  assert 0.0 < one["['metrics']['target_mean']"] < 1.0


@pytest.fixture(scope="module")
def pstep(cfg, baseline):
  """The pmapped step on one device, allowed to trace once."""
  return update.make_pmapped_step(baseline, optimizer_lib.make(cfg.train), update.UpdateConfig.from_config(cfg),
                                  jax.local_devices()[:1], max_traces=1)


def test_step_compiles_once_and_a_new_batch_shape_is_caught(cfg, baseline, pstep):
  state = update.replicate(update_fixtures.initial_state(baseline, cfg), jax.local_devices()[:1])
  for seed in range(3):
    state, metrics = pstep(state, update_fixtures.batch(baseline.spec.image_size, 8, seed=seed))
  assert int(state.step[0]) == 3
  assert np.isfinite(metrics["loss"][0])
  with pytest.raises(AssertionError, match="trace"):
    pstep(state, update_fixtures.batch(baseline.spec.image_size, 4, seed=0))


def test_targets_polyak_and_lag_by_hand(cfg, baseline, pstep):
  """smoke preset: polyak 0.5, lag 2: target1 averages, target2 copies target1 at steps 2, 4, ..."""
  assert cfg.train.polyak == 0.5 and cfg.train.lag == 2
  devices = jax.local_devices()[:1]
  state0 = update_fixtures.initial_state(baseline, cfg)
  b = update_fixtures.batch(baseline.spec.image_size, 8, seed=0)
  state1 = update.unreplicate(pstep(update.replicate(state0, devices), b)[0])
  state2 = update.unreplicate(pstep(update.replicate(state1, devices), b)[0])
  average = lambda t, o: jax.tree_util.tree_map(lambda a, c: 0.5 * a + 0.5 * c, t, o)
  chex.assert_trees_all_close(state1.target, average(state0.target, state1.trainable), rtol=1e-6)
  chex.assert_trees_all_equal(state1.lagged, jax.device_get(state0.lagged))
  chex.assert_trees_all_close(state2.target, average(state1.target, state2.trainable), rtol=1e-6)
  chex.assert_trees_all_equal(state2.lagged, state2.target)


def test_bellman_targets_use_min_of_both_targets_and_terminal_mask(cfg, baseline):
  """Recomputes y from the two target networks' forward passes at the CEM action."""
  state = update_fixtures.initial_state(baseline, cfg)
  single = {k: v[0] for k, v in update_fixtures.batch(baseline.spec.image_size, 8, seed=1).items()}
  ucfg = update.UpdateConfig.from_config(cfg)
  keys = update.transition_keys(state.rng, state.step, 8, None)
  y, _ = update.bellman_targets(baseline, ucfg, state.target, state.lagged, single, keys)
  state_t = np.stack([single["next_gripper_closed"], single["next_height"]], -1)
  from visionary_jax.qtopt import cem  # pylint: disable=g-import-not-at-top
  a_star, _ = cem.argmax_q(baseline, {"params": state.target["params"]}, single["next_image"], jnp.asarray(state_t),
                           keys, ucfg.target_cem)
  sa = jnp.concatenate([a_star, state_t], -1)
  q1 = jax.nn.sigmoid(baseline.apply({"params": state.target["params"]}, single["next_image"], sa))
  q2 = jax.nn.sigmoid(baseline.apply({"params": state.lagged["params"]}, single["next_image"], sa))
  expected = np.clip(single["reward"] + 0.9 * (1 - single["done"]) * np.minimum(q1, q2), 0, 1)
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
  assert np.any(single["done"] == 1) and np.any(single["done"] == 0)
  assert not np.allclose(q1, q2)  # the two targets differ, so min() matters


def test_augmentation_and_target_cem_draw_from_independent_keys():
  """No key the shifts use (fold_in 1, 2) is one a CEM iteration uses (fold_in 0, 1, 2), nor the reverse."""
  keys = update.transition_keys(jax.random.PRNGKey(0), jnp.asarray(3), 16, None)
  augment_keys, cem_keys = update.augment_and_cem_keys(keys)
  data = lambda ks, n: {tuple(k) for k in np.asarray(jax.vmap(lambda k: jax.random.fold_in(k, n))(ks))}
  shifts = data(augment_keys, 1) | data(augment_keys, 2)
  cem_iterations = data(cem_keys, 0) | data(cem_keys, 1) | data(cem_keys, 2)
  assert len(shifts) == 32 and len(cem_iterations) == 48
  assert not shifts & cem_iterations


def test_optimizer_partitions_by_hand(cfg):
  train = cfg.train.copy_and_resolve_references()
  train.optimizer, train.learning_rate, train.momentum, train.l2 = "sgd", 0.1, 0.5, 0.01
  train.arch_optimizer, train.arch_learning_rate, train.arch_momentum, train.arch_l2 = "sgd", 1.0, 0.0, 0.0
  tx = optimizer_lib.make(train)
  trainable = {"params": {"dense": {"kernel": jnp.full((2, 2), 2.0), "bias": jnp.full((2,), 2.0)}},
               "arch": {"fusion_0": {"op_logits": jnp.full((5,), 2.0)}}}
  grads = jax.tree_util.tree_map(jnp.ones_like, trainable)
  state = tx.init(trainable)
  u1, state = tx.update(grads, state, trainable)
  np.testing.assert_allclose(u1["params"]["dense"]["kernel"], -0.1 * (1 + 0.01 * 2.0))  # L2 on kernels
  np.testing.assert_allclose(u1["params"]["dense"]["bias"], -0.1 * 1.0)  # no L2 on biases
  np.testing.assert_allclose(u1["arch"]["fusion_0"]["op_logits"], -1.0)  # own learning rate, no momentum
  u2, _ = tx.update(grads, state, trainable)
  np.testing.assert_allclose(u2["params"]["dense"]["bias"], -0.1 * (1.0 + 0.5 * 1.0))  # momentum 0.5
  np.testing.assert_allclose(u2["arch"]["fusion_0"]["op_logits"], -1.0)


def test_cosine_schedule_decays_the_weights_only_by_hand(cfg):
  train = cfg.train.copy_and_resolve_references()
  train.optimizer, train.learning_rate, train.momentum, train.l2 = "sgd", 0.1, 0.0, 0.0
  train.arch_optimizer, train.arch_learning_rate, train.arch_momentum = "sgd", 1.0, 0.0
  train.lr_schedule, train.lr_final_fraction, train.steps = "cosine", 0.2, 4
  schedule = optimizer_lib.weight_learning_rate(train)
  # lr(t) = 0.1 * (0.2 + 0.8 * (1 + cos(pi * t / 4)) / 2); step 2: 0.1 * (0.2 + 0.4) = 0.06.
  np.testing.assert_allclose([schedule(t) for t in (0, 2, 4, 6)], [0.1, 0.06, 0.02, 0.02], rtol=1e-6)
  tx = optimizer_lib.make(train)
  trainable = {"params": {"b": jnp.zeros((2,))}, "arch": {"fusion_0": {"op_logits": jnp.zeros((5,))}}}
  grads = jax.tree_util.tree_map(jnp.ones_like, trainable)
  state = tx.init(trainable)
  for expected in (0.1, 0.1 * (0.2 + 0.8 * (1 + np.cos(np.pi / 4)) / 2), 0.06):
    u, state = tx.update(grads, state, trainable)
    np.testing.assert_allclose(u["params"]["b"], -expected, rtol=1e-6)
    np.testing.assert_allclose(u["arch"]["fusion_0"]["op_logits"], -1.0)  # constant
  train.lr_schedule = "constant"
  assert optimizer_lib.weight_learning_rate(train)(1000) == 0.1
  # A constant rate keeps the optimiser state (and so the checkpoint layout) free of a schedule count.
  is_schedule_state = lambda x: isinstance(x, optax.ScaleByScheduleState)
  has_schedule_state = lambda opt_state: any(
      is_schedule_state(x) for x in jax.tree_util.tree_leaves(opt_state, is_leaf=is_schedule_state))
  assert has_schedule_state(state)
  assert not has_schedule_state(optimizer_lib.make(train).init(trainable))


@pytest.mark.parametrize("field,value", [("optimizer", "rmsprop"), ("arch_learning_rate", 0.0), ("momentum", 1.0),
                                         ("lr_schedule", "step"), ("lr_final_fraction", 1.5),
                                         ("learning_rate", 0.0)])
def test_bad_optimizer_config_names_the_field(cfg, field, value):
  train = cfg.train.copy_and_resolve_references()
  train[field] = value
  if field == "lr_final_fraction":
    train.lr_schedule = "cosine"
  names = {"arch_learning_rate": "arch_optimizer", "momentum": "optimizer", "learning_rate": "optimizer"}
  with pytest.raises(ValueError, match=names.get(field, field)):
    optimizer_lib.make(train)


@pytest.mark.parametrize("field,value", [("augment_shift", -1), ("gamma", 1.5), ("polyak", 1.0), ("lag", 0),
                                         ("target", "max"), ("conservative_weight", -0.1),
                                         ("conservative_actions", -1),
                                         ("conservative_batch_actions", -1), ("local_actions", -1),
                                         ("local_std", -0.1), ("expectile", 1.0), ("expectile", 0.0)])
def test_bad_update_config_names_the_field(cfg, field, value):
  config = cfg.copy_and_resolve_references()
  config.train[field] = value
  with pytest.raises(ValueError, match=field):
    update.UpdateConfig.from_config(config)


def test_joint_step_moves_architecture_logits(cfg):
  """Eq. 2: one loss, gradients reach the architecture logits, which the arch partition updates."""
  network = qnetwork.build(cfg.network, G.SearchSpace(fusion=True, attention=False))
  state = update_fixtures.initial_state(network, cfg)
  optimizer = optimizer_lib.make(cfg.train)
  ucfg = update.UpdateConfig.from_config(cfg)
  single = {k: v[0] for k, v in update_fixtures.batch(network.spec.image_size, 8).items()}
  new, metrics = jax.jit(lambda s, x: update.train_step(s, x, network=network, optimizer=optimizer, config=ucfg))(
      state, single)
  assert float(metrics["arch_grad_norm"]) > 0
  moved = jax.tree_util.tree_map(lambda a, b: float(jnp.max(jnp.abs(a - b))), new.arch, state.arch)
  assert all(v > 0 for v in jax.tree_util.tree_leaves(moved))
  assert set(new.arch) == {f"fusion_{i}" for i in range(5)}


def test_bad_batch_names_the_key():
  b = update_fixtures.batch(32, 4)
  del b["next_height"]
  with pytest.raises(ValueError, match="next_height"):
    update.check_batch(b)
  b = update_fixtures.batch(32, 4)
  with pytest.raises(ValueError, match="one slice per local device"):
    update.check_batch(b, leading=2)


def _ordered_batch(image_size: int, n_bootstrap: int, size: int, seed: int = 4) -> dict:
  """A flat batch whose first `n_bootstrap` transitions bootstrap under either target, the rest are terminal."""
  single = {k: v[0] for k, v in update_fixtures.batch(image_size, size, seed=seed).items()}
  single["done"] = (np.arange(size) >= n_bootstrap).astype(np.float32)
  single["episode_end"] = single["done"].copy()
  single["reward"] = np.where(single["done"] == 1, np.where(np.arange(size) % 2, 1.0, -0.01), -0.01).astype(
      np.float32)
  return single


@pytest.mark.parametrize("target", update.TARGETS)
def test_bootstrap_only_target_equals_full_batch_target(cfg, baseline, target):
  """Next-state values for the first n transitions only give the full batch's targets when only those bootstrap."""
  state = update_fixtures.initial_state(baseline, cfg)
  single = _ordered_batch(baseline.spec.image_size, 5, 8)
  keys = update.transition_keys(state.rng, state.step, 8, None)
  config = cfg.copy_and_resolve_references()
  config.train.target = target
  full = update.UpdateConfig.from_config(config)
  head_only = update.UpdateConfig.from_config(config, bootstrap_size=5)
  y_full, _ = update.bellman_targets(baseline, full, state.target, state.lagged, single, keys)
  y_head, _ = update.bellman_targets(baseline, head_only, state.target, state.lagged, single, keys)
  np.testing.assert_allclose(y_head, y_full, rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(y_head[5:], [1.0, 0.0, 1.0])  # terminal: the clipped reward alone
  assert np.all(y_head[:5] > 0)
  none, _ = update.bellman_targets(baseline, update.UpdateConfig.from_config(config, bootstrap_size=0),
                                   state.target, state.lagged, single, keys)
  np.testing.assert_array_equal(none, np.clip(single["reward"], 0, 1))


def test_data_target_bootstraps_at_the_next_action_and_not_past_an_episode_end(cfg, baseline):
  """y = clip(r + gamma (1 - max(done, episode_end)) min(Q1, Q2)(s', a'_data), 0, 1)."""
  state = update_fixtures.initial_state(baseline, cfg)
  single = {k: v[0] for k, v in update_fixtures.batch(baseline.spec.image_size, 8, seed=2).items()}
  single["done"] = np.array([0, 0, 0, 0, 0, 1, 1, 0], np.float32)
  single["episode_end"] = np.array([0, 0, 0, 1, 0, 1, 1, 1], np.float32)
  config = cfg.copy_and_resolve_references()
  config.train.target = "data"
  ucfg = update.UpdateConfig.from_config(config)
  keys = update.transition_keys(state.rng, state.step, 8, None)
  y, _ = update.bellman_targets(baseline, ucfg, state.target, state.lagged, single, keys)
  sa = np.concatenate([single["next_action"], single["next_gripper_closed"][:, None],
                       single["next_height"][:, None]], -1)
  q1 = jax.nn.sigmoid(baseline.apply({"params": state.target["params"]}, single["next_image"], sa))
  q2 = jax.nn.sigmoid(baseline.apply({"params": state.lagged["params"]}, single["next_image"], sa))
  bootstrap = np.array([1, 1, 1, 0, 1, 0, 0, 0], np.float32)
  expected = np.clip(single["reward"] + 0.9 * bootstrap * np.minimum(q1, q2), 0, 1)
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_local_target_takes_the_better_gripper_command_of_the_data_action(cfg, baseline):
  """local_actions 0: a* = argmax of Q_target1 over the data's next action with open and with close."""
  state = update_fixtures.initial_state(baseline, cfg)
  state = state.replace(target={"params": conftest.perturbed(state.target["params"]), "arch": state.target["arch"]})
  single = {k: v[0] for k, v in update_fixtures.batch(baseline.spec.image_size, 8, seed=3).items()}
  single["done"] = np.array([0, 0, 0, 0, 0, 1, 1, 0], np.float32)
  single["episode_end"] = np.array([0, 0, 0, 1, 0, 1, 1, 1], np.float32)
  config = cfg.copy_and_resolve_references()
  config.train.target = "local"
  config.train.local_actions = 0
  keys = update.transition_keys(state.rng, state.step, 8, None)
  y, _ = update.bellman_targets(baseline, update.UpdateConfig.from_config(config), state.target, state.lagged,
                                single, keys)
  state_t = np.stack([single["next_gripper_closed"], single["next_height"]], -1)

  def q(variables, command):
    action = np.array(single["next_action"], np.float32)
    action[:, 5:7] = command
    return np.asarray(jax.nn.sigmoid(baseline.apply(variables, single["next_image"],
                                                    np.concatenate([action, state_t], -1))))

  target_vars = {"params": state.target["params"]}
  lagged_vars = {"params": state.lagged["params"]}
  q1_open, q1_close = q(target_vars, (1, 0)), q(target_vars, (0, 1))
  assert np.any(q1_close > q1_open) and np.any(q1_close < q1_open)  # both commands get chosen
  take_close = q1_close > q1_open
  q1 = np.where(take_close, q1_close, q1_open)
  q2 = np.where(take_close, q(lagged_vars, (0, 1)), q(lagged_vars, (1, 0)))
  bootstrap = np.array([1, 1, 1, 0, 1, 0, 0, 0], np.float32)
  expected = np.clip(single["reward"] + 0.9 * bootstrap * np.minimum(q1, q2), 0, 1)
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_check_batch_rejects_slices_out_of_bootstrap_order(cfg):
  ordered = _ordered_batch(32, 5, 8)
  ucfg = update.UpdateConfig.from_config(cfg, bootstrap_size=5)
  update.check_batch(ordered, config=ucfg)
  swapped = dict(ordered, done=ordered["done"][::-1].copy())
  with pytest.raises(ValueError, match="exactly 5 bootstrapping"):
    update.check_batch(swapped, config=ucfg)


def test_conservative_loss_is_log_loss_plus_weighted_penalty_of_the_same_logits(cfg, baseline):
  state = update_fixtures.initial_state(baseline, cfg)
  single = {k: v[0] for k, v in update_fixtures.batch(baseline.spec.image_size, 6).items()}
  y = jnp.linspace(0.1, 0.9, 6)
  sampled = jax.vmap(lambda k: cem.uniform_actions(k, 3, search_yaw=False))(jax.random.split(jax.random.PRNGKey(5), 6))
  plain, plain_metrics = update.loss_fn(state.trainable, baseline, single, y)
  total, metrics = update.loss_fn(state.trainable, baseline, single, y, sampled, conservative_weight=0.5)
  np.testing.assert_allclose(metrics["loss"], plain_metrics["loss"], rtol=1e-5)
  # The same logits, each candidate scored on its own.
  variables = train_state.as_variables(state.trainable)
  state_2 = jnp.stack([single["gripper_closed"], single["height"]], axis=-1)
  candidates = [single["action"]] + [sampled[:, j] for j in range(3)]
  logits = jnp.stack([baseline.apply(variables, single["image"], jnp.concatenate([a, state_2], -1))
                      for a in candidates], axis=1)
  expected = plain + 0.5 * jnp.mean(jax.nn.logsumexp(logits, axis=1) - logits[:, 0])
  np.testing.assert_allclose(total, expected, rtol=1e-5)
  assert sampled.shape == (6, 3, 7) and np.all(np.asarray(sampled[..., 3:5]) == [0.0, 1.0])


def test_expectile_weighs_the_log_loss_of_bootstrapping_transitions_only(cfg, baseline):
  state = update_fixtures.initial_state(baseline, cfg)
  single = {k: v[0] for k, v in update_fixtures.batch(baseline.spec.image_size, 6).items()}
  single["done"] = np.array([0, 0, 0, 1, 1, 0], np.float32)
  y = jnp.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
  config = cfg.copy_and_resolve_references()
  config.train.expectile = 0.9
  ucfg = update.UpdateConfig.from_config(config)
  mask = update.bootstrap_mask(single, ucfg)
  np.testing.assert_array_equal(mask, [1, 1, 1, 0, 0, 1])
  np.testing.assert_array_equal(update.bootstrap_mask(single, update.UpdateConfig.from_config(config, 2)),
                                [1, 1, 0, 0, 0, 0])
  _, plain = update.loss_fn(state.trainable, baseline, single, y)
  weighted, _ = update.loss_fn(state.trainable, baseline, single, y, expectile=0.9, asymmetric=mask)
  sa = np.concatenate([single["action"], single["gripper_closed"][:, None], single["height"][:, None]], -1)
  logits = baseline.apply(train_state.as_variables(state.trainable), single["image"], sa)
  per_example = -(y * jax.nn.log_sigmoid(logits) + (1 - y) * jax.nn.log_sigmoid(-logits))
  # y in {0, 1} and 0 < Q < 1: above Q where y = 1.
  weights = np.array([0.2, 1.8, 0.2, 1.0, 1.0, 1.8])
  np.testing.assert_allclose(weighted, np.mean(weights * per_example), rtol=1e-5)
  np.testing.assert_allclose(plain["loss"], np.mean(per_example), rtol=1e-5)


def test_conservative_term_lowers_sampled_actions_q():
  """A few steps with a large weight push Q of uniform actions below Q of the data's."""
  cfg = update_fixtures.config("smoke")
  cfg.train.conservative_weight = 5.0
  network = qnetwork.build(cfg.network, G.BASELINE)
  optimizer = optimizer_lib.make(cfg.train)
  ucfg = update.UpdateConfig.from_config(cfg)
  state = update_fixtures.initial_state(network, cfg)
  single = {k: v[0] for k, v in update_fixtures.batch(network.spec.image_size, 8).items()}
  step = jax.jit(lambda s, x: update.train_step(s, x, network=network, optimizer=optimizer, config=ucfg))
  state, first = step(state, single)
  for _ in range(10):
    state, metrics = step(state, single)
  assert float(metrics["conservative_penalty"]) < float(first["conservative_penalty"])
  assert float(metrics["q_sampled_mean"]) < float(metrics["q_mean"])


def test_conservative_actions_are_uniform_then_the_next_transitions_actions(cfg):
  config = cfg.copy_and_resolve_references()
  config.train.conservative_weight = 1.0
  config.train.conservative_actions = 2
  config.train.conservative_batch_actions = 2
  ucfg = update.UpdateConfig.from_config(config)
  action = np.arange(4 * 7, dtype=np.float32).reshape(4, 7)
  keys = jax.random.split(jax.random.PRNGKey(0), 4)
  out = update.conservative_actions({"action": action}, keys, ucfg)
  assert out.shape == (4, 4, 7)
  # Transition 3's batch negatives are the actions of transitions 0 and 1 (the slice wraps around).
  np.testing.assert_array_equal(out[3, 2:], action[[0, 1]])
  np.testing.assert_array_equal(out[0, 2:], action[[1, 2]])
  assert np.all(np.abs(np.asarray(out[:, :2, :3])) <= 1.0)
  np.testing.assert_array_equal(out[:, :2], jax.vmap(lambda k: cem.uniform_actions(
      jax.random.fold_in(k, 3), 2, ucfg.target_cem.search_yaw))(keys))


def test_conservative_term_needs_some_actions(cfg):
  config = cfg.copy_and_resolve_references()
  config.train.conservative_weight = 1.0
  config.train.conservative_actions = 0
  with pytest.raises(ValueError, match="conservative_batch_actions"):
    update.UpdateConfig.from_config(config)

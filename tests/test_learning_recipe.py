"""The `cpu` learning recipe's invariants: targets paced to the run, a horizon that reaches stacking's
reward, one yaw rule shared by the data, both CEMs and the env."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import grasping as grasping_config
from experiments.configs import stacking as stacking_config
from visionary_jax import action_space
from visionary_jax import envs
from visionary_jax.envs import policies
from visionary_jax.qtopt import cem
from visionary_jax.qtopt import update

CONFIGS = {"grasping": grasping_config, "stacking": stacking_config}


@pytest.mark.parametrize("task", CONFIGS)
def test_cpu_target_schedule_is_inside_the_run(task):
  config = CONFIGS[task].get_config("cpu")
  for steps in (config.train.steps, config.study.retrain_steps, config.study.search_steps):
    assert config.train.lag <= steps / 10, (config.train.lag, steps)
  time_constant = 1.0 / (1.0 - config.train.polyak)  # steps for the Polyak average to forget 1 - 1/e
  assert time_constant <= config.train.lag


def _success_value(gamma: float, k: int) -> float:
  """Discounted value of a success k steps ahead: k - 1 steps of -0.01, then 1."""
  return sum(-0.01 * gamma**t for t in range(k - 1)) + gamma ** (k - 1)


def test_success_value_matches_the_closed_form():
  # 1.1 gamma^(k-1) - 0.1 by the geometric sum; at gamma 0.9 it is 0 near k = 24.
  assert _success_value(0.9, 1) == pytest.approx(1.0)
  assert _success_value(0.9, 3) == pytest.approx(-0.01 - 0.009 + 0.81)
  assert _success_value(0.9, 24) == pytest.approx(1.1 * 0.9**23 - 0.1, abs=1e-12)
  assert abs(_success_value(0.9, 24)) < 0.02


def test_stacking_horizon_reaches_the_scripts_successes():
  """The stacking script's successes on fixed seeds are worth > 0.25 at the start state under the config's gamma
  (under 0.9 the slowest is worth under 0.05)."""
  config = stacking_config.get_config("cpu")
  env = envs.make("stacking", stacking_config.get_config("smoke").env)
  steps = []
  try:
    for seed in (0, 2, 5):
      policy = policies.make("stacking", "scripted")
      obs, _ = env.reset(seed=seed)
      policy.reset(env, np.random.default_rng(seed))
      for k in range(1, env.max_steps + 1):
        obs, _, terminated, truncated, info = env.step(policy(obs))
        if terminated or truncated:
          break
      if info["success"]:
        steps.append(k)
  finally:
    env.close()
  assert len(steps) >= 2, steps
  assert all(k <= config.env.max_steps for k in steps)
  assert min(_success_value(config.train.gamma, k) for k in steps) > 0.25, (steps, config.train.gamma)
  assert _success_value(0.9, max(steps)) < 0.05, steps


@pytest.mark.parametrize("task", CONFIGS)
def test_target_cem_is_the_policy_cem(task):
  config = CONFIGS[task].get_config("cpu")
  assert update.UpdateConfig.from_config(config).target_cem == cem.CEMConfig.from_config(config.cem)


def _cem_actions(config) -> np.ndarray:
  """[B, 7] CEM argmax actions of a score that rewards turning (|u| -> 1) on random states."""
  score = lambda sa: jnp.abs(jnp.arctan2(sa[..., 3], sa[..., 4])) / math.pi + 0.1 * sa[..., 2]
  b = 6
  state = jnp.zeros((b, action_space.STATE_DIM))
  keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(b))
  action, _ = cem.maximize(score, state, keys, cem.CEMConfig.from_config(config.cem))
  return np.asarray(action)


def _yaw_change(env, action: np.ndarray) -> float:
  """The env's decoding of an action's rotation (visionary_jax/envs/robot_env.py)."""
  sin, cos = action[action_space.ROTATION]
  return math.atan2(float(sin), float(cos)) / math.pi * env.max_rotation


def test_grasping_yaw_agrees_between_data_cems_and_env():
  """The grasping script never turns, so neither CEM may: every action decodes to a yaw change of 0."""
  config = grasping_config.get_config("cpu")
  assert not config.cem.search_yaw
  smoke = grasping_config.get_config("smoke")
  env = envs.make("grasping", smoke.env)
  try:
    script = policies.make("grasping", "scripted", **{k: smoke.collect[k] for k in (
        "scripted_fraction", "noise", "aim_noise", "diagonal_prob", "early_close_prob", "random_aim_prob")})
    data_actions = []
    for seed in (0, 1):
      obs, _ = env.reset(seed=seed)
      script.reset(env, np.random.default_rng(seed))
      if not script.scripted:
        continue
      done = False
      while not done:
        a = script(obs)
        data_actions.append(a)
        obs, _, terminated, truncated, _ = env.step(a)
        done = terminated or truncated
    assert data_actions
    policy_actions = _cem_actions(config)
    target_config = update.UpdateConfig.from_config(config).target_cem
    assert not target_config.search_yaw
    for a in list(data_actions) + list(policy_actions):
      assert _yaw_change(env, a) == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(policy_actions[:, action_space.ROTATION], [[0.0, 1.0]] * len(policy_actions))
  finally:
    env.close()


def test_stacking_cem_searches_yaw_as_its_script_turns():
  config = stacking_config.get_config("cpu")
  assert config.cem.search_yaw
  actions = _cem_actions(config)
  env = envs.make("stacking", stacking_config.get_config("smoke").env)
  try:
    turns = [abs(_yaw_change(env, a)) for a in actions]
  finally:
    env.close()
  assert min(turns) > 0.5 * env.max_rotation  # the score rewards turning and CEM finds it

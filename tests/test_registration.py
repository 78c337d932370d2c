"""The package's public names and its gymnasium ids."""

import subprocess
import sys
import warnings

import gymnasium
from gymnasium.utils import env_checker
import pytest

import visionary_jax
from visionary_jax import envs
from visionary_jax import export
from visionary_jax import genotype as G
from visionary_jax.nets import qnetwork


def test_public_names_are_the_modules_objects():
  assert visionary_jax.QNetwork is qnetwork.QNetwork
  assert visionary_jax.Genotype is G.Genotype and visionary_jax.BASELINE is G.BASELINE
  assert visionary_jax.SearchSpace is G.SearchSpace
  assert visionary_jax.load_policy is export.load_policy
  assert visionary_jax.make_env is envs.make_env
  assert set(visionary_jax.__all__) <= set(dir(visionary_jax))
  with pytest.raises(AttributeError, match="no attribute 'nope'"):
    visionary_jax.nope  # pylint: disable=pointless-statement


def test_import_is_cheap_and_registers_the_ids():
  code = ("import sys, gymnasium, visionary_jax; "
          "print(sorted(m for m in ('jax', 'flax', 'pybullet', 'visionary_jax.envs') if m in sys.modules)); "
          "print(sorted(i for i in gymnasium.registry if i.startswith('visionary_jax/')))")
  lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
  assert lines == ["[]", "['visionary_jax/Grasping-v0', 'visionary_jax/Stacking-v0']"]


@pytest.mark.parametrize("env_id,task", [("visionary_jax/Grasping-v0", "grasping"),
                                          ("visionary_jax/Stacking-v0", "stacking")])
def test_gymnasium_make_passes_check_env(env_id, task):
  env = gymnasium.make(env_id, preset="smoke", max_steps=3, render_mode="rgb_array")
  try:
    assert env.unwrapped.max_steps == 3 and env.unwrapped.observation_space["image"].shape == (32, 32, 3)
    assert type(env.unwrapped).__name__.lower() == task
    with warnings.catch_warnings():
      warnings.simplefilter("error")  # gymnasium's checker reports what it finds as warnings
      env_checker.check_env(env.unwrapped)
  finally:
    env.close()


def test_gymnasium_make_rejects_an_unknown_preset_or_field():
  with pytest.raises(ValueError, match="preset must be one of"):
    gymnasium.make("visionary_jax/Grasping-v0", preset="huge")
  with pytest.raises(ValueError, match=r"unknown field\(s\) \['gravity'\]"):
    gymnasium.make("visionary_jax/Grasping-v0", preset="smoke", gravity=1.0)

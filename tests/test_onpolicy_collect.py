"""QT-Opt's on-policy round: an exported policy appends episodes to a scripted dataset."""

import numpy as np
import pytest

from conftest import perturbed_baseline
from experiments.configs import grasping
from visionary_jax import envs
from visionary_jax import export
from visionary_jax import genotype as G
from visionary_jax.episodes import collect
from visionary_jax.episodes import dataset as dataset_lib


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
  c = grasping.get_config("smoke")
  _, params = perturbed_baseline(c.network)
  return export.export(str(tmp_path_factory.mktemp("exports") / "baseline"), c, G.BASELINE, params, {}, 3)


def onpolicy_config(export_dir: str):
  c = grasping.get_config("smoke")
  c.collect.policy = "export"
  c.collect.export_dir = export_dir
  c.collect.scripted_fraction = 1.0
  return c


def test_export_episode_is_a_function_of_its_index(export_dir):
  c = onpolicy_config(export_dir)
  env = envs.make("grasping", c.env)
  try:
    policy = collect._make_policy("grasping", c.collect.to_dict())  # pylint: disable=protected-access
    first = collect.run_episode(env, policy, c.seed, 4)
    collect.run_episode(env, policy, c.seed, 5)
    again = collect.run_episode(env, policy, c.seed, 4)
  finally:
    env.close()
  np.testing.assert_array_equal(first.action, again.action)
  assert first.scripted  # the policy, not a uniform random episode, acted
  assert np.all(np.abs(first.action) <= 1.0)


def test_onpolicy_round_appends_to_a_scripted_dataset(export_dir, tmp_path):
  scripted = grasping.get_config("smoke")
  collect.collect(scripted, str(tmp_path), num_episodes=3, local_workers=1, print_fn=lambda line: None)
  result = collect.collect(onpolicy_config(export_dir), str(tmp_path), num_episodes=5, local_workers=1,
                           print_fn=lambda line: None)
  assert result["collected"] == 2 and result["complete"]
  data = dataset_lib.Dataset(str(tmp_path / "episodes"), image_size=scripted.network.image_size)
  assert data.num_episodes == 5


def test_export_policy_fields_are_checked(export_dir, tmp_path):
  c = grasping.get_config("smoke")
  c.collect.policy = "export"
  with pytest.raises(ValueError, match="collect.export_dir must name an export directory"):
    collect.collect(c, str(tmp_path), num_episodes=1, print_fn=lambda line: None)
  c = onpolicy_config(export_dir)
  c.env.image_size = 40
  with pytest.raises(ValueError, match="its network sees 32 px images, env.image_size is 40"):
    collect.collect(c, str(tmp_path), num_episodes=1, print_fn=lambda line: None)

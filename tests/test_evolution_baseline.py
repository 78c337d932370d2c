"""The evolutionary baseline's held-out split, subset replay and held-out Bellman error."""

import functools

import jax
import numpy as np
import pytest

import episode_fixtures
from experiments.configs import grasping
import update_fixtures
from visionary_jax import genotype as G
from visionary_jax.episodes import dataset as dataset_lib
from visionary_jax.episodes import sampler as sampler_lib
from visionary_jax.nets import qnetwork
from visionary_jax.qtopt import optimizer as optimizer_lib
from visionary_jax.qtopt import update
from visionary_jax.search import evolution_baseline


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  directory = tmp_path_factory.mktemp("episodes")
  # 12 episodes of lengths 1 + i % 5: 1 2 3 4 5 1 2 3 4 5 1 2, 33 transitions.
  episode_fixtures.write_dataset(str(directory), num_episodes=12, per_shard=4, image_size=32)
  return dataset_lib.Dataset(str(directory), image_size=32)


def test_holdout_split_hand_computed(data):
  train, heldout = dataset_lib.holdout_split(data, 5)
  # Episodes 0, 5 and 10 (one transition each) start at transitions 0, 1+2+3+4+5 = 15 and 15+15 = 30.
  np.testing.assert_array_equal(heldout, [0, 15, 30])
  np.testing.assert_array_equal(train, sorted(set(range(33)) - {0, 15, 30}))
  _, heldout = dataset_lib.holdout_split(data, 6)  # episodes 0 and 6: transitions 0 and 15 + 1 = 16, 17
  np.testing.assert_array_equal(heldout, [0, 16, 17])
  with pytest.raises(ValueError, match="'holdout_every' must be an integer >= 2"):
    dataset_lib.holdout_split(data, 1)


def test_subset_sampler_draws_only_the_subset_and_resumes(data):
  subset = np.array([3, 4, 20])
  sampler = sampler_lib.ReplaySampler(data, batch_size=6, num_devices=2, seed=7, prefetch=2, subset=subset)
  first = [next(sampler) for _ in range(3)]
  assert first[0]["reward"].shape == (2, 3)
  for k in range(3):
    assert set(sampler.indices(k)) <= set(subset.tolist())
  state = sampler.state()
  later = next(sampler)
  sampler.close()
  again = sampler_lib.ReplaySampler(data, batch_size=6, num_devices=2, seed=7, prefetch=0, subset=subset)
  again.restore(state)
  np.testing.assert_array_equal(next(again)["action"], later["action"])
  with pytest.raises(ValueError, match="at least one transition"):
    sampler_lib.ReplaySampler(data, 6, 1, 0, 0, subset=np.array([], np.int64))


@pytest.mark.slow  # compiles a QT-Opt update and the held-out loss
def test_heldout_loss_is_the_loss_of_the_update():
  # The held-out Bellman error of a state on a batch equals the loss the update reports for that batch
  # before stepping, when the target CEM keys agree (the same rng and step) and the update does
  # not augment its images (the held-out error never does).
  cfg = update_fixtures.config("smoke")
  cfg.train.augment_shift = 0
  network = qnetwork.build(cfg.network, G.BASELINE)
  state = update_fixtures.initial_state(network, cfg)
  batch = update.random_batch(network.spec.image_size, 8, 1, seed=3)
  flat = {k: v[0] for k, v in batch.items()}
  update_config = update.UpdateConfig.from_config(cfg)
  heldout_loss = jax.jit(functools.partial(evolution_baseline.heldout_loss, network=network, config=update_config))
  loss = heldout_loss(state.trainable, state.target, state.lagged, flat, state.rng, state.step)
  _, metrics = jax.jit(functools.partial(update.train_step, network=network,
                                         optimizer=optimizer_lib.make(cfg.train), config=update_config))(state, flat)
  assert float(loss) == pytest.approx(float(metrics["loss"]), rel=1e-5)


@pytest.mark.parametrize("preset,seeds", [("paper", 15), ("cpu", 5)])
def test_preset_budgets(preset, seeds):
  study = grasping.get_config(preset).study
  assert study.seeds == seeds and study.retrain_steps == study.search_steps
  # The evolution's fitness runs add up to the steps of one one-shot search.
  evo = study.evolution
  assert (evo.population_size + evo.cycles) * evo.fitness_steps == study.search_steps
  assert 1 <= evo.sample_size <= evo.population_size

"""The Q-networks: one-hot supernet == derived network, encode/score == forward, input checks, paper preset."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import ml_collections
import pytest

import arch_fixtures
from conftest import perturbed
from conftest import random_inputs
from experiments.configs import base
from visionary_jax import genotype as G
from visionary_jax.nets import qnetwork
from visionary_jax.nets import transfer

GENOTYPES = {
    "baseline": G.BASELINE,
    "every_op": G.Genotype(ops=("noop", "conv_filter", "hadamard", "concat", "add"),
                           attention=((), ("action", "dilated4"), ("loc0", "loc2"), (), ("action", "loc3", "dilated2"))),
    "early_hadamard": G.Genotype(ops=("hadamard", "noop", "noop", "noop", "noop"), attention=(("loc0",),) + ((),) * 4),
    "attention_only_action": G.Genotype(ops=("noop",) * 5, attention=((), (), (), ("action", "loc1"), ())),
    "late_concat": G.Genotype(ops=("noop", "noop", "noop", "noop", "concat"),
                              attention=(("loc0",), ("dilated2", "loc1"), (), (), ())),
}
SPACES = {
    "full": G.SearchSpace(),
    "fusion_only": G.SearchSpace(fusion=True, attention=False),
    "attention_only": G.SearchSpace(fusion=False, attention=True),
}


@pytest.fixture(scope="module")
def search_params(smoke_spec):
  """Perturbed weights of the full search network (a superset of every space's weights)."""
  net = qnetwork.QNetwork(smoke_spec, G.SearchSpace())
  return perturbed(jax.jit(lambda: qnetwork.init_variables(net, jax.random.PRNGKey(0)))()["params"])


def _restrict(params, net):
  """The entries of `params` that `net` has (ablation spaces have fewer weights)."""
  shapes = jax.eval_shape(lambda: qnetwork.init_variables(net, jax.random.PRNGKey(0)))["params"]
  subset = lambda shape, full: ({k: subset(v, full[k]) for k, v in shape.items()} if isinstance(shape, dict) else full)
  return subset(shapes, params)


def _applicable(space, genotype):
  return ((space.fusion or genotype.ops == space.fixed.ops) and
          (space.attention or genotype.attention == space.fixed.attention))


@pytest.mark.parametrize("space_name,genotype_name", [
    (s, g) for s in SPACES for g in GENOTYPES if _applicable(SPACES[s], GENOTYPES[g])])
def test_one_hot_supernet_equals_derived_network(smoke_spec, search_params, space_name, genotype_name):
  space, genotype = SPACES[space_name], GENOTYPES[genotype_name]
  search_net = qnetwork.QNetwork(smoke_spec, space)
  arch = arch_fixtures.one_hot_arch(genotype, space)
  search_vars = {"params": _restrict(search_params, search_net), "arch": arch}
  assert G.derive(arch, space) == genotype
  derived_net = qnetwork.QNetwork(smoke_spec, genotype)
  derived_vars = transfer.transfer_weights(search_vars, space, genotype, smoke_spec)
  image, state_action = random_inputs(smoke_spec, batch=6)
  q_search = qnetwork.q_value(search_net.apply(search_vars, image, state_action))
  q_derived = qnetwork.q_value(derived_net.apply(derived_vars, image, state_action))
  chex.assert_trees_all_close(q_search, q_derived, atol=1e-5)
  assert float(jnp.std(q_derived)) > 1e-3  # the check compares informative outputs


def test_derived_network_has_fewer_parameters(smoke_spec):
  count = lambda arch: sum(x.size for x in jax.tree_util.tree_leaves(jax.eval_shape(
      lambda: qnetwork.init_variables(qnetwork.QNetwork(smoke_spec, arch), jax.random.PRNGKey(0)))["params"]))
  assert count(G.BASELINE) < count(GENOTYPES["every_op"]) < count(G.SearchSpace())


@pytest.mark.parametrize("arch", [G.BASELINE, GENOTYPES["every_op"], GENOTYPES["attention_only_action"],
                                  G.SearchSpace(), G.SearchSpace(fusion=False, attention=False)],
                         ids=["baseline", "every_op", "split_at_3", "search", "search_nothing"])
def test_score_of_encode_equals_forward(smoke_spec, arch):
  net = qnetwork.QNetwork(smoke_spec, arch)
  variables = qnetwork.init_variables(net, jax.random.PRNGKey(0))
  variables = dict(variables, params=perturbed(variables["params"]))
  image, _ = random_inputs(smoke_spec, batch=3)
  n = 4
  _, candidates = random_inputs(smoke_spec, batch=3 * n, seed=1)
  candidates = candidates.reshape(3, n, -1)
  embedding = net.apply(variables, image, method=qnetwork.QNetwork.encode)
  scores = net.apply(variables, embedding, candidates, method=qnetwork.QNetwork.score)
  chex.assert_shape(scores, (3, n))
  full = jax.vmap(lambda sa: net.apply(variables, image, sa), in_axes=1, out_axes=1)(candidates)
  chex.assert_trees_all_close(scores, full, atol=1e-5)
  assert float(jnp.std(scores)) > 1e-4


def test_encode_stops_before_the_first_action_location(smoke_spec):
  sizes = smoke_spec.spatial_sizes()
  for arch, location in [(G.BASELINE, 1), (GENOTYPES["attention_only_action"], 3), (G.SearchSpace(), 0)]:
    net = qnetwork.QNetwork(smoke_spec, arch)
    variables = qnetwork.init_variables(net, jax.random.PRNGKey(0))
    image, _ = random_inputs(smoke_spec, batch=2)
    embedding = net.apply(variables, image, method=qnetwork.QNetwork.encode)
    chex.assert_shape(embedding["features"], (2, sizes[location], sizes[location], smoke_spec.channels))


@pytest.mark.parametrize("image,state_action,message", [
    (jnp.zeros((2, 32, 32, 3), jnp.float32), jnp.zeros((2, 9)), r"image must be uint8 \[B, 32, 32, 3\], got float32"),
    (jnp.zeros((2, 30, 32, 3), jnp.uint8), jnp.zeros((2, 9)), r"image must be uint8 \[B, 32, 32, 3\], got uint8 \[2, 30"),
    (jnp.zeros((2, 32, 32, 3), jnp.uint8), jnp.zeros((2, 7)), r"state_action must be float \[2, 9\], got float32 \[2, 7\]"),
    (jnp.zeros((2, 32, 32, 3), jnp.uint8), jnp.zeros((3, 9)), r"state_action must be float \[2, 9\]"),
    (jnp.zeros((2, 32, 32, 3), jnp.uint8), jnp.zeros((2, 9), jnp.int32), r"state_action must be float .* got int32"),
])
def test_bad_inputs_are_named(smoke_spec, image, state_action, message):
  net = qnetwork.QNetwork(smoke_spec, G.BASELINE)
  variables = qnetwork.init_variables(net, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match=message):
    net.apply(variables, image, state_action)


def test_score_rejects_flat_state_action(smoke_spec):
  net = qnetwork.QNetwork(smoke_spec, G.BASELINE)
  variables = qnetwork.init_variables(net, jax.random.PRNGKey(0))
  image, state_action = random_inputs(smoke_spec, batch=2)
  embedding = net.apply(variables, image, method=qnetwork.QNetwork.encode)
  with pytest.raises(ValueError, match=r"state_action must be float \[2, N, 9\]"):
    net.apply(variables, embedding, state_action, method=qnetwork.QNetwork.score)


@pytest.mark.parametrize("field,value,message", [
    ("channels", 0, "'channels' must be a positive integer"),
    ("norm_groups", 3, "'norm_groups' \\(3\\) must divide 'channels' \\(8\\)"),
    ("block4_padding", "FULL", "'block4_padding' must be SAME or VALID"),
    ("image_size", 8, "image_size 8 is too small"),
    ("block2_depth", 1, "must be >= 2"),
])
def test_bad_network_config_is_named(field, value, message):
  config = base.network("smoke")
  config[field] = value
  with pytest.raises(ValueError, match=message):
    qnetwork.NetworkSpec.from_config(config)


def test_missing_network_config_field_is_named():
  config = ml_collections.ConfigDict(base.network("smoke").to_dict())
  del config["pool2"]
  with pytest.raises(ValueError, match=r"missing fields \['pool2'\]"):
    qnetwork.NetworkSpec.from_config(config)


def test_transfer_rejects_weights_of_another_trunk(smoke_spec):
  other = qnetwork.NetworkSpec.from_config(ml_collections.ConfigDict(dict(base.network("smoke").to_dict(), channels=16)))
  net = qnetwork.QNetwork(other, G.SearchSpace())
  variables = qnetwork.init_variables(net, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="parameter .*: search weights have shape"):
    transfer.transfer_weights(variables, G.SearchSpace(), G.BASELINE, smoke_spec)


@pytest.mark.slow
@pytest.mark.parametrize("arch", [G.BASELINE, G.SearchSpace()], ids=["baseline", "search"])
def test_paper_preset_forward_at_batch_one(arch):
  spec = qnetwork.NetworkSpec.from_config(base.network("paper"))
  assert spec.spatial_sizes() == (78, 26, 26, 13, 7)
  net = qnetwork.QNetwork(spec, arch)
  variables = jax.jit(lambda: qnetwork.init_variables(net, jax.random.PRNGKey(0)))()
  image, state_action = random_inputs(spec, batch=1)
  q = qnetwork.q_value(jax.jit(net.apply)(variables, image, state_action))
  chex.assert_shape(q, (1,))
  chex.assert_tree_all_finite(q)


def test_unknown_network_config_field_is_named():
  config = ml_collections.ConfigDict(dict(base.network("smoke").to_dict(), chanels=8))
  with pytest.raises(ValueError, match=r"network config has unknown fields \['chanels'\]"):
    qnetwork.NetworkSpec.from_config(config)


def test_coord_channels_feed_the_stem_and_nothing_else(smoke_spec):
  """With the coordinate channels' stem weights zeroed, the network equals the plain one."""
  plain = qnetwork.QNetwork(smoke_spec, G.BASELINE)
  coord = qnetwork.QNetwork(dataclasses.replace(smoke_spec, coord_channels=True), G.BASELINE)
  variables = qnetwork.init_variables(coord, jax.random.PRNGKey(0))
  kernel = variables["params"]["conv1"]["kernel"]
  assert kernel.shape[2] == 5
  image, state_action = random_inputs(smoke_spec, batch=2)
  out = coord.apply(variables, image, state_action)
  zeroed = jax.tree_util.tree_map(lambda x: x, variables)
  zeroed["params"]["conv1"]["kernel"] = kernel.at[:, :, 3:].set(0.0)
  narrowed = jax.tree_util.tree_map(lambda x: x, variables)
  narrowed["params"]["conv1"]["kernel"] = kernel[:, :, :3]
  chex.assert_trees_all_close(coord.apply(zeroed, image, state_action), plain.apply(narrowed, image, state_action),
                              rtol=1e-5, atol=1e-6)
  assert float(jnp.max(jnp.abs(out - coord.apply(zeroed, image, state_action)))) > 1e-4

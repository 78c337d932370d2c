"""Export directories and load_policy: round trip, search export, mismatches, the policy's actions."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

import arch_fixtures
from conftest import perturbed
from conftest import perturbed_baseline
from experiments.configs import grasping
from visionary_jax import export
from visionary_jax import genotype as G
from visionary_jax.nets import qnetwork
from visionary_jax.qtopt import cem

OTHER = G.Genotype(ops=("noop", "concat", "noop", "noop", "noop"), attention=((), ("action",), (), (), ()))


@pytest.fixture(scope="module")
def cfg():
  return grasping.get_config("smoke")


@pytest.fixture(scope="module")
def baseline_export(cfg, tmp_path_factory):
  net, params = perturbed_baseline(cfg.network)
  directory = export.export(str(tmp_path_factory.mktemp("exports") / "baseline"), cfg, G.BASELINE, params, {}, 7)
  return directory, net, params


def test_round_trip_and_policy_maximises_the_exported_q(cfg, baseline_export):
  directory, net, params = baseline_export
  assert sorted(os.listdir(directory)) == sorted(export.FILES)
  manifest = json.load(open(os.path.join(directory, "export.json")))
  assert manifest["step"] == 7 and manifest["format"] == export.FORMAT
  policy = export.load_policy(directory, seed=3)
  assert policy.genotype == G.BASELINE
  jax.tree_util.tree_map(np.testing.assert_array_equal, policy.variables["params"], jax.device_get(params))
  rng = np.random.default_rng(0)
  s = cfg.network.image_size
  observation = {"image": rng.integers(0, 256, (s, s, 3), dtype=np.uint8),
                 "gripper_closed": np.array([0.0], np.float32), "height": np.array([0.2], np.float32)}
  action = policy(observation)
  assert action.shape == (7,) and action.dtype == np.float32
  assert np.all(np.abs(action[:3]) <= 1) and np.isclose(action[3] ** 2 + action[4] ** 2, 1, atol=1e-5)
  assert sorted(action[5:7]) == [0.0, 1.0]
  # The chosen action scores at least as well as a random one under the exported network.
  sa = lambda a: np.concatenate([a, [0.0, 0.2]])[None].astype(np.float32)
  q = lambda a: float(net.apply({"params": params}, observation["image"][None], sa(a))[0])
  random_actions = [cem.to_action(rng.uniform(-1, 1, 4).astype(np.float32), np.array(k % 2)) for k in range(8)]
  assert q(action) >= max(q(np.asarray(a)) for a in random_actions)


def test_search_run_exports_its_derived_network(cfg, tmp_path):
  space = G.SearchSpace(fusion=True, attention=False)
  net = qnetwork.build(cfg.network, space)
  variables = jax.jit(lambda: qnetwork.init_variables(net, jax.random.PRNGKey(0)))()
  fusion_only = G.Genotype(ops=OTHER.ops, attention=((),) * 5)
  arch = arch_fixtures.one_hot_arch(fusion_only, space)
  directory = export.export(str(tmp_path / "search"), cfg, space, perturbed(variables["params"]), arch, 3)
  policy = export.load_policy(directory)
  assert policy.genotype == fusion_only
  assert json.load(open(os.path.join(directory, "export.json")))["trained"] == "search (derived)"


def test_mismatched_genotype_and_weights_fail_clearly(baseline_export, tmp_path):
  directory = str(tmp_path / "bad")
  shutil.copytree(baseline_export[0], directory)
  G.save_json(OTHER, os.path.join(directory, "genotype.json"))
  with pytest.raises(ValueError, match="variables.npz does not match genotype.json"):
    export.load_policy(directory)


def test_missing_or_bad_files_are_named(baseline_export, tmp_path):
  directory = str(tmp_path / "partial")
  shutil.copytree(baseline_export[0], directory)
  os.remove(os.path.join(directory, "variables.npz"))
  with pytest.raises(ValueError, match="missing variables.npz"):
    export.load_policy(directory)
  with open(os.path.join(directory, "config.json"), "w") as f:
    f.write("{not json")
  with pytest.raises(ValueError, match="config.json is malformed JSON"):
    export.load_policy(directory)
  with open(os.path.join(directory, "config.json"), "wb") as f:
    f.write(b'{"task": "grasping\xff"}')
  with pytest.raises(ValueError, match=f"export {directory}: config.json is not UTF-8 text \\(byte 0xff at offset 18\\)"):
    export.load_policy(directory)
  with pytest.raises(ValueError, match="is not a directory"):
    export.load_policy(str(tmp_path / "nowhere"))


def test_a_genotype_that_is_not_utf8_names_the_export(baseline_export, tmp_path):
  directory = str(tmp_path / "latin1")
  shutil.copytree(baseline_export[0], directory)
  with open(os.path.join(directory, "genotype.json"), "ab") as f:
    f.write(b"\xe9")
  with pytest.raises(ValueError, match=f"export {directory}: genotype file {directory}/genotype.json: not UTF-8"):
    export.load_policy(directory)


def test_reexport_replaces_the_directory(cfg, baseline_export):
  directory, _, params = baseline_export
  export.export(directory, cfg, G.BASELINE, params, {}, 9)
  assert json.load(open(os.path.join(directory, "export.json")))["step"] == 9
  assert not [n for n in os.listdir(os.path.dirname(directory)) if n.startswith(".")]

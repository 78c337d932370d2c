"""Export a trained network for evaluation, and load it back as a policy.

An export directory holds
  export.json     format, version, training step, what was trained
  genotype.json   the network's discrete architecture (visionary_jax.genotype)
  variables.npz   inference weights, one array per parameter path ("params.conv1.kernel"),
                  read with allow_pickle=False
  config.json     the run's config (the policy uses its `network` and `cem` sections)
A search run exports its derived network: the genotype derived from the
architecture logits, with the searched weights transferred to it.

`load_policy(dir)` needs only this directory: `policy(observation) -> action`
runs a jitted CEM (encode once, score all candidates per iteration) on the
network, for any control loop.
"""

import json
import os
import shutil
import tempfile
from typing import Any, Mapping, Sequence

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from visionary_jax import atomic
from visionary_jax import genotype as genotype_lib
from visionary_jax.nets import qnetwork
from visionary_jax.nets import transfer
from visionary_jax.qtopt import cem

FORMAT = "visionary_jax.export"
VERSION = 1
FILES = ("export.json", "genotype.json", "variables.npz", "config.json")


def _flat(params) -> dict[str, np.ndarray]:
  return {k: np.asarray(v) for k, v in flax.traverse_util.flatten_dict(flax.core.unfreeze(params), sep=".").items()}


def inference_network(config: ml_collections.ConfigDict, arch: genotype_lib.Genotype | genotype_lib.SearchSpace,
                      params, arch_params) -> tuple[genotype_lib.Genotype, dict[str, Any]]:
  """(genotype, {"params": ...}) to export: the network itself, or the one derived from a search."""
  if isinstance(arch, genotype_lib.SearchSpace):
    genotype = genotype_lib.derive(arch_params, arch)
    spec = qnetwork.NetworkSpec.from_config(config.network)
    return genotype, transfer.transfer_weights({"params": params, "arch": arch_params}, arch, genotype, spec)
  return arch, {"params": params}


def export(directory: str, config: ml_collections.ConfigDict,
           arch: genotype_lib.Genotype | genotype_lib.SearchSpace, params, arch_params, step: int) -> str:
  """Writes the export directory atomically (built beside it, then renamed into place); returns it."""
  genotype, variables = inference_network(config, arch, params, arch_params)
  directory = os.path.abspath(directory)
  parent = os.path.dirname(directory)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(directory)}.tmp-")
  try:
    weights = (genotype_lib.architecture_weights(arch_params, arch) if isinstance(arch, genotype_lib.SearchSpace)
               else None)
    genotype_lib.save_json(genotype, os.path.join(tmp, "genotype.json"), extra=weights)
    atomic.write(os.path.join(tmp, "variables.npz"), lambda f: np.savez(f, **_flat(variables["params"])))
    atomic.write_json(os.path.join(tmp, "config.json"), json.loads(config.to_json()))
    atomic.write_json(os.path.join(tmp, "export.json"), {
        "format": FORMAT, "version": VERSION, "step": int(step),
        "trained": "search (derived)" if isinstance(arch, genotype_lib.SearchSpace) else "genotype",
        "num_parameters": int(sum(v.size for v in _flat(variables["params"]).values()))})
    old = None
    if os.path.exists(directory):
      old = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(directory)}.old-")
      os.rename(directory, os.path.join(old, "export"))
    os.rename(tmp, directory)
    if old:
      shutil.rmtree(old)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return directory


def _read_json(directory: str, name: str):
  path = os.path.join(directory, name)
  if not os.path.isfile(path):
    raise ValueError(f"export {directory}: missing {name}; an export directory holds {list(FILES)}")
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except UnicodeDecodeError as e:
    raise ValueError(f"export {directory}: {name} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset "
                     f"{e.start})") from None
  except json.JSONDecodeError as e:
    raise ValueError(f"export {directory}: {name} is malformed JSON ({e})") from None


def load_variables(directory: str, network: qnetwork.QNetwork) -> dict[str, Any]:
  """variables.npz checked parameter by parameter against the network genotype.json describes."""
  path = os.path.join(directory, "variables.npz")
  if not os.path.isfile(path):
    raise ValueError(f"export {directory}: missing variables.npz")
  shapes = jax.eval_shape(lambda: qnetwork.init_variables(network, jax.random.PRNGKey(0)))["params"]
  expected = flax.traverse_util.flatten_dict(flax.core.unfreeze(shapes), sep=".")
  with np.load(path, allow_pickle=False) as data:
    stored = {k: data[k] for k in data.files}
  missing = sorted(set(expected) - set(stored))
  extra = sorted(set(stored) - set(expected))
  if missing or extra:
    raise ValueError(f"export {directory}: variables.npz does not match genotype.json (were they written by "
                     f"different runs?): the genotype needs {missing[:4]}{' ...' if len(missing) > 4 else ''}, "
                     f"the weights also have {extra[:4]}{' ...' if len(extra) > 4 else ''}")
  for name, shape in expected.items():
    if stored[name].shape != shape.shape:
      raise ValueError(f"export {directory}: parameter {name} has shape {stored[name].shape}, "
                       f"genotype.json and config.json need {shape.shape}")
  params = flax.traverse_util.unflatten_dict({tuple(k.split(".")): jnp.asarray(v) for k, v in stored.items()})
  return {"params": params}


class Policy:
  """A CEM policy over an exported Q-network: `policy(observation) -> action [7]`.

  Attributes:
    network: the QNetwork built from genotype.json and config.json.
    variables: its inference variables.
    cem_config: the CEM sizes of config.json's `cem` section.
    genotype: the exported architecture.
  """

  def __init__(self, network: qnetwork.QNetwork, variables: Mapping[str, Any], cem_config: cem.CEMConfig,
               genotype: genotype_lib.Genotype, seed: int = 0):
    self.network = network
    self.variables = variables
    self.cem_config = cem_config
    self.genotype = genotype
    self.reseed(seed)
    self._act = jax.jit(self._batched)

  def reseed(self, seed: int) -> None:
    """Restarts the CEM random stream: call k after reseed(s) uses fold_in(PRNGKey(s), k)."""
    self._key = jax.random.PRNGKey(seed)
    self._calls = 0

  def _batched(self, variables, image, state, key):
    keys = jax.random.split(key, image.shape[0])
    action, logit = cem.argmax_q(self.network, variables, image, state, keys, self.cem_config)
    return action, qnetwork.q_value(logit)

  def act_batch(self, image: np.ndarray, gripper_closed: np.ndarray, height: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """image uint8 [B, S, S, 3], gripper_closed [B], height [B] -> (actions [B, 7], Q values [B])."""
    image = np.asarray(image)
    qnetwork.check_image(image, self.network.spec.image_size)
    b = image.shape[0]
    state = np.stack([np.asarray(gripper_closed, np.float32).reshape(b), np.asarray(height, np.float32).reshape(b)],
                     axis=-1)
    key = jax.random.fold_in(self._key, self._calls)
    self._calls += 1
    action, q = self._act(self.variables, image, state, key)
    return np.asarray(action), np.asarray(q)

  def __call__(self, observation: Mapping[str, np.ndarray]) -> np.ndarray:
    """observation {"image": uint8 [S, S, 3], "gripper_closed": [1], "height": [1]} -> action float32 [7]."""
    for key in ("image", "gripper_closed", "height"):
      if key not in observation:
        raise ValueError(f"observation lacks {key!r}; it needs image, gripper_closed and height")
    action, _ = self.act_batch(np.asarray(observation["image"])[None], np.asarray(observation["gripper_closed"]),
                               np.asarray(observation["height"]))
    return action[0].astype(np.float32)


def policy_cem_config(cem_section: Mapping[str, Any], cem_overrides: Mapping[str, Any] | None = None) -> cem.CEMConfig:
  """The policy's CEM sizes: an export config's `cem` section, `cem_overrides` replacing fields.

  Raises ValueError naming the field when the result is not a valid CEM config.
  """
  return cem.CEMConfig.from_config(ml_collections.ConfigDict(dict(cem_section, **(cem_overrides or {}))))


def read_config(directory: str, sections: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """The run config an export was written with; ValueError names the file if the export or a section is missing."""
  directory = os.path.abspath(directory)
  if not os.path.isdir(directory):
    raise ValueError(f"export {directory} is not a directory")
  manifest = _read_json(directory, "export.json")
  if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
    raise ValueError(f"export {directory}: export.json is not a {FORMAT} v{VERSION} manifest")
  config = ml_collections.ConfigDict(_read_json(directory, "config.json"))
  for section in sections:
    if section not in config:
      raise ValueError(f"export {directory}: config.json lacks the {section!r} section")
  return config


def load_policy(directory: str, seed: int = 0, cem_overrides: Mapping[str, Any] | None = None) -> Policy:
  """The exported network as a Policy; every inconsistency is a ValueError naming the file."""
  directory = os.path.abspath(directory)
  config = read_config(directory, ("network", "cem"))
  try:
    genotype = genotype_lib.load_json(os.path.join(directory, "genotype.json"))
  except ValueError as e:
    raise ValueError(f"export {directory}: {e}") from None
  network = qnetwork.QNetwork(qnetwork.NetworkSpec.from_config(config.network), genotype)
  try:
    cem_config = policy_cem_config(config.cem, cem_overrides)
  except ValueError as e:
    raise ValueError(f"export {directory}: config.json: {e}") from None
  return Policy(network, load_variables(directory, network), cem_config, genotype, seed)


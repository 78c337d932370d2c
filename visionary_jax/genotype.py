"""Discrete architectures (genotypes), the search space around them, and derivation.

A Genotype says, for each of the 5 merge locations of the trunk (paper Fig. 4),
which action-merging op is used (Eq. 3, after pruning) and which peer-attention
edges are kept (Eq. 4). The QT-Opt baseline is itself a genotype: `add` at the
location after the second pooling, nothing elsewhere (Fig. 5c).

Names used throughout (they are also the genotype JSON vocabulary):
  ops         "noop", "add", "concat", "hadamard", "conv_filter"
  candidates  at location i: "action", "loc0" ... "loc{i}" (the outputs of
              earlier locations and this location's own fused input), and,
              from location 1 on, "dilated2" and "dilated4" (the parallel
              dilated convolutions that feed only peer attention).
"""

import dataclasses
import json
from typing import Any, Mapping

import numpy as np

from visionary_jax import atomic

OPS = ("noop", "add", "concat", "hadamard", "conv_filter")
NUM_LOCATIONS = 5
BASELINE_LOCATION = 1  # after the second max-pool, where Grasping44 adds the action
DILATION_RATES = (2, 4)
DILATED_FROM_LOCATION = 1  # the dilated branches read the input of this location
JSON_FORMAT = "visionary_jax.genotype"
JSON_VERSION = 1


def dilated_name(rate: int) -> str:
  return f"dilated{rate}"


def attention_candidates(location: int) -> tuple[str, ...]:
  """All peer-attention sources that location `location` may attend to, in canonical order."""
  if not 0 <= location < NUM_LOCATIONS:
    raise ValueError(f"location must be in [0, {NUM_LOCATIONS}), got {location}")
  names = ["action"] + [f"loc{j}" for j in range(location + 1)]
  if location >= DILATED_FROM_LOCATION:
    names += [dilated_name(r) for r in DILATION_RATES]
  return tuple(names)


@dataclasses.dataclass(frozen=True)
class Genotype:
  """A discrete architecture.

  Attributes:
    ops: [5] merge op per location, each one of OPS.
    attention: [5] tuples of kept attention sources per location, each a subset
      of `attention_candidates(location)` in canonical order.
  """

  ops: tuple[str, ...]
  attention: tuple[tuple[str, ...], ...]

  def __post_init__(self):
    ops = tuple(self.ops)
    attention = tuple(tuple(a) for a in self.attention)
    if len(ops) != NUM_LOCATIONS:
      raise ValueError(f"genotype field 'ops' needs {NUM_LOCATIONS} entries, got {len(ops)}")
    if len(attention) != NUM_LOCATIONS:
      raise ValueError(f"genotype field 'attention' needs {NUM_LOCATIONS} entries, got {len(attention)}")
    for i, op in enumerate(ops):
      if op not in OPS:
        raise ValueError(f"genotype field 'ops' at location {i}: unknown op {op!r}; known ops are {OPS}")
    canonical = []
    for i, edges in enumerate(attention):
      allowed = attention_candidates(i)
      for e in edges:
        if e not in allowed:
          raise ValueError(f"genotype field 'attention' at location {i}: unknown or future source {e!r}; "
                           f"location {i} may attend to {allowed}")
      if len(set(edges)) != len(edges):
        raise ValueError(f"genotype field 'attention' at location {i}: repeated source in {edges}")
      canonical.append(tuple(c for c in allowed if c in edges))
    object.__setattr__(self, "ops", ops)
    object.__setattr__(self, "attention", tuple(canonical))
    if self.first_action_location is None:
      raise ValueError("genotype never uses the action: every location is 'noop' and no attention edge "
                       "reads 'action', so Q(s, a) would not depend on a")

  @property
  def first_action_location(self) -> int | None:
    """Index of the first location whose output depends on the action, or None."""
    for i in range(NUM_LOCATIONS):
      if self.ops[i] != "noop" or "action" in self.attention[i]:
        return i
    return None

  @property
  def dilation_rates(self) -> tuple[int, ...]:
    """Rates of the dilated branches that some kept edge reads."""
    return tuple(r for r in DILATION_RATES if any(dilated_name(r) in edges for edges in self.attention))

  # The interface a network is built from, shared with SearchSpace.
  attention_gated = False

  def fusion_ops(self, location: int) -> tuple[str, ...]:
    return (self.ops[location],)

  def attention_sources(self, location: int) -> tuple[str, ...]:
    return self.attention[location]

  def to_json_dict(self) -> dict[str, Any]:
    return {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "locations": [{"location": i, "op": self.ops[i], "attention": list(self.attention[i])}
                      for i in range(NUM_LOCATIONS)],
    }

  @classmethod
  def from_json_dict(cls, data: Any) -> "Genotype":
    """Builds a genotype from parsed JSON, raising ValueError that names the bad field."""
    if not isinstance(data, dict):
      raise ValueError(f"genotype JSON must be an object, got {type(data).__name__}")
    for field in ("format", "version", "locations"):
      if field not in data:
        raise ValueError(f"genotype JSON is missing field {field!r}")
    if data["format"] != JSON_FORMAT:
      raise ValueError(f"genotype JSON field 'format' must be {JSON_FORMAT!r}, got {data['format']!r}")
    if data["version"] != JSON_VERSION:
      raise ValueError(f"genotype JSON field 'version' must be {JSON_VERSION}, got {data['version']!r}")
    locations = data["locations"]
    if not isinstance(locations, list):
      raise ValueError("genotype JSON field 'locations' must be a list")
    ops: list[str | None] = [None] * NUM_LOCATIONS
    attention: list[tuple[str, ...] | None] = [None] * NUM_LOCATIONS
    for k, entry in enumerate(locations):
      where = f"locations[{k}]"
      if not isinstance(entry, dict):
        raise ValueError(f"genotype JSON field '{where}' must be an object")
      for field in ("location", "op", "attention"):
        if field not in entry:
          raise ValueError(f"genotype JSON field '{where}' is missing field {field!r}")
      unknown = set(entry) - {"location", "op", "attention", "op_weights", "attention_weights"}
      if unknown:
        raise ValueError(f"genotype JSON field '{where}' has unknown fields {sorted(unknown)}")
      i = entry["location"]
      if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < NUM_LOCATIONS:
        raise ValueError(f"genotype JSON field '{where}.location' must be an integer in "
                         f"[0, {NUM_LOCATIONS}), got {i!r}")
      if ops[i] is not None:
        raise ValueError(f"genotype JSON field '{where}.location': location {i} is given twice")
      if not isinstance(entry["op"], str):
        raise ValueError(f"genotype JSON field '{where}.op' must be a string")
      edges = entry["attention"]
      if not isinstance(edges, list) or not all(isinstance(e, str) for e in edges):
        raise ValueError(f"genotype JSON field '{where}.attention' must be a list of strings")
      ops[i] = entry["op"]
      attention[i] = tuple(edges)
    missing = [i for i in range(NUM_LOCATIONS) if ops[i] is None]
    if missing:
      raise ValueError(f"genotype JSON field 'locations' is missing locations {missing}")
    return cls(ops=tuple(ops), attention=tuple(attention))

  def describe(self) -> str:
    """One line per location, e.g. `loc1: add      attention <- action, loc0`."""
    lines = []
    for i in range(NUM_LOCATIONS):
      edges = ", ".join(self.attention[i]) or "-"
      lines.append(f"loc{i}: {self.ops[i]:<11} attention <- {edges}")
    return "\n".join(lines)


BASELINE = Genotype(
    ops=tuple("add" if i == BASELINE_LOCATION else "noop" for i in range(NUM_LOCATIONS)),
    attention=((),) * NUM_LOCATIONS,
)


@dataclasses.dataclass(frozen=True)
class SearchSpace:
  """What the one-shot search network searches (paper Fig. 4 and the Table II ablations).

  Attributes:
    fusion: search the merge op at every location (supernet modules, Eq. 3);
      otherwise use `fixed.ops`.
    attention: search the peer-attention edges at every location (Eq. 4) with
      the dilated branches; otherwise use `fixed.attention`.
    fixed: the genotype whose parts are kept where nothing is searched.
  """

  fusion: bool = True
  attention: bool = True
  fixed: Genotype = BASELINE

  def fusion_ops(self, location: int) -> tuple[str, ...]:
    return OPS if self.fusion else (self.fixed.ops[location],)

  def attention_sources(self, location: int) -> tuple[str, ...]:
    return attention_candidates(location) if self.attention else self.fixed.attention[location]

  @property
  def attention_gated(self) -> bool:
    return self.attention

  @property
  def first_action_location(self) -> int | None:
    return 0 if self.fusion or self.attention else self.fixed.first_action_location

  @property
  def dilation_rates(self) -> tuple[int, ...]:
    return DILATION_RATES if self.attention else self.fixed.dilation_rates


def save_json(genotype: Genotype, path: str, extra: Mapping[str, Any] | None = None) -> None:
  """Writes the genotype atomically (temp file, fsync, rename); `extra` adds per-location fields."""
  data = genotype.to_json_dict()
  if extra:
    for entry in data["locations"]:
      entry.update(extra.get(entry["location"], {}))
  atomic.write_json(path, data, sort_keys=False)


def load_json(path: str) -> Genotype:
  """Reads a genotype JSON file; every problem is a ValueError naming the file and the field."""
  try:
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
  except UnicodeDecodeError as e:
    raise ValueError(f"genotype file {path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})"
                     ) from None
  except json.JSONDecodeError as e:
    raise ValueError(f"genotype file {path}: malformed JSON ({e})") from None
  try:
    return Genotype.from_json_dict(data)
  except ValueError as e:
    raise ValueError(f"genotype file {path}: {e}") from None


def load_json_weights(path: str) -> dict[int, dict[str, dict[str, float]]]:
  """The search weights saved beside a genotype ({location: {"op_weights": ..., "attention_weights": ...}}).

  Empty for a genotype that was not derived from a search.
  """
  genotype = load_json(path)  # validates the file first
  del genotype
  with open(path, encoding="utf-8") as f:
    data = json.load(f)
  return {entry["location"]: {k: {str(n): float(w) for n, w in entry[k].items()}
                              for k in ("op_weights", "attention_weights") if isinstance(entry.get(k), dict)}
          for entry in data["locations"]}


def _sigmoid(x: np.ndarray) -> np.ndarray:
  return 0.5 * (1.0 + np.tanh(0.5 * x))


def architecture_weights(arch: Mapping[str, Any], space: SearchSpace = SearchSpace()) -> dict[int, dict]:
  """Softmax op weights and sigmoid edge weights per location, from the `arch` collection.

  Returns {location: {"op_weights": {op: w}, "attention_weights": {source: w}}}, with
  only the searched parts present.
  """
  weights: dict[int, dict] = {}
  for i in range(NUM_LOCATIONS):
    entry: dict[str, dict[str, float]] = {}
    if space.fusion:
      logits = np.asarray(_arch_leaf(arch, f"fusion_{i}", "op_logits", len(OPS)), np.float64)
      p = np.exp(logits - logits.max())
      p /= p.sum()
      entry["op_weights"] = {op: float(w) for op, w in zip(OPS, p)}
    if space.attention:
      names = attention_candidates(i)
      h = np.asarray(_arch_leaf(arch, f"attention_{i}", "edge_logits", len(names)), np.float64)
      entry["attention_weights"] = {n: float(w) for n, w in zip(names, _sigmoid(h))}
    weights[i] = entry
  return weights


def _arch_leaf(arch: Mapping[str, Any], module: str, name: str, size: int) -> np.ndarray:
  try:
    leaf = np.asarray(arch[module][name])
  except (KeyError, TypeError):
    raise ValueError(f"architecture parameters lack {module}/{name}; were they made for this search space?") from None
  if leaf.shape != (size,) or not np.all(np.isfinite(leaf)):
    raise ValueError(f"architecture parameter {module}/{name} must be {size} finite numbers, got shape {leaf.shape}")
  return leaf


def derive(arch: Mapping[str, Any], space: SearchSpace = SearchSpace()) -> Genotype:
  """The paper's pruning rule: argmax op per location; keep edges with sigmoid weight > 0.5.

  Args:
    arch: the `arch` variable collection of a search network: for each location i,
      `fusion_{i}/op_logits` [5] (if fusion is searched) and `attention_{i}/edge_logits`
      [len(attention_candidates(i))] (if attention is searched).
    space: the search space the network was built with.
  """
  weights = architecture_weights(arch, space)
  ops, attention = [], []
  for i in range(NUM_LOCATIONS):
    if space.fusion:
      op_w = weights[i]["op_weights"]
      ops.append(max(OPS, key=lambda op: op_w[op]))  # ties resolve to the earlier op in OPS
    else:
      ops.append(space.fixed.ops[i])
    if space.attention:
      attention.append(tuple(n for n, w in weights[i]["attention_weights"].items() if w > 0.5))
    else:
      attention.append(space.fixed.attention[i])
  return Genotype(ops=tuple(ops), attention=tuple(attention))

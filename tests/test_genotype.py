"""Genotypes: validation, the derivation rule, JSON round-trip and malformed files."""

import json

import numpy as np
import pytest

import arch_fixtures
from visionary_jax import genotype as G

EXAMPLE = G.Genotype(ops=("noop", "conv_filter", "hadamard", "concat", "add"),
                     attention=((), ("action", "dilated4"), ("loc0", "loc2"), (), ("action", "loc3", "dilated2")))


def test_baseline_is_add_after_second_pool():
  assert G.BASELINE.ops == ("noop", "add", "noop", "noop", "noop")
  assert G.BASELINE.attention == ((),) * 5
  assert G.BASELINE.first_action_location == 1
  assert G.BASELINE.dilation_rates == ()
  assert EXAMPLE.dilation_rates == (2, 4)
  assert G.Genotype(ops=G.BASELINE.ops, attention=((), (), (), (), ("dilated4",))).dilation_rates == (4,)


def test_candidates_are_causal():
  assert G.attention_candidates(0) == ("action", "loc0")
  assert G.attention_candidates(1) == ("action", "loc0", "loc1", "dilated2", "dilated4")
  assert len(G.attention_candidates(4)) == 8


def test_attention_is_stored_in_canonical_order():
  g = G.Genotype(ops=G.BASELINE.ops, attention=((), ("dilated4", "action"), (), (), ()))
  assert g.attention[1] == ("action", "dilated4")


@pytest.mark.parametrize("ops,attention,message", [
    (("noop",) * 4, ((),) * 5, "'ops' needs 5 entries"),
    (("noop", "mul", "noop", "noop", "noop"), ((),) * 5, "unknown op 'mul'"),
    (G.BASELINE.ops, ((), (), ("loc3",), (), ()), "unknown or future source 'loc3'"),
    (G.BASELINE.ops, (("dilated2",), (), (), (), ()), "unknown or future source 'dilated2'"),
    (("noop",) * 5, ((), ("loc0",), (), (), ()), "never uses the action"),
])
def test_invalid_genotypes(ops, attention, message):
  with pytest.raises(ValueError, match=message):
    G.Genotype(ops=ops, attention=attention)


def _arch(op_logits, edge_logits):
  return {**{f"fusion_{i}": {"op_logits": np.asarray(op_logits[i], np.float32)} for i in range(5)},
          **{f"attention_{i}": {"edge_logits": np.asarray(edge_logits[i], np.float32)} for i in range(5)}}


def test_derive_keeps_argmax_op_and_edges_above_one_half():
  op_logits = [[0, 0.1, 0, 0, 0], [0, 0, 0, 0, 2], [1, 0, 0, 0, 0], [0, 0, 3, 0, 0], [0, 0, 0, 1, 0]]
  edge_logits = [[0.0, 0.2], [1, -1, 0, 0, 5], [-3] * 6, [0] * 7, [0.01, -0.01, 0, 0, 0, 0, 0, 0]]
  g = G.derive(_arch(op_logits, edge_logits))
  assert g.ops == ("add", "conv_filter", "noop", "concat", "hadamard")
  # sigmoid(0) = 0.5 is not > 0.5: that edge is dropped.
  assert g.attention == (("loc0",), ("action", "dilated4"), (), (), ("action",))


def test_derive_without_searched_attention_keeps_the_fixed_edges():
  space = G.SearchSpace(fusion=True, attention=False)
  arch = {f"fusion_{i}": {"op_logits": np.eye(5, dtype=np.float32)[i]} for i in range(5)}
  assert G.derive(arch, space) == G.Genotype(ops=G.OPS, attention=((),) * 5)


def test_derive_rejects_foreign_arch():
  with pytest.raises(ValueError, match="lack fusion_0/op_logits"):
    G.derive({})
  bad = _arch([[0] * 5] * 5, [[0] * 2, [0] * 5, [0] * 6, [0] * 7, [0] * 3])
  with pytest.raises(ValueError, match="attention_4/edge_logits must be 8 finite numbers"):
    G.derive(bad)


def test_one_hot_arch_derives_back():
  assert G.derive(arch_fixtures.one_hot_arch(EXAMPLE)) == EXAMPLE
  assert G.derive(arch_fixtures.one_hot_arch(G.BASELINE)) == G.BASELINE


def test_json_round_trip(tmp_path):
  path = str(tmp_path / "found" / "genotype.json")
  G.save_json(EXAMPLE, path, extra={1: {"op_weights": {"conv_filter": 0.6}}})
  assert G.load_json(path) == EXAMPLE
  assert G.load_json_weights(path)[1] == {"op_weights": {"conv_filter": 0.6}}
  assert G.load_json_weights(path)[0] == {}
  assert [p.name for p in (tmp_path / "found").iterdir()] == ["genotype.json"]  # no temp file left


def _write(tmp_path, text):
  path = tmp_path / "g.json"
  path.write_text(text)
  return str(path)


def _valid():
  return EXAMPLE.to_json_dict()


def _edit(change):
  data = _valid()
  change(data)
  return json.dumps(data)


@pytest.mark.parametrize("text,message", [
    ("{not json", "malformed JSON"),
    ("[1, 2]", "must be an object"),
    (_edit(lambda d: d.pop("locations")), "missing field 'locations'"),
    (_edit(lambda d: d.update(format="other")), "field 'format'"),
    (_edit(lambda d: d.update(version=2)), "field 'version'"),
    (_edit(lambda d: d["locations"][2].update(op="mul")), "unknown op 'mul'"),
    (_edit(lambda d: d["locations"][2].update(location=7)), r"'locations\[2\].location' must be an integer in \[0, 5\)"),
    (_edit(lambda d: d["locations"][2].update(location=1)), "location 1 is given twice"),
    (_edit(lambda d: d["locations"][2].pop("op")), r"'locations\[2\]' is missing field 'op'"),
    (_edit(lambda d: d["locations"].pop()), r"missing locations \[4\]"),
    (_edit(lambda d: d["locations"][0].update(attention="action")), "must be a list of strings"),
    (_edit(lambda d: d["locations"][0].update(attention=["loc1"])), "future source 'loc1'"),
    (_edit(lambda d: d["locations"][0].update(colour="red")), "unknown fields"),
])
def test_malformed_json_is_rejected(tmp_path, text, message):
  path = _write(tmp_path, text)
  with pytest.raises(ValueError, match=message) as info:
    G.load_json(path)
  assert path in str(info.value)


def test_a_file_that_is_not_utf8_is_named(tmp_path):
  path = tmp_path / "latin1.json"
  path.write_bytes(json.dumps(_valid())[:-1].encode() + ', "note": "caf\xe9"}'.encode("latin-1"))
  offset = path.read_bytes().index(b"\xe9")
  with pytest.raises(ValueError, match=rf"genotype file {path}: not UTF-8 text \(byte 0xe9 at offset {offset}\)"):
    G.load_json(str(path))

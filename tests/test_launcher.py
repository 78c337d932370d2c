"""experiments/launcher.py and experiments/check_inputs.py: one line per bad input, exit 2 for usage, 1 for data."""

import os

from absl import app
import pytest

from experiments import check_inputs
from experiments import launcher
from experiments.configs import grasping
import update_fixtures
from visionary_jax import export
from visionary_jax import genotype as G
from visionary_jax.episodes import shards


def _raised(fn):
  try:
    fn()
  except Exception as e:  # pylint: disable=broad-except
    return e
  raise AssertionError("no exception")


def _chained(inner_fn, prefix):
  """What a launcher raises when it adds context: ValueError(prefix + e) from e."""
  inner = _raised(inner_fn)
  try:
    raise ValueError(f"{prefix}: {inner}") from inner
  except ValueError as e:
    return e


def test_exit_status_follows_the_root_cause(tmp_path):
  missing_shard = _raised(lambda: shards.check_shard(str(tmp_path / "x.npz")))
  assert isinstance(missing_shard, shards.ShardError) and launcher.exit_status(missing_shard) == launcher.DATA
  unreadable = _raised(lambda: open(tmp_path / "missing.json", encoding="utf-8"))
  assert launcher.exit_status(unreadable) == launcher.DATA
  (tmp_path / "g.json").write_text('{"format": "other"}')
  bad_genotype = _raised(lambda: G.load_json(str(tmp_path / "g.json")))
  assert launcher.exit_status(bad_genotype) == launcher.USAGE
  bad_export = _chained(lambda: export.read_config(str(tmp_path)), "--export")
  assert "--export: export" in str(bad_export) and launcher.exit_status(bad_export) == launcher.DATA
  assert launcher.exit_status(ValueError("replay.batch_size must be >= 1, got 0")) == launcher.USAGE
  assert launcher.exit_status(FloatingPointError("non-finite loss")) == launcher.DATA


@pytest.mark.parametrize("path,message", [
    ("train.steps", None),
    ("train.nonexistent", "unknown config field 'train.nonexistent'; the 'train' section's fields are ['arch_l2', "),
    ("trian.steps", "unknown config field 'trian'; the config's fields are ['cem', 'collect', 'env', 'network', "),
    ("train.steps.x", "unknown config field 'train.steps.x'; 'train.steps' is not a section"),
])
def test_unknown_config_fields_are_named_with_their_section(path, message):
  problem = launcher.unknown_config_field(grasping.get_config("smoke"), path)
  assert problem == message if message is None else problem.startswith(message)


@pytest.mark.parametrize("help_flag", ["--helpshort", "--helpfull"])
def test_help_flags_exit_0(help_flag, capsys):
  app.define_help_flags()
  with pytest.raises(SystemExit) as info:
    launcher.parse_flags(["train", help_flag])
  assert info.value.code == 0
  assert "--helpfull" in capsys.readouterr().out


def test_an_unwritable_directory_ends_with_usage(tmp_path, capsys):
  (tmp_path / "file").write_text("")
  with pytest.raises(SystemExit) as info:
    launcher.check_writable("workdir", str(tmp_path / "file" / "run"))
  assert info.value.code == launcher.USAGE
  assert capsys.readouterr().err.endswith(f"--workdir {tmp_path}/file/run is not writable ({tmp_path}/file is a "
                                          "file)\n")
  assert launcher.check_writable("workdir", str(tmp_path / "new" / "run")) == str(tmp_path / "new" / "run")
  assert sorted(os.listdir(tmp_path)) == ["file"]  # nothing created, the probe removed


def test_one_image_size_for_the_camera_and_the_network():
  config = grasping.get_config("smoke")
  assert config.env.image_size == config.network.image_size == 32
  config.env.image_size = 48
  assert config.network.image_size == 48
  config.network.image_size = 40
  assert config.env.image_size == 40 and config.to_dict()["env"]["image_size"] == 40


FAST_CASES = {  # name: (exit status, start of the message after "train: ")
    "unknown_field": (2, "--config.train.nonexistent: unknown config field 'train.nonexistent'; the 'train' "
                         "section's fields are ['arch_l2', "),
    "unknown_preset": (2, "--config=experiments/configs/grasping.py:huge: config preset must be one of "
                          "('paper', 'cpu', 'smoke'), got 'huge'"),
    "non_utf8_genotype": (2, "genotype file $TMP/latin1.json: not UTF-8 text (byte 0xe9 at offset 47)"),
    "missing_dataset": (2, "train config field 'dataset_dir': $TMP/no_such_dir is not a directory"),
    "empty_dataset": (1, "$TMP/empty: empty dataset, no valid shard"),
}


def test_check_inputs_writes_one_row_per_case(tmp_path_factory, tmp_path):
  env = update_fixtures.subprocess_env(tmp_path_factory)
  output = tmp_path / "reliability.md"
  update_fixtures.run_module(env, "experiments.check_inputs", f"--cases={','.join(FAST_CASES)}",
                             f"--output={output}")
  rows = [line.split(" | ") for line in output.read_text().splitlines() if line.startswith("| ") and
          line[2].isdigit()]
  names = [c[0] for c in check_inputs.CASES]
  assert [int(r[0][2:]) for r in rows] == sorted(names.index(n) + 1 for n in FAST_CASES)
  by_name = {names[int(r[0][2:]) - 1]: r for r in rows}
  for name, (status, message) in FAST_CASES.items():
    _, _, command, shown_status, stderr_lines, shown = by_name[name]
    assert command.startswith("`python -m experiments.train --config=experiments/configs/grasping.py:")
    assert (int(shown_status), int(stderr_lines)) == (status, 1), name
    assert shown.startswith("train: " + message), (name, shown)
    assert "/tmp" not in command + shown


def test_check_inputs_rejects_unknown_cases():
  with pytest.raises(ValueError, match=r"unknown cases \['nope'\]"):
    check_inputs.run_cases(["nope"])


@pytest.fixture(scope="module")
def env(tmp_path_factory):
  return update_fixtures.subprocess_env(tmp_path_factory)


@pytest.mark.parametrize("args,message", [
    (("--variants=baseline,bogus",), "unknown variant 'bogus'"),
    (("--seeds=0,one",), "--seeds must be comma-separated integers, got '0,one'"),
    (("--variants=transfer",), "variant 'transfer' needs study config field 'transfer_genotype'"),
])
def test_study_launcher_rejects_bad_flags(env, tmp_path, args, message):
  result = update_fixtures.run_module(env, "experiments.study", "--config=experiments/configs/grasping.py:smoke",
                                      f"--workdir={tmp_path}", f"--config.train.dataset_dir={tmp_path}", *args,
                                      check=False)
  assert result.returncode != 0
  assert message in result.stderr

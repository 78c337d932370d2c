"""Shards and the dataset reader: round trip, validation of every bad-shard case, memmap."""

import json
import os

import numpy as np
import pytest

import episode_fixtures as fixtures
from visionary_jax import run_files
from visionary_jax.episodes import dataset as dataset_lib
from visionary_jax.episodes import shards
from visionary_jax.episodes import summary


def test_round_trip_preserves_every_array(dataset_dir):
  directory, episodes, paths = dataset_dir
  meta, arrays = shards.check_shard(paths[0], image_size=8)
  first = episodes[:4]
  np.testing.assert_array_equal(arrays["image"], np.concatenate([e.image for e in first]))
  np.testing.assert_array_equal(arrays["action"], np.concatenate([e.action for e in first]))
  np.testing.assert_array_equal(arrays["reward"], np.concatenate([e.reward for e in first]))
  np.testing.assert_array_equal(arrays["height"], np.concatenate([e.height for e in first]))
  assert arrays["episode_seed"].tolist() == [e.seed for e in first]
  assert arrays["episode_length"].tolist() == [e.length for e in first]
  assert meta["episodes"] == 4 and meta["transitions"] == sum(e.length for e in first)
  assert meta["episode_range"] == [0, 4]
  assert os.path.basename(paths[0]) == "episodes-000000000-000000004.npz"
  assert not [n for n in os.listdir(directory) if n.startswith(".tmp-")]


def test_manifest_lists_checksums_and_counts(dataset_dir):
  directory, episodes, paths = dataset_dir
  manifest = shards.write_manifest(str(directory), {"task": "grasping"})
  with open(os.path.join(directory, shards.MANIFEST)) as f:
    assert json.load(f) == manifest
  assert manifest["episodes"] == len(episodes)
  assert manifest["transitions"] == sum(e.length for e in episodes)
  assert [s["file"] for s in manifest["shards"]] == [os.path.basename(p) for p in paths]
  assert all(len(s["sha256"]) == 64 for s in manifest["shards"])


def test_dataset_indexes_transitions(dataset_dir):
  directory, episodes, _ = dataset_dir
  data = dataset_lib.Dataset(str(directory), image_size=8)
  assert data.num_episodes == len(episodes)
  assert data.num_transitions == sum(e.length for e in episodes)
  i = 0
  for e in episodes:
    batch = data.transitions(np.arange(i, i + e.length))
    np.testing.assert_array_equal(batch["image"], e.image[:-1])
    np.testing.assert_array_equal(batch["next_image"], e.image[1:])
    np.testing.assert_array_equal(batch["next_height"], e.height[1:])
    np.testing.assert_array_equal(batch["action"], e.action)
    np.testing.assert_array_equal(batch["done"], e.terminated.astype(np.float32))
    i += e.length
  np.testing.assert_array_equal(data.episode_frames(3), episodes[3].image)


def test_memmap_serves_the_same_data(dataset_dir):
  directory, _, _ = dataset_dir
  loaded = dataset_lib.Dataset(str(directory), mmap=False)
  mapped = dataset_lib.Dataset(str(directory), mmap=True)
  assert mapped.mmap and not loaded.mmap
  idx = np.random.default_rng(0).integers(0, loaded.num_transitions, 50)
  a, b = loaded.transitions(idx), mapped.transitions(idx)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  tiny = dataset_lib.Dataset(str(directory), max_in_memory_gb=1e-9)
  assert tiny.mmap  # chosen automatically above the memory budget


def _rewrite_sidecar(path, **changes):
  side = shards.sidecar_path(path)
  with open(side) as f:
    meta = json.load(f)
  meta.update(changes)
  with open(side, "w") as f:
    json.dump(meta, f)


def _truncate(path):
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


def _flip_byte(path):
  with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 2)
    byte = f.read(1)
    f.seek(-1, os.SEEK_CUR)
    f.write(bytes([byte[0] ^ 0xFF]))


def _garbage_with_valid_checksum(path):
  with open(path, "wb") as f:
    f.write(b"not a zip file at all" * 10)
  _rewrite_sidecar(path, bytes=os.path.getsize(path), sha256=run_files.file_sha256(path))


def _remove_sidecar(path):
  os.remove(shards.sidecar_path(path))


@pytest.mark.parametrize("damage, message", [
    (_truncate, "truncated"),
    (_flip_byte, "checksum mismatch"),
    (_garbage_with_valid_checksum, "corrupt shard"),
    (lambda p: _rewrite_sidecar(p, transitions=999), "sidecar says transitions=999"),
    (lambda p: _rewrite_sidecar(p, format="other/9"), "format"),
])
def test_each_damaged_shard_is_rejected_by_name(dataset_dir, damage, message):
  directory, _, paths = dataset_dir
  damage(paths[1])
  with pytest.raises(shards.ShardError, match=message) as e:
    dataset_lib.Dataset(str(directory), image_size=8)
  assert os.path.basename(paths[1]) in str(e.value) or os.path.basename(
      shards.sidecar_path(paths[1])) in str(e.value)


def test_missing_sidecar_means_an_unfinished_shard(dataset_dir):
  directory, _, paths = dataset_dir
  _remove_sidecar(paths[1])
  assert paths[1] not in shards.list_shards(str(directory))
  with pytest.raises(shards.ShardError, match="missing sidecar"):
    shards.check_shard(paths[1])


def test_wrong_image_size_is_rejected(dataset_dir):
  directory, _, _ = dataset_dir
  with pytest.raises(shards.ShardError, match="wrong image size 8x8.*image_size is 64"):
    dataset_lib.Dataset(str(directory), image_size=64)


def test_shards_record_their_camera_and_another_camera_is_rejected(dataset_dir):
  directory, _, paths = dataset_dir
  assert shards.check_shard(paths[0])[0]["camera_fov"] == shards.LEGACY_CAMERA_FOV
  dataset_lib.Dataset(str(directory), camera_fov=40.0)
  with pytest.raises(shards.ShardError, match=f"{os.path.basename(paths[0])}: rendered with "
                     r"camera_fov 40.0, the config's env.camera_fov is 28.0"):
    dataset_lib.Dataset(str(directory), camera_fov=28.0)
  other = directory / "narrow"
  other.mkdir()
  narrow = shards.write_shard(str(other), [fixtures.make_episode(0, 3)], "grasping",
                              camera_fov=28.0)
  assert dataset_lib.Dataset(str(other), camera_fov=28.0).num_episodes == 1
  # A sidecar from before the field existed was rendered with the original camera.
  side = shards.sidecar_path(narrow)
  with open(side) as f:
    meta = json.load(f)
  del meta["camera_fov"]
  with open(side, "w") as f:
    json.dump(meta, f)
  with pytest.raises(shards.ShardError, match="rendered with camera_fov 40.0"):
    dataset_lib.Dataset(str(other), camera_fov=28.0)
  meta["camera_fov"] = "wide"
  with open(side, "w") as f:
    json.dump(meta, f)
  with pytest.raises(shards.ShardError, match="camera_fov must be a number, got 'wide'"):
    dataset_lib.Dataset(str(other))


def test_nan_reward_is_rejected(tmp_path):
  e = fixtures.make_episode(0, 3)
  e.reward[1] = np.nan
  path = shards.write_shard(str(tmp_path), [e], "grasping")
  with pytest.raises(shards.ShardError, match=f"{os.path.basename(path)}: NaN or infinite reward"):
    dataset_lib.Dataset(str(tmp_path))


def test_empty_dataset_is_rejected(tmp_path):
  with pytest.raises(shards.ShardError, match="empty dataset"):
    dataset_lib.Dataset(str(tmp_path))
  with pytest.raises(shards.ShardError, match="does not exist"):
    dataset_lib.Dataset(str(tmp_path / "nowhere"))


def test_overlapping_shards_are_rejected(tmp_path):
  shards.write_shard(str(tmp_path), [fixtures.make_episode(i, 2) for i in range(0, 3)], "grasping")
  shards.write_shard(str(tmp_path), [fixtures.make_episode(i, 2) for i in range(2, 4)], "grasping")
  with pytest.raises(shards.ShardError, match="overlap"):
    dataset_lib.Dataset(str(tmp_path))


def test_skip_bad_shards_reports_them(dataset_dir):
  directory, episodes, paths = dataset_dir
  _flip_byte(paths[0])
  data = dataset_lib.Dataset(str(directory), skip_bad_shards=True)
  assert [b.path for b in data.bad_shards] == [paths[0]]
  assert "checksum mismatch" in data.bad_shards[0].problem
  assert data.num_episodes == len(episodes) - 4
  for p in paths[1:]:
    _flip_byte(p)
  with pytest.raises(shards.ShardError, match="empty dataset.*3 bad shard"):
    dataset_lib.Dataset(str(directory), skip_bad_shards=True)


@pytest.mark.parametrize("remove, message", [
    (os.remove, "listed in manifest.json but missing"),
    (_remove_sidecar, "sidecar of a shard listed in manifest.json is missing"),
])
def test_a_shard_listed_in_the_manifest_must_be_there(dataset_dir, remove, message):
  directory, episodes, paths = dataset_dir
  shards.write_manifest(str(directory))
  remove(paths[1])
  with pytest.raises(shards.ShardError, match=message) as e:
    dataset_lib.Dataset(str(directory))
  assert os.path.basename(paths[1])[:-len(".npz")] in str(e.value)
  data = dataset_lib.Dataset(str(directory), skip_bad_shards=True)
  assert [b.path for b in data.bad_shards] == [paths[1]] and message in data.bad_shards[0].problem
  assert data.num_episodes == len(episodes) - 4


def test_a_shard_must_match_its_manifest_entry(dataset_dir):
  directory, episodes, paths = dataset_dir
  shards.write_manifest(str(directory))
  manifest_path = os.path.join(directory, shards.MANIFEST)
  with open(manifest_path) as f:
    manifest = json.load(f)
  manifest["shards"][2]["episodes"] = 3
  with open(manifest_path, "w") as f:
    json.dump(manifest, f)
  with pytest.raises(shards.ShardError, match=f"{os.path.basename(paths[2])}: holds 2 episodes, manifest.json "
                                              "lists 3"):
    dataset_lib.Dataset(str(directory))
  shards.write_manifest(str(directory))
  # A valid shard written over a listed one (same episodes, other content).
  replaced = [fixtures.make_episode(i, 2) for i in range(8, 10)]
  assert shards.write_shard(str(directory), replaced, "grasping") == paths[2]
  with pytest.raises(shards.ShardError, match=f"{os.path.basename(paths[2])}: sha256 differs from the one "
                                              "manifest.json lists"):
    dataset_lib.Dataset(str(directory))
  assert dataset_lib.Dataset(str(directory), skip_bad_shards=True).num_episodes == len(episodes) - 2


def test_shards_not_in_the_manifest_are_read_and_reported(tmp_path, caplog):
  _, paths = fixtures.write_dataset(tmp_path, num_episodes=8, per_shard=4)
  os.rename(paths[1], tmp_path / "aside.npz")
  shards.write_manifest(str(tmp_path))
  os.rename(tmp_path / "aside.npz", paths[1])
  with caplog.at_level("WARNING"):
    data = dataset_lib.Dataset(str(tmp_path))
  assert data.unlisted_shards == [os.path.basename(paths[1])] and data.num_episodes == 8
  assert f"1 shard file(s) not listed in manifest.json (read when they have a sidecar): " \
         f"{os.path.basename(paths[1])}" in caplog.text


def test_a_damaged_manifest_is_rejected_by_name(dataset_dir):
  directory, episodes, _ = dataset_dir
  with open(os.path.join(directory, shards.MANIFEST), "w") as f:
    f.write('{"format": "visionary_jax.episodes/1", "shards": [{"file": "x"}]}')
  with pytest.raises(shards.ShardError, match="manifest.json: shard entry .* lacks a shard file name"):
    dataset_lib.Dataset(str(directory))
  with open(os.path.join(directory, shards.MANIFEST), "w") as f:
    f.write('{"format": ')
  with pytest.raises(shards.ShardError, match="manifest.json: .*manifest.json is malformed JSON"):
    dataset_lib.Dataset(str(directory))
  assert dataset_lib.Dataset(str(directory), skip_bad_shards=True).num_episodes == len(episodes)


def test_a_collect_workdir_points_to_its_episodes_folder(tmp_path):
  fixtures.write_dataset(tmp_path / "episodes")
  with pytest.raises(shards.ShardError, match=f"{tmp_path}: empty dataset, no valid shard; it holds an episodes/ "
                                              f"folder: pass {tmp_path / 'episodes'}"):
    dataset_lib.Dataset(str(tmp_path))


def test_writer_rejects_inconsistent_episodes(tmp_path):
  e = fixtures.make_episode(0, 3)
  e.image = e.image[:-1]
  with pytest.raises(ValueError, match="T \\+ 1 frames"):
    shards.write_shard(str(tmp_path), [e], "grasping")
  with pytest.raises(ValueError, match="contiguous"):
    shards.write_shard(str(tmp_path), [fixtures.make_episode(0, 2), fixtures.make_episode(2, 2)],
                       "grasping")


def test_summary_counts_and_png(dataset_dir):
  directory, episodes, _ = dataset_dir
  os.rename(directory, str(directory) + "-x")
  os.makedirs(directory)
  os.rename(str(directory) + "-x", os.path.join(directory, "episodes"))
  result = summary.write_summary(str(directory), "grasping")
  assert result["episodes"] == len(episodes)
  assert result["success_fraction"] == pytest.approx(np.mean([e.success for e in episodes]))
  lengths = [e.length for e in episodes]
  assert result["episode_length_histogram"] == {
      str(n): lengths.count(n) for n in sorted(set(lengths))}
  # Every fixture episode ends with a close at 0.30 - 0.01 * (length - 1) >= 0.26 m: all in the top bin.
  attempts = result["grasp_attempts_by_height"]
  assert [(r["low"], r["high"]) for r in attempts] == [
      (None, 0.02), (0.02, 0.05), (0.05, 0.1), (0.1, 0.2), (0.2, None)]
  assert [r["attempts"] for r in attempts] == [0, 0, 0, 0, len(episodes)]
  assert attempts[-1]["success"] == pytest.approx(np.mean([e.success for e in episodes]))
  assert attempts[0]["success"] is None
  with open(os.path.join(directory, summary.SUMMARY_PNG), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  # A stacking dataset's closes are not grasp attempts: no such table.
  assert "grasp_attempts_by_height" not in summary.write_summary(str(directory), "stacking")

"""Tests for kbert.checkpoint.weights_files: which file of a model folder is loaded, and shards."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from kbert.checkpoint.safetensors_io import write_safetensors
from kbert.checkpoint.torch_pickle import read_torch_bin
from kbert.checkpoint.weights_files import find_weights_files, load_state_dict
from kbert.errors import CheckpointNotFoundError, CorruptCheckpointError

TORCH_FIXTURES = Path(__file__).parent / "fixtures" / "torch_bin"


def _names(path):
    return re.escape(str(path))


def _index(folder, filename, weight_map):
    path = folder / filename
    path.write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    return path


def _all_four_layouts(folder):
    """A folder holding every layout, each with a tensor telling which one was read."""
    write_safetensors(folder / "model.safetensors", {"from": np.array([1])})
    write_safetensors(folder / "model-00001-of-00001.safetensors", {"from": np.array([2])})
    _index(folder, "model.safetensors.index.json", {"from": "model-00001-of-00001.safetensors"})
    shutil.copy(TORCH_FIXTURES / "views.bin", folder / "pytorch_model.bin")
    shutil.copy(TORCH_FIXTURES / "dtypes.bin", folder / "pytorch_model-00001-of-00001.bin")
    _index(folder, "pytorch_model.bin.index.json", {"int64": "pytorch_model-00001-of-00001.bin"})


def test_preference_order(tmp_path):
    _all_four_layouts(tmp_path)

    found = find_weights_files(tmp_path)
    assert found.format == "safetensors" and found.index is None
    assert found.files == (str(tmp_path / "model.safetensors"),)
    assert load_state_dict(tmp_path)["from"].tolist() == [1]

    (tmp_path / "model.safetensors").unlink()
    found = find_weights_files(tmp_path)
    assert found.format == "safetensors"
    assert found.index == str(tmp_path / "model.safetensors.index.json")
    assert found.files == (str(tmp_path / "model-00001-of-00001.safetensors"),)
    assert load_state_dict(tmp_path)["from"].tolist() == [2]

    (tmp_path / "model.safetensors.index.json").unlink()
    found = find_weights_files(tmp_path)
    assert (found.format, found.files, found.index) == ("torch", (str(tmp_path / "pytorch_model.bin"),), None)
    assert set(load_state_dict(tmp_path)) == set(read_torch_bin(TORCH_FIXTURES / "views.bin"))

    (tmp_path / "pytorch_model.bin").unlink()
    found = find_weights_files(tmp_path)
    assert (found.format, found.index) == ("torch", str(tmp_path / "pytorch_model.bin.index.json"))
    assert list(load_state_dict(tmp_path)) == ["int64"]
    assert load_state_dict(tmp_path)["int64"].tolist() == [0, 1, 2, 3, 4]


def test_tiny_bert_folder_prefers_safetensors_and_both_agree():
    folder = TORCH_FIXTURES / "tiny_bert"
    assert find_weights_files(folder).files == (str(folder / "model.safetensors"),)
    loaded = load_state_dict(folder)
    from_bin = read_torch_bin(folder / "pytorch_model.bin")
    assert set(loaded) == set(from_bin)
    for name in loaded:
        np.testing.assert_array_equal(loaded[name], from_bin[name])


def _sharded_safetensors(folder):
    rng = np.random.default_rng(0)
    tensors = {f"layer.{i}.w": rng.standard_normal((2, 3)).astype(np.float32) for i in range(5)}
    tensors["step"] = np.array(7, dtype=np.int64)
    shards = {"model-00001-of-00003.safetensors": ["layer.0.w", "layer.1.w"],
              "model-00002-of-00003.safetensors": ["layer.2.w", "step"],
              "model-00003-of-00003.safetensors": ["layer.3.w", "layer.4.w"]}
    weight_map = {}
    for shard, names in shards.items():
        write_safetensors(folder / shard, {n: tensors[n] for n in names})
        weight_map.update({n: shard for n in names})
    # the index lists names in its own order, not grouped by shard
    order = ["step", "layer.4.w", "layer.0.w", "layer.3.w", "layer.1.w", "layer.2.w"]
    weight_map = {n: weight_map[n] for n in order}
    index = _index(folder, "model.safetensors.index.json", weight_map)
    return tensors, weight_map, index


def test_sharded_safetensors(tmp_path):
    tensors, weight_map, index = _sharded_safetensors(tmp_path)
    found = find_weights_files(tmp_path)
    assert found.index == str(index)
    assert found.files == tuple(str(tmp_path / f"model-0000{i}-of-00003.safetensors") for i in (2, 3, 1))
    loaded = load_state_dict(tmp_path)
    assert list(loaded) == list(weight_map)
    for name, value in tensors.items():
        np.testing.assert_array_equal(loaded[name], value)
        assert loaded[name].dtype == value.dtype


def test_sharded_torch_bins(tmp_path):
    shutil.copy(TORCH_FIXTURES / "dtypes.bin", tmp_path / "pytorch_model-00001-of-00002.bin")
    shutil.copy(TORCH_FIXTURES / "views.bin", tmp_path / "pytorch_model-00002-of-00002.bin")
    _index(tmp_path, "pytorch_model.bin.index.json",
           {"bfloat16": "pytorch_model-00001-of-00002.bin", "transposed": "pytorch_model-00002-of-00002.bin",
            "int8": "pytorch_model-00001-of-00002.bin"})
    loaded = load_state_dict(tmp_path)
    assert list(loaded) == ["bfloat16", "transposed", "int8"]  # only what the index lists
    np.testing.assert_array_equal(loaded["transposed"], np.arange(12.0).reshape(3, 4).T)
    np.testing.assert_array_equal(loaded["int8"], [-128, 127])


def test_missing_shard(tmp_path):
    _, _, index = _sharded_safetensors(tmp_path)
    (tmp_path / "model-00003-of-00003.safetensors").unlink()
    with pytest.raises(CheckpointNotFoundError,
                       match=_names(index) + r": names 3 shard file\(s\), "
                       r"but 'model-00003-of-00003.safetensors' is not in"):
        find_weights_files(tmp_path)
    with pytest.raises(CheckpointNotFoundError, match="'model-00003-of-00003.safetensors' is not in"):
        load_state_dict(tmp_path)


def test_name_missing_from_its_shard(tmp_path):
    tensors, weight_map, index = _sharded_safetensors(tmp_path)
    write_safetensors(tmp_path / "model-00002-of-00003.safetensors", {"layer.2.w": tensors["layer.2.w"]})
    with pytest.raises(CorruptCheckpointError,
                       match=_names(index) + r": weight_map puts 'step' in 'model-00002-of-00003.safetensors', "
                       r"but .*model-00002-of-00003.safetensors has no tensor of that name"):
        load_state_dict(tmp_path)


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"metadata": {}}), "has no 'weight_map' object"),
    (json.dumps({"weight_map": {}}), "has no 'weight_map' object"),
    (json.dumps({"weight_map": {"w": 3}}), "weight_map entry 'w' is 3, not a file name"),
    (json.dumps({"weight_map": {"w": "../elsewhere.safetensors"}}),
     "weight_map puts 'w' in '../elsewhere.safetensors', which is outside"),
    (json.dumps({"weight_map": {"w": "/etc/passwd"}}), "weight_map puts 'w' in '/etc/passwd', which is outside"),
])
def test_bad_index(tmp_path, content, message):
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(content)
    with pytest.raises(CorruptCheckpointError, match=_names(index) + ": " + re.escape(message)):
        find_weights_files(tmp_path)


def test_nothing_found(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    looked_for = "model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json"
    with pytest.raises(CheckpointNotFoundError, match=_names(tmp_path) + ": no weights file found; looked for "
                       + re.escape(looked_for) + "$"):
        load_state_dict(tmp_path)
    (tmp_path / "tf_model.h5").write_bytes(b"")
    with pytest.raises(CheckpointNotFoundError, match=r"\(it has tf_model.h5, a format kbert does not read\)"):
        find_weights_files(tmp_path)


def test_folder_missing_or_a_file(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match=_names(tmp_path / "nope") + ": no such directory"):
        load_state_dict(tmp_path / "nope")
    a_file = tmp_path / "model.safetensors"
    write_safetensors(a_file, {"x": np.zeros(1)})
    with pytest.raises(CheckpointNotFoundError, match=_names(a_file) + ": not a directory"):
        find_weights_files(a_file)

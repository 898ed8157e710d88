"""Tests for kbert.checkpoint.safetensors_io: round trips, agreement with the official library, and
every kind of malformed file."""

import json
import os
import re

import ml_dtypes
import numpy as np
import pytest

from kbert.checkpoint import safetensors_io
from kbert.checkpoint.safetensors_io import read_safetensors, read_safetensors_metadata, write_safetensors
from kbert.errors import CheckpointNotFoundError, CorruptCheckpointError, UnsupportedModelError

DTYPES = [np.float64, np.float32, np.float16, ml_dtypes.bfloat16, np.int64, np.int32, np.int16,
          np.int8, np.uint64, np.uint32, np.uint16, np.uint8, np.bool_]
SHAPES = [(), (0,), (2, 0, 3), (5,), (2, 3, 4)]


def _values(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(bool)
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    return (rng.standard_normal(size=shape) * 100).astype(dtype)


def _all_dtypes():
    return {f"t_{np.dtype(d).name}": _values(d, (2, 3), seed=i) for i, d in enumerate(DTYPES)}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_round_trip(tmp_path, dtype, shape):
    path = tmp_path / "x.safetensors"
    original = _values(dtype, shape)
    write_safetensors(path, {"x": original, "other": np.arange(3, dtype=np.int8)})
    loaded = read_safetensors(path)
    assert set(loaded) == {"x", "other"}
    assert loaded["x"].dtype == np.dtype(dtype)
    assert loaded["x"].shape == shape
    # compare bit patterns so NaN-free floats and bfloat16 are checked exactly
    assert loaded["x"].tobytes() == original.tobytes()
    np.testing.assert_array_equal(loaded["other"], [0, 1, 2])


def test_arrays_are_read_only_views_and_copies_are_writable(tmp_path):
    path = tmp_path / "x.safetensors"
    write_safetensors(path, {"w": np.ones((2, 2), np.float32), "e": np.zeros((0,), np.float32)})
    loaded = read_safetensors(path)
    assert not loaded["w"].flags.writeable
    assert not loaded["e"].flags.writeable
    with pytest.raises(ValueError):
        loaded["w"][0, 0] = 5
    copy = np.array(loaded["w"])
    copy[0, 0] = 5
    assert read_safetensors(path)["w"][0, 0] == 1


def test_non_contiguous_and_big_endian_inputs_are_stored_as_their_values(tmp_path):
    path = tmp_path / "x.safetensors"
    matrix = np.arange(12, dtype=np.float32).reshape(3, 4)
    big = np.arange(5, dtype=">i4")
    write_safetensors(path, {"t": matrix.T, "strided": matrix[:, ::2], "big": big})
    loaded = read_safetensors(path)
    np.testing.assert_array_equal(loaded["t"], matrix.T)
    np.testing.assert_array_equal(loaded["strided"], matrix[:, ::2])
    np.testing.assert_array_equal(loaded["big"], [0, 1, 2, 3, 4])
    assert loaded["big"].dtype == np.dtype("<i4")


def test_layout_is_aligned_and_header_padded(tmp_path):
    path = tmp_path / "x.safetensors"
    write_safetensors(path, {"a_byte": np.int8(1), "b_f64": np.arange(3.0), "c_f16": np.ones(3, np.float16),
                             "d_f32": np.ones(2, np.float32)})
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    assert header_len % 8 == 0
    header = json.loads(raw[8:8 + header_len])
    assert list(header) == ["__metadata__", "b_f64", "d_f32", "c_f16", "a_byte"]
    for entry in list(header.values())[1:]:
        itemsize = {"F64": 8, "F32": 4, "F16": 2, "I8": 1}[entry["dtype"]]
        assert entry["data_offsets"][0] % itemsize == 0


def test_metadata(tmp_path):
    path = tmp_path / "x.safetensors"
    write_safetensors(path, {"x": np.zeros(1)})
    assert read_safetensors_metadata(path) == {"format": "pt"}  # what transformers wants by default
    write_safetensors(path, {"x": np.zeros(1)}, metadata={"format": "np", "note": "ü"})
    assert read_safetensors_metadata(path) == {"format": "np", "note": "ü"}
    write_safetensors(path, {"x": np.zeros(1)}, metadata={})
    assert read_safetensors_metadata(path) == {}
    with pytest.raises(TypeError, match="metadata must map strings to strings"):
        write_safetensors(path, {"x": np.zeros(1)}, metadata={"n": 1})


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    write_safetensors(path, {"x": np.zeros(2)})
    before = path.read_bytes()
    with pytest.raises(TypeError, match="tensor 'bad' has dtype complex128"):
        write_safetensors(path, {"ok": np.ones(2), "bad": np.ones(2, np.complex128)})

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors_io.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_safetensors(path, {"x": np.ones(2)})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]


def test_invalid_tensor_names_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="'__metadata__' cannot be a tensor name"):
        write_safetensors(tmp_path / "x.safetensors", {"__metadata__": np.zeros(1)})
    with pytest.raises(ValueError, match="3 cannot be a tensor name"):
        write_safetensors(tmp_path / "x.safetensors", {3: np.zeros(1)})


# --- agreement with the official library --------------------------------------------------------
def test_same_bytes_as_official_writer(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    tensors = {k: v for k, v in _all_dtypes().items() if k != "t_bfloat16"}  # no BF16 in its numpy API
    tensors.update(scalar=np.array(2.5, np.float32), empty=np.zeros((0, 4), np.float16),
                   zzz=np.arange(3, dtype=np.int8))
    path = tmp_path / "ours.safetensors"
    write_safetensors(path, tensors, metadata={"format": "pt"})
    assert path.read_bytes() == st_numpy.save(tensors, metadata={"format": "pt"})


def test_official_reader_reads_our_files(tmp_path):
    safetensors = pytest.importorskip("safetensors")
    st_numpy = pytest.importorskip("safetensors.numpy")
    tensors = _all_dtypes()
    path = tmp_path / "ours.safetensors"
    write_safetensors(path, tensors)
    # BF16 has no numpy type there, so compare raw bytes through deserialize() for every tensor
    raw = {name: info for name, info in safetensors.deserialize(path.read_bytes())}
    assert set(raw) == set(tensors)
    for name, array in tensors.items():
        assert bytes(raw[name]["data"]) == array.tobytes()
        assert list(raw[name]["shape"]) == list(array.shape)
    without_bf16 = tmp_path / "no_bf16.safetensors"
    write_safetensors(without_bf16, {k: v for k, v in tensors.items() if k != "t_bfloat16"})
    for name, array in st_numpy.load_file(without_bf16).items():
        np.testing.assert_array_equal(array, tensors[name])
        assert array.dtype == tensors[name].dtype


def test_we_read_official_files(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    tensors = {k: v for k, v in _all_dtypes().items() if k != "t_bfloat16"}
    tensors.update(scalar=np.array(-1.5), empty=np.zeros((3, 0), np.int32))
    path = tmp_path / "official.safetensors"
    st_numpy.save_file(tensors, path, metadata={"source": "official"})
    loaded = read_safetensors(path)
    assert set(loaded) == set(tensors)
    for name, array in tensors.items():
        assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape
        np.testing.assert_array_equal(loaded[name], array)
    assert read_safetensors_metadata(path) == {"source": "official"}


# --- malformed files --------------------------------------------------------------------------
def _raw_file(path, header, buffer=b"", header_len=None):
    """Write a file with the given header (dict -> JSON, or bytes as is) and data buffer."""
    body = header if isinstance(header, bytes) else json.dumps(header).encode()
    length = len(body) if header_len is None else header_len
    path.write_bytes(length.to_bytes(8, "little") + body + buffer)
    return path


def _names(path):
    return re.escape(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match=_names(tmp_path / "nope.safetensors") + ": no such file"):
        read_safetensors(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointNotFoundError, match="is a directory"):
        read_safetensors(tmp_path)


def test_file_shorter_than_8_bytes(tmp_path):
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"\x01\x02\x03")
    with pytest.raises(CorruptCheckpointError, match=_names(path) + ": file has 3 bytes, fewer than the 8"):
        read_safetensors(path)


def test_header_longer_than_file(tmp_path):
    path = _raw_file(tmp_path / "trunc.safetensors", {"x": 1}, header_len=4096)
    with pytest.raises(CorruptCheckpointError,
                       match=_names(path) + r": header says it is 4096 bytes long but the file has only 8 bytes"):
        read_safetensors(path)


def test_truncated_data_buffer(tmp_path):
    path = tmp_path / "x.safetensors"
    write_safetensors(path, {"w": np.ones(100, np.float32)})
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CorruptCheckpointError, match=_names(path) + r": tensor 'w': data_offsets \[0, 400\]"):
        read_safetensors(path)


@pytest.mark.parametrize("header, message", [
    (b"{not json", "header is not valid UTF-8 JSON"),
    (b"\xff\xfe{}", "header is not valid UTF-8 JSON"),
    (b"[1, 2]", "header is a JSON list, not an object"),
    (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
     b'"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', "header names 'w' more than once"),
    (b'{"__metadata__": {"n": 1}}', "'__metadata__' must map strings to strings"),
])
def test_bad_header(tmp_path, header, message):
    path = _raw_file(tmp_path / "bad.safetensors", header, buffer=bytes(4))
    with pytest.raises(CorruptCheckpointError, match=_names(path) + ": " + re.escape(message)):
        read_safetensors(path)
    with pytest.raises(CorruptCheckpointError, match=_names(path)):
        read_safetensors_metadata(path)


GOOD = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize("entry, message", [
    ("oops", "header entry is a str, not an object"),
    ({"shape": [2], "data_offsets": [0, 8]}, "header entry lacks dtype"),
    ({"dtype": "F32", "data_offsets": [0, 8]}, "header entry lacks shape"),
    ({"dtype": "F32", "shape": [2]}, "header entry lacks data_offsets"),
    ({**GOOD, "dtype": "F42"}, "unknown dtype 'F42'"),
    ({**GOOD, "shape": [-2]}, "shape [-2] is not a list of non-negative integers"),
    ({**GOOD, "shape": [2.0]}, "shape [2.0] is not a list of non-negative integers"),
    ({**GOOD, "data_offsets": [0, 100]}, "data_offsets [0, 100] are not a [begin, end] range within the 8-byte"),
    ({**GOOD, "data_offsets": [8, 0]}, "data_offsets [8, 0] are not a [begin, end] range"),
    ({**GOOD, "data_offsets": [-4, 4]}, "data_offsets [-4, 4] are not"),
    ({**GOOD, "data_offsets": [0]}, "data_offsets [0] are not"),
    ({**GOOD, "shape": [3]}, "data_offsets span 8 bytes but shape [3] of F32 needs 12"),
    ({**GOOD, "dtype": "F64"}, "data_offsets span 8 bytes but shape [2] of F64 needs 16"),
])
def test_bad_tensor_entry(tmp_path, entry, message):
    path = _raw_file(tmp_path / "bad.safetensors", {"ok": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]},
                                                    "layer.w": entry}, buffer=bytes(8))
    with pytest.raises(CorruptCheckpointError, match=_names(path) + ": tensor 'layer.w'.*" + re.escape(message)):
        read_safetensors(path)


def test_known_but_unsupported_dtype(tmp_path):
    path = _raw_file(tmp_path / "fp8.safetensors",
                     {"w": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}, buffer=bytes(2))
    with pytest.raises(UnsupportedModelError, match=_names(path) + ": tensor 'w' has dtype F8_E4M3"):
        read_safetensors(path)

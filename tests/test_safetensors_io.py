"""Tests for kbert.checkpoint.safetensors_io, the adapter over the ``safetensors`` library: round trips,
interchange with the library's own numpy API, BF16, atomic writes, and kbert's errors for every kind
of malformed file."""

import json
import os
import re

import ml_dtypes
import numpy as np
import pytest
import safetensors
import safetensors.numpy

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


def _assert_same(loaded, expected):
    assert set(loaded) == set(expected)
    for name, array in expected.items():
        assert loaded[name].dtype == array.dtype, name
        assert loaded[name].shape == array.shape, name
        assert loaded[name].tobytes() == array.tobytes(), name  # bit patterns: exact for bfloat16 too


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_round_trip(tmp_path, dtype, shape):
    path = tmp_path / "x.safetensors"
    original = _values(dtype, shape)
    write_safetensors(path, {"x": original, "other": np.arange(3, dtype=np.int8)})
    _assert_same(read_safetensors(path), {"x": original, "other": np.arange(3, dtype=np.int8)})


def test_arrays_are_read_only_and_copies_are_writable(tmp_path):
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
    # The library serializes raw memory: without kbert's np.asarray(order="C") a transpose would be
    # written in its source's order.
    path = tmp_path / "x.safetensors"
    matrix = np.arange(12, dtype=np.float32).reshape(3, 4)
    big = np.arange(5, dtype=">i4")
    write_safetensors(path, {"t": matrix.T, "strided": matrix[:, ::2], "big": big, "scalar": np.int8(7)})
    for loaded in (read_safetensors(path), safetensors.numpy.load_file(path)):
        np.testing.assert_array_equal(loaded["t"], matrix.T)
        np.testing.assert_array_equal(loaded["strided"], matrix[:, ::2])
        np.testing.assert_array_equal(loaded["big"], [0, 1, 2, 3, 4])
        assert loaded["big"].dtype == np.dtype("<i4")
        assert loaded["scalar"].shape == () and loaded["scalar"] == 7


def test_metadata(tmp_path):
    path = tmp_path / "x.safetensors"
    write_safetensors(path, {"x": np.zeros(1)})
    assert read_safetensors_metadata(path) == {"format": "pt"}  # what transformers wants by default
    write_safetensors(path, {"x": np.zeros(1)}, metadata={"format": "np", "note": "ü"})
    assert read_safetensors_metadata(path) == {"format": "np", "note": "ü"}
    with safetensors.safe_open(path, framework="numpy") as f:
        assert f.metadata() == {"format": "np", "note": "ü"}
    write_safetensors(path, {"x": np.zeros(1)}, metadata={})
    assert read_safetensors_metadata(path) == {}
    with pytest.raises(TypeError, match="metadata must map strings to strings"):
        write_safetensors(path, {"x": np.zeros(1)}, metadata={"n": 1})


def test_metadata_of_a_file_without_any(tmp_path):
    path = tmp_path / "official.safetensors"
    safetensors.numpy.save_file({"x": np.zeros(1)}, path)  # no __metadata__ key at all
    assert read_safetensors_metadata(path) == {}


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    write_safetensors(path, {"x": np.zeros(2)})
    before = path.read_bytes()
    with pytest.raises(TypeError, match="tensor 'bad' has dtype complex128"):
        write_safetensors(path, {"ok": np.ones(2), "bad": np.ones(2, np.complex128)})

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_safetensors(path, {"x": np.ones(2)})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, ml_dtypes.float8_e4m3fn, object, "U3"],
                         ids=str)
def test_dtypes_kbert_cannot_read_back_are_not_written(tmp_path, dtype):
    # The library could store complex64 and FP8, but kbert's reader refuses them, so the writer does too.
    path = tmp_path / "x.safetensors"
    with pytest.raises(TypeError, match=re.escape(str(path)) + r": tensor 'w' has dtype .*cannot store"):
        write_safetensors(path, {"w": np.zeros(2, dtype=dtype)})
    assert not path.exists()


def test_invalid_tensor_names_are_rejected(tmp_path):
    # The library itself would write "__metadata__" as a tensor entry, making a file nobody can read.
    with pytest.raises(ValueError, match="'__metadata__' cannot be a tensor name"):
        write_safetensors(tmp_path / "x.safetensors", {"__metadata__": np.zeros(1)})
    with pytest.raises(ValueError, match="3 cannot be a tensor name"):
        write_safetensors(tmp_path / "x.safetensors", {3: np.zeros(1)})


# --- interchange with the library's own numpy API ------------------------------------------------
def test_library_reads_our_files(tmp_path):
    tensors = _all_dtypes()  # BF16 included
    tensors.update(scalar=np.array(2.5, np.float32), empty=np.zeros((0, 4), np.float16))
    path = tmp_path / "ours.safetensors"
    write_safetensors(path, tensors, metadata={"format": "pt"})
    _assert_same(safetensors.numpy.load_file(path), tensors)
    with safetensors.safe_open(path, framework="numpy") as f:
        assert f.metadata() == {"format": "pt"}
        assert f.get_slice("t_bfloat16").get_dtype() == "BF16"


def test_we_read_library_files(tmp_path):
    tensors = _all_dtypes()  # BF16 included
    tensors.update(scalar=np.array(-1.5), empty=np.zeros((3, 0), np.int32))
    path = tmp_path / "official.safetensors"
    safetensors.numpy.save_file(tensors, path, metadata={"source": "official"})
    _assert_same(read_safetensors(path), tensors)
    assert read_safetensors_metadata(path) == {"source": "official"}


def test_bfloat16_bits_survive_both_ways(tmp_path):
    values = np.arange(2**16, dtype=np.uint16).view(ml_dtypes.bfloat16)  # every bit pattern, NaNs too
    ours, theirs = tmp_path / "ours.safetensors", tmp_path / "theirs.safetensors"
    write_safetensors(ours, {"b": values})
    safetensors.numpy.save_file({"b": values}, theirs)
    for loaded in (read_safetensors(ours)["b"], read_safetensors(theirs)["b"],
                   safetensors.numpy.load_file(ours)["b"]):
        assert loaded.dtype == np.dtype(ml_dtypes.bfloat16)
        assert loaded.view(np.uint16).tolist() == values.view(np.uint16).tolist()


# --- malformed files --------------------------------------------------------------------------
def _raw_file(path, header, buffer=b"", header_len=None):
    """Write a file with the given header (dict -> JSON, or bytes as is) and data buffer."""
    body = header if isinstance(header, bytes) else json.dumps(header).encode()
    length = len(body) if header_len is None else header_len
    path.write_bytes(length.to_bytes(8, "little") + body + buffer)
    return path


def _corrupt(path, reason=""):
    """The start of the message for a malformed ``path``; ``reason`` is a regex for the library's."""
    return re.escape(str(path)) + r": not a valid safetensors file \(.*" + (f"(?:{reason})" if reason else "")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match=re.escape(str(tmp_path / "nope.safetensors")) + ": no such file"):
        read_safetensors(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointNotFoundError, match=re.escape(str(tmp_path)) + ": is a directory"):
        read_safetensors(tmp_path)
    with pytest.raises(CheckpointNotFoundError, match="no such file"):
        read_safetensors_metadata(tmp_path / "nope.safetensors")


def test_file_shorter_than_8_bytes(tmp_path):
    path = tmp_path / "short.safetensors"
    for content in (b"", b"\x01\x02\x03"):
        path.write_bytes(content)
        with pytest.raises(CorruptCheckpointError, match=_corrupt(path, "header too small|HeaderTooSmall")):
            read_safetensors(path)


def test_header_longer_than_file(tmp_path):
    path = _raw_file(tmp_path / "trunc.safetensors", {"x": 1}, header_len=4096)
    with pytest.raises(CorruptCheckpointError, match=_corrupt(path, "invalid header length|InvalidHeaderLength")):
        read_safetensors(path)
    path = _raw_file(tmp_path / "huge.safetensors", {"x": 1}, header_len=2**40)
    with pytest.raises(CorruptCheckpointError, match=_corrupt(path, "header too large|HeaderTooLarge")):
        read_safetensors_metadata(path)


@pytest.mark.parametrize("cut", [10, 399], ids=["last-bytes", "all-data"])
def test_truncated_data_buffer(tmp_path, cut):
    path = tmp_path / "x.safetensors"
    write_safetensors(path, {"w": np.ones(100, np.float32)})
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(CorruptCheckpointError, match=_corrupt(path, "not fully covered|MetadataIncompleteBuffer")):
        read_safetensors(path)


def test_trailing_bytes_after_the_data_are_rejected(tmp_path):
    # Stricter than kbert's former hand-written reader, which ignored them: the library requires the
    # tensors to cover the data buffer exactly, with no gap and nothing after it.
    path = tmp_path / "x.safetensors"
    write_safetensors(path, {"w": np.ones(4, np.float32)})
    path.write_bytes(path.read_bytes() + b"junk")
    with pytest.raises(CorruptCheckpointError, match=_corrupt(path, "not fully covered|MetadataIncompleteBuffer")):
        read_safetensors(path)


@pytest.mark.parametrize("header", [
    b"{not json",
    b"\xff\xfe{}",
    b"[1, 2]",
    b'"just a string"',
    b'{"__metadata__": {"n": 1}}',
    b'{"__metadata__": "x"}',
], ids=["not-json", "not-utf8", "list", "string", "metadata-int", "metadata-str"])
def test_bad_header(tmp_path, header):
    path = _raw_file(tmp_path / "bad.safetensors", header, buffer=bytes(4))
    with pytest.raises(CorruptCheckpointError, match=_corrupt(path)):
        read_safetensors(path)
    with pytest.raises(CorruptCheckpointError, match=_corrupt(path)):
        read_safetensors_metadata(path)


def test_tensor_named_twice(tmp_path):
    # The library keeps the last of duplicated JSON keys; kbert refuses the ambiguity.
    entry = b'{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}'
    path = _raw_file(tmp_path / "dup.safetensors", b'{"w": ' + entry + b', "w": ' + entry + b"}", buffer=bytes(4))
    with pytest.raises(CorruptCheckpointError, match=re.escape(str(path)) + ": header names 'w' more than once"):
        read_safetensors(path)
    with pytest.raises(CorruptCheckpointError, match="more than once"):
        read_safetensors_metadata(path)


GOOD = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize("entry", [
    "oops",
    {"shape": [2], "data_offsets": [0, 8]},
    {"dtype": "F32", "data_offsets": [0, 8]},
    {"dtype": "F32", "shape": [2]},
    {**GOOD, "dtype": "F42"},
    {**GOOD, "shape": [-2]},
    {**GOOD, "shape": [2.0]},
    {**GOOD, "data_offsets": [0, 100]},
    {**GOOD, "data_offsets": [8, 0]},
    {**GOOD, "data_offsets": [-4, 4]},
    {**GOOD, "data_offsets": [0]},
    {**GOOD, "data_offsets": [4, 8]},  # leaves a gap in the buffer
    {**GOOD, "shape": [3]},
    {**GOOD, "dtype": "F64"},
], ids=["not-object", "no-dtype", "no-shape", "no-offsets", "unknown-dtype", "negative-dim", "float-dim",
        "past-buffer", "reversed", "negative-offset", "one-offset", "gap", "shape-too-big", "dtype-too-big"])
def test_bad_tensor_entry(tmp_path, entry):
    path = _raw_file(tmp_path / "bad.safetensors", {"ok": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]},
                                                    "layer.w": entry}, buffer=bytes(8))
    with pytest.raises(CorruptCheckpointError, match=_corrupt(path)):
        read_safetensors(path)


def test_overlapping_tensors(tmp_path):
    path = _raw_file(tmp_path / "overlap.safetensors",
                     {"a": GOOD, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, buffer=bytes(8))
    with pytest.raises(CorruptCheckpointError, match=_corrupt(path)):
        read_safetensors(path)


@pytest.mark.parametrize("code", ["F8_E4M3", "F8_E5M2"])
def test_known_but_unsupported_dtype(tmp_path, code):
    # The library's numpy framework would fail here with a bare AttributeError (numpy.float8_e4m3fn).
    path = _raw_file(tmp_path / "fp8.safetensors",
                     {"w": {"dtype": code, "shape": [2], "data_offsets": [0, 2]}}, buffer=bytes(2))
    with pytest.raises(UnsupportedModelError, match=re.escape(str(path)) + f": tensor 'w' has dtype {code}"):
        read_safetensors(path)
    assert read_safetensors_metadata(path) == {}  # the header itself is sound


def test_errors_are_kbert_errors_not_library_ones(tmp_path):
    path = _raw_file(tmp_path / "bad.safetensors", b"{not json")
    with pytest.raises(CorruptCheckpointError) as caught:
        read_safetensors(path)
    assert not isinstance(caught.value, safetensors.SafetensorError)
    assert caught.value.__suppress_context__  # raised "from None": no library traceback chained

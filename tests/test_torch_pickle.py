"""Tests for kbert.checkpoint.torch_pickle against files written by real torch
(tests/fixtures/make_torch_bin_fixtures.py) and hand-made archives for the corner cases."""

import pickle
import re
import shutil
import struct
import time
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from kbert.checkpoint.safetensors_io import read_safetensors
from kbert.checkpoint.torch_pickle import read_torch_bin
from kbert.errors import CheckpointNotFoundError, CorruptCheckpointError, UnsafeCheckpointError

FIXTURES = Path(__file__).parent / "fixtures" / "torch_bin"


@pytest.fixture(scope="module")
def expected():
    with np.load(FIXTURES / "expected.npz") as data:
        return {key: data[key] for key in data.files}


def _names(path):
    return re.escape(str(path))


# --- files written by torch -------------------------------------------------------------------
@pytest.mark.parametrize("stem", ["dtypes", "views"])
def test_matches_values_saved_by_torch(stem, expected):
    loaded = read_torch_bin(FIXTURES / f"{stem}.bin")
    wanted = {key.split("/", 1)[1]: value for key, value in expected.items() if key.startswith(stem + "/")}
    assert set(loaded) == set(wanted)
    for name, value in wanted.items():
        array = loaded[name]
        assert array.shape == value.shape, name
        assert array.flags.c_contiguous and array.flags.writeable, name
        np.testing.assert_array_equal(array.astype(value.dtype), value, err_msg=name)


def test_dtypes_are_preserved():
    loaded = read_torch_bin(FIXTURES / "dtypes.bin")
    for name in ["float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"]:
        assert loaded[name].dtype == np.dtype(name), name
    assert loaded["bfloat16"].dtype == np.dtype(ml_dtypes.bfloat16)
    assert loaded["scalar"].shape == () and loaded["scalar"] == 3.5
    assert loaded["empty"].shape == (0, 3) and loaded["empty"].dtype == np.float32
    np.testing.assert_array_equal(loaded["parameter"], [0.25, 0.25])  # saved as an nn.Parameter


def test_views_of_one_storage_become_independent_copies():
    path = FIXTURES / "views.bin"
    # the fixture really stores six tensors in two storages (a 24-element base and a 3x4 matrix)
    assert sum("/data/" in n for n in zipfile.ZipFile(path).namelist()) == 2
    loaded = read_torch_bin(path)
    np.testing.assert_array_equal(loaded["transposed"], np.arange(12.0).reshape(3, 4).T)
    np.testing.assert_array_equal(loaded["shared_a"], [2, 3, 4])
    np.testing.assert_array_equal(loaded["shared_b"], [[4, 5, 6], [7, 8, 9]])
    np.testing.assert_array_equal(loaded["every_other"], np.arange(1, 13, 2))
    np.testing.assert_array_equal(loaded["column"], [1, 5, 9])
    assert not np.shares_memory(loaded["shared_a"], loaded["shared_b"])
    loaded["shared_a"][2] = -1  # element 4 of the base storage, which shared_b starts with
    assert loaded["shared_b"][0, 0] == 4


def test_tiny_bert_bin_equals_its_safetensors():
    folder = FIXTURES / "tiny_bert"
    from_bin = read_torch_bin(folder / "pytorch_model.bin")
    from_safetensors = read_safetensors(folder / "model.safetensors")
    assert len(from_bin) == 41
    assert set(from_bin) == set(from_safetensors)
    for name, array in from_safetensors.items():
        assert from_bin[name].dtype == array.dtype and from_bin[name].shape == array.shape, name
        np.testing.assert_array_equal(from_bin[name], array, err_msg=name)
    assert from_bin["bert.encoder.layer.1.intermediate.dense.weight"].shape == (37, 32)


# --- malicious pickles ------------------------------------------------------------------------
@pytest.mark.parametrize("filename, global_name, marker", [
    ("malicious_os_system.bin", "os.system", "kbert_pwned_os_system"),
    ("malicious_eval.bin", "builtins.eval", "kbert_pwned_eval"),
    ("malicious_popen.bin", "subprocess.Popen", "kbert_pwned_popen"),
])
def test_malicious_fixture_is_refused_and_never_run(tmp_path, monkeypatch, filename, global_name, marker):
    monkeypatch.chdir(tmp_path)  # every payload would create `marker` in the working directory
    path = FIXTURES / filename
    message = (_names(path) + r": refusing to load: the pickle asks for '" + re.escape(global_name)
               + r"', which a weights file never needs; it may be malicious\. Convert it to safetensors")
    with pytest.raises(UnsafeCheckpointError, match=message):
        read_torch_bin(path)
    time.sleep(0.05)  # Popen would run asynchronously; give a started `touch` time to finish
    assert not (tmp_path / marker).exists()


def test_malicious_fixture_payload_is_live(tmp_path, monkeypatch):
    """Control: a plain unpickler does run the payload, so the test above can fail."""
    monkeypatch.chdir(tmp_path)
    data = zipfile.ZipFile(FIXTURES / "malicious_eval.bin").read("archive/data.pkl")
    pickle.loads(data)
    assert (tmp_path / "kbert_pwned_eval").exists()


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return eval, (f"open({str(self.target)!r}, 'w').close()",)


def _inst_opcode_pickle(target):  # protocol 0 INST: also resolves through find_class
    return b"(S" + repr(f"open({str(target)!r}, 'w').close()").encode() + b"\nibuiltins\neval\n."


@pytest.mark.parametrize("make", [
    lambda t: pickle.dumps({"w": _Payload(t)}, protocol=2),  # GLOBAL + REDUCE
    lambda t: pickle.dumps({"w": _Payload(t)}, protocol=4),  # STACK_GLOBAL + REDUCE
    lambda t: pickle.dumps({"w": _Payload(t)}, protocol=0),
    _inst_opcode_pickle,
], ids=["protocol2", "protocol4", "protocol0", "INST"])
def test_any_pickle_opcode_reaching_a_global_is_refused(tmp_path, make):
    target = tmp_path / "pwned"
    path = _zip(tmp_path / "evil.bin", {"archive/data.pkl": make(target)})
    with pytest.raises(UnsafeCheckpointError, match=_names(path) + r".*asks for '(__builtin__|builtins)\.eval'"):
        read_torch_bin(path)
    assert not target.exists()


def test_unknown_torch_global_is_refused(tmp_path):
    path = _torch_zip(tmp_path / "x.bin", {"w": ("FloatStorage", "0", 1, 0, (1,), (1,))},
                      {"0": np.ones(1, np.float32).tobytes()},
                      rebuild=b"ctorch._utils\n_rebuild_qtensor\n")
    with pytest.raises(UnsafeCheckpointError, match="asks for 'torch._utils._rebuild_qtensor'"):
        read_torch_bin(path)


# --- hand-made torch-format archives ----------------------------------------------------------
def _zip(path, records):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in records.items():
            archive.writestr(name, data)
    return path


def _str(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE


def _int(value):
    return b"J" + struct.pack("<i", value)  # BININT


def _ints(values):
    return b"(" + b"".join(_int(v) for v in values) + b"t"  # MARK ... TUPLE


def _state_dict_pickle(tensors, rebuild=b"ctorch._utils\n_rebuild_tensor_v2\n"):
    """Protocol-2 pickle of {name: tensor} exactly as torch writes it.

    tensors: {name: (storage class, storage key, numel, offset, size, stride)}.
    """
    out = b"\x80\x02}("  # PROTO 2, EMPTY_DICT, MARK
    for name, (storage_type, key, numel, offset, size, stride) in tensors.items():
        persistent_id = (b"(" + _str("storage") + f"ctorch\n{storage_type}\n".encode() + _str(key)
                         + _str("cpu") + _int(numel) + b"tQ")  # tuple, BINPERSID
        out += (_str(name) + rebuild + b"(" + persistent_id + _int(offset) + _ints(size) + _ints(stride)
                + b"\x89" + b"ccollections\nOrderedDict\n)R" + b"tR")  # False, OrderedDict(), call
    return out + b"u."  # SETITEMS, STOP


def _torch_zip(path, tensors, storages, byteorder="little", rebuild=b"ctorch._utils\n_rebuild_tensor_v2\n"):
    records = {"archive/data.pkl": _state_dict_pickle(tensors, rebuild), "archive/version": "3\n"}
    if byteorder is not None:
        records["archive/byteorder"] = byteorder
    records.update({f"archive/data/{key}": data for key, data in storages.items()})
    return _zip(path, records)


def test_hand_made_archive_without_byteorder_record_is_little_endian(tmp_path):
    path = _torch_zip(tmp_path / "x.bin", {"w": ("IntStorage", "0", 6, 0, (2, 3), (3, 1)),
                                           "w_t": ("IntStorage", "0", 6, 0, (3, 2), (1, 3)),
                                           "last": ("IntStorage", "0", 6, 5, (), ())},
                      {"0": np.arange(6, dtype="<i4").tobytes()}, byteorder=None)
    loaded = read_torch_bin(path)
    np.testing.assert_array_equal(loaded["w"], [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(loaded["w_t"], [[0, 3], [1, 4], [2, 5]])
    assert loaded["last"].shape == () and loaded["last"] == 5


def test_big_endian_archive(tmp_path):
    values = np.array([1.5, -2.0, 3.25], dtype=np.float32)
    bf16 = np.array([0.5, 7.0], dtype=ml_dtypes.bfloat16)
    path = _torch_zip(tmp_path / "x.bin", {"f": ("FloatStorage", "0", 3, 0, (3,), (1,)),
                                           "h": ("BFloat16Storage", "1", 2, 0, (2,), (1,)),
                                           "b": ("ByteStorage", "2", 2, 0, (2,), (1,))},
                      {"0": values.astype(">f4").tobytes(), "1": bf16.view("<u2").astype(">u2").tobytes(),
                       "2": bytes([3, 250])}, byteorder="big")
    loaded = read_torch_bin(path)
    np.testing.assert_array_equal(loaded["f"], values)
    assert loaded["h"].dtype == bf16.dtype
    np.testing.assert_array_equal(loaded["h"].astype(np.float32), [0.5, 7.0])
    np.testing.assert_array_equal(loaded["b"], [3, 250])


def test_bad_byteorder_record(tmp_path):
    path = _torch_zip(tmp_path / "x.bin", {}, {}, byteorder="middle")
    with pytest.raises(CorruptCheckpointError, match=_names(path) + ": byteorder record says 'middle'"):
        read_torch_bin(path)


def test_view_beyond_its_storage(tmp_path):
    path = _torch_zip(tmp_path / "x.bin", {"enc.w": ("FloatStorage", "0", 4, 1, (2, 2), (2, 1))},
                      {"0": np.zeros(4, np.float32).tobytes()})
    with pytest.raises(CorruptCheckpointError,
                       match=_names(path) + r": tensor 'enc.w' .*reads element 4, but the storage holds only 4"):
        read_torch_bin(path)


def test_negative_stride(tmp_path):
    path = _torch_zip(tmp_path / "x.bin", {"w": ("FloatStorage", "0", 4, 3, (4,), (-1,))},
                      {"0": np.zeros(4, np.float32).tobytes()})
    with pytest.raises(CorruptCheckpointError,
                       match=_names(path) + r": tensor 'w' .*negative offset, size or stride"):
        read_torch_bin(path)


def test_storage_record_shorter_than_its_numel(tmp_path):
    path = _torch_zip(tmp_path / "x.bin", {"w": ("FloatStorage", "0", 4, 0, (4,), (1,))},
                      {"0": np.zeros(3, np.float32).tobytes()})
    with pytest.raises(CorruptCheckpointError,
                       match=_names(path) + r": storage 'archive/data/0' has 12 bytes but should hold 4 float32"):
        read_torch_bin(path)


def test_storage_used_with_two_dtypes(tmp_path):
    path = _torch_zip(tmp_path / "x.bin", {"a": ("FloatStorage", "0", 2, 0, (2,), (1,)),
                                           "b": ("IntStorage", "0", 2, 0, (2,), (1,))},
                      {"0": np.zeros(2, np.float32).tobytes()})
    with pytest.raises(CorruptCheckpointError,
                       match=_names(path) + ": storage '0' is used both as float32 and as int32"):
        read_torch_bin(path)


def test_missing_storage_record(tmp_path):
    path = _torch_zip(tmp_path / "x.bin", {"w": ("FloatStorage", "7", 1, 0, (1,), (1,))}, {})
    with pytest.raises(CorruptCheckpointError, match=_names(path) + ": storage record 'archive/data/7' is missing"):
        read_torch_bin(path)


def test_real_file_with_a_storage_removed(tmp_path):
    path = tmp_path / "dtypes.bin"
    with zipfile.ZipFile(FIXTURES / "dtypes.bin") as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            if info.filename != "dtypes/data/0":
                target.writestr(info, source.read(info))
    with pytest.raises(CorruptCheckpointError, match=_names(path) + ": storage record 'dtypes/data/0' is missing"):
        read_torch_bin(path)


def test_storage_with_bad_crc(tmp_path):
    path = tmp_path / "views.bin"
    shutil.copy(FIXTURES / "views.bin", path)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("views/data/0")
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    raw[info.header_offset + 30 + name_len + extra_len] ^= 0xFF  # flip the first data byte
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptCheckpointError, match=_names(path) + ": cannot read storage 'views/data/0'.*CRC"):
        read_torch_bin(path)


@pytest.mark.parametrize("pickle_bytes, message", [
    (pickle.dumps([1, 2], protocol=2), "holds a pickled list, not a state dict"),
    (pickle.dumps({"epoch": 3}, protocol=2), "entry 'epoch' is a int, not a tensor"),
    (b"\x80\x02}q\x00(X\x01\x00\x00\x00wq\x01X\x01\x00\x00\x00xQu.", "refers to 'x', which is not a ('storage'"),
    (b"\x80\x02}(X", "data.pkl is not a valid state-dict pickle"),
])
def test_pickle_that_is_not_a_state_dict(tmp_path, pickle_bytes, message):
    path = _zip(tmp_path / "x.bin", {"archive/data.pkl": pickle_bytes})
    with pytest.raises(CorruptCheckpointError, match=_names(path) + ": .*" + re.escape(message)):
        read_torch_bin(path)


# --- files that are not torch zip archives ----------------------------------------------------
def test_legacy_format_is_explained():
    path = FIXTURES / "legacy_format.bin"
    with pytest.raises(CorruptCheckpointError,
                       match=_names(path) + r": this is PyTorch's legacy \(torch < 1.6\) format"
                       r".*re-save it.*safetensors"):
        read_torch_bin(path)


def test_garbage_truncated_and_empty_files(tmp_path):
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"hello, this is not a checkpoint")
    with pytest.raises(CorruptCheckpointError, match=_names(garbage) + ": not a PyTorch checkpoint: not a zip"):
        read_torch_bin(garbage)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes((FIXTURES / "dtypes.bin").read_bytes()[:2000])
    with pytest.raises(CorruptCheckpointError, match=_names(truncated) + ": not a PyTorch checkpoint.*truncated"):
        read_torch_bin(truncated)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(CorruptCheckpointError, match=_names(empty) + ": file is empty"):
        read_torch_bin(empty)


def test_zip_without_data_pkl(tmp_path):
    path = _zip(tmp_path / "x.bin", {"readme.txt": "hi", "archive/data/0": b"1234"})
    with pytest.raises(CorruptCheckpointError, match=_names(path) + ": zip archive has no <name>/data.pkl"):
        read_torch_bin(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match=_names(tmp_path / "no.bin") + ": no such file"):
        read_torch_bin(tmp_path / "no.bin")

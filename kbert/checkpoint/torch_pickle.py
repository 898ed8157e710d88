"""Read PyTorch ``torch.save`` files (``pytorch_model.bin``) without torch, and without running code.

Since torch 1.6 ``torch.save`` writes a zip archive::

    <prefix>/data.pkl        pickle of the state dict; each tensor's bytes are a "persistent id"
    <prefix>/data/<key>      one raw little-endian storage per key (several tensors may share one)
    <prefix>/byteorder       "little" or "big" (absent in files from before torch 2.0 = little)
    <prefix>/version, .format_version, .storage_alignment, .data/serialization_id   (ignored)

A tensor is pickled as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``, the
storage as the persistent id ``('storage', torch.FloatStorage, key, location, numel)``. torch 2.13
still writes the typed storage classes (``torch.FloatStorage`` ...) there, and ``save_pretrained``'s
pickle references nothing but those, ``_rebuild_tensor_v2`` and ``collections.OrderedDict``.

Pickles can call any importable function, so :class:`_RestrictedUnpickler` resolves globals from a
fixed table of harmless stand-ins (numpy-based, no torch) and refuses everything else with
:class:`~kbert.errors.UnsafeCheckpointError` *before* anything is called.

Example:
    >>> read_torch_bin("tests/fixtures/torch_bin/dtypes.bin")["int64"].tolist()
    [0, 1, 2, 3, 4]
"""

from __future__ import annotations

import collections
import math
import os
import pickle
import zipfile
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from kbert.errors import CheckpointNotFoundError, CorruptCheckpointError, KbertError, UnsafeCheckpointError

__all__ = ["read_torch_bin"]


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for a class such as ``torch.FloatStorage``: only its element dtype matters."""

    name: str
    dtype: np.dtype


_STORAGE_TYPES = {
    name: _StorageType(name, np.dtype(dtype))
    for name, dtype in {
        "DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2",
        "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": "<i8", "IntStorage": "<i4",
        "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
    }.items()
}


@dataclass(frozen=True)
class _Storage:
    """What ``persistent_load`` returns: one storage's elements, as a flat read-only array."""

    key: str
    values: np.ndarray


@dataclass(frozen=True)
class _TensorRef:
    """What ``_rebuild_tensor_v2`` returns; turned into an array once the tensor's name is known."""

    storage: _Storage
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise ValueError(f"_rebuild_tensor_v2 got {type(storage).__name__} instead of a storage")
    size, stride = tuple(size), tuple(stride)
    ints = (storage_offset, *size, *stride)
    if not all(type(i) is int for i in ints) or len(size) != len(stride):
        raise ValueError(f"_rebuild_tensor_v2 got offset {storage_offset!r}, size {size!r}, stride {stride!r}")
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data  # an nn.Parameter is its tensor, as far as weights are concerned


# (module, name) -> the object the pickle gets instead. Nothing else can be loaded.
_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): storage_type for name, storage_type in _STORAGE_TYPES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that admits only :data:`_ALLOWED` and reads storages from the zip archive."""

    def __init__(self, file, *, path: str, archive: zipfile.ZipFile, prefix: str, big_endian: bool):
        super().__init__(file)
        self._path, self._archive, self._prefix, self._big_endian = path, archive, prefix, big_endian
        self._storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except (KeyError, TypeError):
            raise UnsafeCheckpointError(
                f"{self._path}: refusing to load: the pickle asks for '{module}.{name}', which a weights "
                "file never needs; it may be malicious. Convert it to safetensors with a trusted tool."
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
                and type(pid[4]) is int and pid[4] >= 0):
            raise CorruptCheckpointError(
                f"{self._path}: data.pkl refers to {repr(pid)[:200]}, which is not a ('storage', type, "
                "key, location, numel) record")
        _, storage_type, key, _location, numel = pid
        if key not in self._storages:
            self._storages[key] = self._load_storage(key, storage_type.dtype, numel)
        storage = self._storages[key]
        if storage.values.dtype != storage_type.dtype:
            raise CorruptCheckpointError(
                f"{self._path}: storage '{key}' is used both as {storage.values.dtype.name} and as "
                f"{storage_type.dtype.name}")
        return storage

    def _load_storage(self, key: str, dtype: np.dtype, numel: int) -> _Storage:
        record = f"{self._prefix}/data/{key}"
        try:
            raw = self._archive.read(record)
        except KeyError:
            raise CorruptCheckpointError(f"{self._path}: storage record '{record}' is missing") from None
        except (zipfile.BadZipFile, OSError, EOFError) as err:  # bad CRC, truncated member ...
            raise CorruptCheckpointError(f"{self._path}: cannot read storage '{record}': {err}") from None
        if len(raw) < numel * dtype.itemsize:
            raise CorruptCheckpointError(
                f"{self._path}: storage '{record}' has {len(raw)} bytes but should hold {numel} "
                f"{dtype.name} values ({numel * dtype.itemsize} bytes)")
        values = np.frombuffer(raw, dtype=dtype, count=numel)
        if self._big_endian and dtype.itemsize > 1:  # swap the bytes, keep the (little-endian) dtype
            values = values.view(f"u{dtype.itemsize}").byteswap().view(dtype)
        return _Storage(key, values)


def _tensor_to_array(path: str, name: str, ref: _TensorRef) -> np.ndarray:
    """Apply offset, size and stride to the storage; return a contiguous, writable copy."""
    values = ref.storage.values
    size, stride, offset = ref.size, ref.stride, ref.offset
    where = (f"{path}: tensor {name!r} (storage '{ref.storage.key}', offset {offset}, "
             f"size {list(size)}, stride {list(stride)})")
    if offset < 0 or any(n < 0 for n in size) or any(s < 0 for s in stride):
        raise CorruptCheckpointError(f"{where} has a negative offset, size or stride")
    if math.prod(size) == 0:
        return np.zeros(size, dtype=values.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= values.size:
        raise CorruptCheckpointError(
            f"{where} reads element {last}, but the storage holds only {values.size} elements")
    view = np.lib.stride_tricks.as_strided(
        values[offset:], shape=size, strides=[s * values.itemsize for s in stride], writeable=False)
    return np.array(view, order="C", copy=True)


def _archive_prefix(path: str, archive: zipfile.ZipFile) -> str:
    for name in archive.namelist():
        folder, _, base = name.rpartition("/")
        if base == "data.pkl" and folder and "/" not in folder:
            return folder
    shown = ", ".join(archive.namelist()[:5]) or "nothing"
    raise CorruptCheckpointError(
        f"{path}: zip archive has no <name>/data.pkl, so it is not a torch.save file (it holds {shown})")


def _not_a_zip_message(path: str) -> str:
    with open(path, "rb") as f:
        head = f.read(16)
    # Legacy files start with a protocol-2 pickle of the magic number 0x1950a86a20f9469cfc6c;
    # the oldest ones are tar archives.
    if head.startswith(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19") or _is_tar(path):
        return (f"{path}: this is PyTorch's legacy (torch < 1.6) format, which kbert cannot read; "
                "re-save it with a recent torch (torch.save(torch.load(f, weights_only=True), f)) "
                "or convert it to model.safetensors")
    if not head:
        return f"{path}: file is empty"
    return f"{path}: not a PyTorch checkpoint: not a zip archive (it starts with {head[:8]!r}; truncated?)"


def _is_tar(path: str) -> bool:
    import tarfile

    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def read_torch_bin(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a ``torch.save`` state dict (e.g. ``pytorch_model.bin``) into numpy arrays, without torch.

    Arrays are contiguous, writable copies with the tensor's dtype (bfloat16 as
    ``ml_dtypes.bfloat16``). Only a flat ``{name: tensor}`` dict is accepted. Raises
    ``CheckpointNotFoundError``, ``CorruptCheckpointError``, or ``UnsafeCheckpointError`` when the
    pickle asks for anything beyond tensors (nothing it asks for is ever called).

    Example:
        >>> sd = read_torch_bin("tests/fixtures/torch_bin/tiny_bert/pytorch_model.bin")
        >>> sd["classifier.weight"].shape, sd["classifier.weight"].dtype.name
        ((3, 32), 'float32')
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointNotFoundError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise CorruptCheckpointError(_not_a_zip_message(path))
    try:
        with zipfile.ZipFile(path) as archive:
            prefix = _archive_prefix(path, archive)
            try:
                order = archive.read(f"{prefix}/byteorder").decode("ascii").strip()
            except KeyError:
                order = "little"
            if order not in ("little", "big"):
                raise CorruptCheckpointError(f"{path}: byteorder record says {order!r}, not little or big")
            with archive.open(f"{prefix}/data.pkl") as pkl:
                unpickler = _RestrictedUnpickler(pkl, path=path, archive=archive, prefix=prefix,
                                                 big_endian=order == "big")
                state = unpickler.load()
            if not isinstance(state, dict):
                raise CorruptCheckpointError(
                    f"{path}: holds a pickled {type(state).__name__}, not a state dict ({{name: tensor}})")
            tensors = {}
            for name, value in state.items():
                if not isinstance(name, str) or not isinstance(value, _TensorRef):
                    raise CorruptCheckpointError(
                        f"{path}: entry {name!r} is a {type(value).__name__}, not a tensor; only a flat "
                        "state dict of tensors can be read")
                tensors[name] = _tensor_to_array(path, name, value)
    except KbertError:
        raise
    except (pickle.UnpicklingError, zipfile.BadZipFile, ValueError, TypeError, AttributeError,
            IndexError, KeyError, EOFError, OSError, RecursionError) as err:
        raise CorruptCheckpointError(f"{path}: data.pkl is not a valid state-dict pickle: {err}") from None
    return tensors

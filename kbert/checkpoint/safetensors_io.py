"""Read and write the safetensors format with numpy only (no ``safetensors`` package).

A safetensors file is::

    8 bytes   little-endian unsigned header length N
    N bytes   UTF-8 JSON object: {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets"}}
    rest      the data buffer; ``data_offsets`` = [begin, end) are byte offsets into it

:func:`read_safetensors` memory-maps the file and returns **read-only views** into the map (no copy,
nothing is read until used); call ``numpy.array(x)`` for a writable copy. The map stays open while
any returned array is alive. :func:`write_safetensors` writes the same bytes as the official
library (tensors ordered by dtype size, then name, so every tensor is aligned; header padded with
spaces to a multiple of 8) and replaces the target atomically.

Example:
    >>> import tempfile, os, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> write_safetensors(path, {"w": np.eye(2, dtype=np.float32)})
    >>> read_safetensors(path)["w"].tolist()
    [[1.0, 0.0], [0.0, 1.0]]
"""

from __future__ import annotations

import json
import math
import mmap
import os
from collections.abc import Mapping

import ml_dtypes
import numpy as np

from kbert.atomic_files import write_with
from kbert.errors import CheckpointNotFoundError, CorruptCheckpointError, UnsupportedModelError

__all__ = ["read_safetensors", "read_safetensors_metadata", "write_safetensors"]

# safetensors dtype code -> numpy dtype (little-endian, as the format stores it).
_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
# Codes the format defines but kbert does not read (they have no use in a BERT checkpoint).
_KNOWN_UNSUPPORTED = {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"}
# The official writer lays tensors out by this rank, highest first (the order of its Dtype enum),
# then by name; larger items first keeps every tensor aligned to its item size.
_WRITE_RANK = {code: rank for rank, code in enumerate(
    ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"])}
_MAX_HEADER_BYTES = 100_000_000  # the official library's limit, too


def _code_for(dtype: np.dtype) -> str | None:
    for code, known in _DTYPES.items():
        if dtype == known or (dtype.kind != "V" and dtype.newbyteorder("<") == known):
            return code
    return None


def _read_header(path: str, f) -> tuple[int, dict, dict[str, str]]:
    """Parse and validate the header; return (data start, tensor entries, metadata)."""
    size = os.fstat(f.fileno()).st_size
    if size < 8:
        raise CorruptCheckpointError(
            f"{path}: file has {size} bytes, fewer than the 8-byte header length of a safetensors file")
    header_len = int.from_bytes(f.read(8), "little")
    if header_len > size - 8:
        raise CorruptCheckpointError(
            f"{path}: header says it is {header_len} bytes long but the file has only {size - 8} bytes "
            "after the length field (truncated, or not a safetensors file)")
    if header_len > _MAX_HEADER_BYTES:
        raise CorruptCheckpointError(f"{path}: header length {header_len} is over the 100 MB limit")

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise CorruptCheckpointError(f"{path}: header names {dup[0]!r} more than once")
        return dict(pairs)

    raw = f.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError) as err:
        raise CorruptCheckpointError(f"{path}: header is not valid UTF-8 JSON ({err})") from None
    if not isinstance(header, dict):
        raise CorruptCheckpointError(
            f"{path}: header is a JSON {type(header).__name__}, not an object of tensor entries")

    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CorruptCheckpointError(f"{path}: '__metadata__' must map strings to strings, got {metadata!r}")

    buffer_len = size - 8 - header_len
    for name, entry in header.items():
        _check_entry(path, name, entry, buffer_len)
    return 8 + header_len, header, metadata


def _check_entry(path: str, name: str, entry, buffer_len: int) -> None:
    where = f"{path}: tensor {name!r}"
    if not isinstance(entry, dict):
        raise CorruptCheckpointError(f"{where}: header entry is a {type(entry).__name__}, not an object")
    missing = [k for k in ("dtype", "shape", "data_offsets") if k not in entry]
    if missing:
        raise CorruptCheckpointError(f"{where}: header entry lacks {', '.join(missing)}")
    code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if code not in _DTYPES:
        if code in _KNOWN_UNSUPPORTED:
            raise UnsupportedModelError(f"{where} has dtype {code}, which kbert does not support")
        raise CorruptCheckpointError(f"{where}: unknown dtype {code!r}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise CorruptCheckpointError(f"{where}: shape {shape!r} is not a list of non-negative integers")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= buffer_len):
        raise CorruptCheckpointError(
            f"{where}: data_offsets {offsets!r} are not a [begin, end] range within the "
            f"{buffer_len}-byte data buffer")
    expected = math.prod(shape) * _DTYPES[code].itemsize
    if offsets[1] - offsets[0] != expected:
        raise CorruptCheckpointError(
            f"{where}: data_offsets span {offsets[1] - offsets[0]} bytes but shape {shape} of {code} "
            f"needs {expected}")


def _open(path):
    path = os.fspath(path)
    try:
        return path, open(path, "rb")
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CheckpointNotFoundError(f"{path}: is a directory, not a safetensors file") from None


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every tensor of a ``.safetensors`` file, as read-only views of a memory map.

    BF16 tensors come back as ``ml_dtypes.bfloat16`` arrays. Raises ``CheckpointNotFoundError``
    for a missing file, ``CorruptCheckpointError`` (naming the file and tensor) for a malformed one.

    Example:
        >>> import tempfile, os, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> write_safetensors(path, {"bias": np.arange(3, dtype=np.int64)})
        >>> t = read_safetensors(path)["bias"]
        >>> t.tolist(), t.dtype.name, t.flags.writeable
        ([0, 1, 2], 'int64', False)
    """
    path, f = _open(path)
    with f:
        start, entries, _ = _read_header(path, f)
        size = os.fstat(f.fileno()).st_size
        buffer = np.frombuffer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), dtype=np.uint8,
                               count=size - start, offset=start)
    tensors = {}
    for name, entry in entries.items():
        dtype = _DTYPES[entry["dtype"]]
        begin, end = entry["data_offsets"]
        if begin == end:  # zero-size tensor; a zero-length slice cannot be viewed as every dtype
            array = np.empty(entry["shape"], dtype=dtype)
            array.flags.writeable = False
        else:
            array = buffer[begin:end].view(dtype).reshape(entry["shape"])
        tensors[name] = array
    return tensors


def read_safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """Return the ``__metadata__`` of a ``.safetensors`` file (``{}`` when it has none).

    Only the header is read.

    Example:
        >>> import tempfile, os, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> write_safetensors(path, {"x": np.zeros(1)}, metadata={"format": "pt"})
        >>> read_safetensors_metadata(path)
        {'format': 'pt'}
    """
    path, f = _open(path)
    with f:
        return _read_header(path, f)[2]


def write_safetensors(path: str | os.PathLike, tensors: Mapping[str, np.ndarray],
                      metadata: Mapping[str, str] | None = None) -> None:
    """Write ``tensors`` to ``path`` in the safetensors format, atomically.

    The bytes are those the official ``safetensors`` library writes for the same input. ``metadata``
    defaults to ``{"format": "pt"}``, which Hugging Face transformers expects; pass ``{}`` for none.
    The file is written to a temporary file in the same folder and then renamed over ``path``, so a
    reader never sees a half-written file. Raises ``TypeError``/``ValueError`` for a name that is not
    a string, a dtype the format cannot store, or non-string metadata.

    Example:
        >>> import tempfile, os, numpy as np, ml_dtypes
        >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
        >>> write_safetensors(path, {"a": np.ones((2, 3), ml_dtypes.bfloat16), "b": np.int8(7)})
        >>> {k: (v.shape, v.dtype.name) for k, v in read_safetensors(path).items()}
        {'a': ((2, 3), 'bfloat16'), 'b': ((), 'int8')}
    """
    path = os.fspath(path)
    metadata = {"format": "pt"} if metadata is None else dict(metadata)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError(f"{path}: metadata must map strings to strings, got {metadata!r}")

    prepared = []
    for name, value in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"{path}: {name!r} cannot be a tensor name")
        array = np.asarray(value)
        code = _code_for(array.dtype)
        if code is None:
            raise TypeError(f"{path}: tensor {name!r} has dtype {array.dtype}, which safetensors cannot store")
        array = np.asarray(array, dtype=_DTYPES[code], order="C")  # contiguous, little-endian, keeps 0-d
        prepared.append((name, code, array))
    prepared.sort(key=lambda item: (-_WRITE_RANK[item[1]], item[0]))

    header: dict = {"__metadata__": metadata}
    offset = 0
    for name, code, array in prepared:
        header[name] = {"dtype": code, "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    header_bytes = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)

    def write(f):
        f.write(len(header_bytes).to_bytes(8, "little"))
        f.write(header_bytes)
        for _, _, array in prepared:
            if array.nbytes:
                f.write(array.reshape(-1).view(np.uint8).data)

    write_with(path, write)

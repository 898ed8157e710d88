"""Read and write ``.safetensors`` files through the official ``safetensors`` library.

This module is a thin adapter over ``safetensors`` (its numpy API: ``safe_open(framework="numpy")``
to read, ``safetensors.numpy.save`` to write). The library does all the parsing, validation and
serialization; kbert adds only what its callers rely on:

* **kbert's errors.** A missing file raises ``CheckpointNotFoundError``; a malformed one (truncated,
  bad header JSON, offsets outside the data, ...) raises ``CorruptCheckpointError`` whose message
  starts with the file's path and carries the library's reason. No bare ``SafetensorError`` leaks.
* **kbert's dtypes.** Only the dtypes a BERT checkpoint uses are read (F64, F32, F16, BF16, signed and
  unsigned 8-64 bit integers, BOOL); BF16 comes back as ``ml_dtypes.bfloat16``. Any other dtype the
  format defines (FP8, FP6, FP4, C64) raises ``UnsupportedModelError`` naming the tensor (or
  ``CorruptCheckpointError`` where the installed library predates that dtype, as 0.5.3 does F4,
  F6, F8_E8M0 and C64).
* **Safe inputs to the writer.** The library serializes from raw pointers, so it writes the *memory*
  of a non-contiguous array (e.g. a transpose) rather than its values, and it accepts the reserved
  name ``__metadata__``; the writer makes every array C-contiguous and rejects that name.
* **Atomic writes** through :mod:`kbert.atomic_files` (temporary file, fsync, ``os.replace``).

:func:`read_safetensors` returns **read-only** arrays (the library gives private copies; kbert marks
them read-only so that no caller mutates loaded weights by accident); ``numpy.array(x)`` makes a
writable copy. The library has no zero-copy numpy path (it copies each tensor out of its memory
map), so reading takes the file's size in memory and a copy's time: about 0.2 s for the 91 MB
MiniLM checkpoint, against milliseconds for the lazy memory-mapped views of kbert's former reader.

Example:
    >>> import tempfile, os, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> write_safetensors(path, {"w": np.eye(2, dtype=np.float32)})
    >>> read_safetensors(path)["w"].tolist()
    [[1.0, 0.0], [0.0, 1.0]]
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import numpy as np
import safetensors
import safetensors.numpy

from kbert.atomic_files import write_bytes
from kbert.errors import CheckpointNotFoundError, CorruptCheckpointError, UnsupportedModelError

__all__ = ["read_safetensors", "read_safetensors_metadata", "write_safetensors"]


def _let_numpy_read_bfloat16() -> None:
    """Make the library's numpy framework able to read BF16 tensors.

    It builds a BF16 array with ``numpy.dtype("bfloat16")``, a name numpy knows only once
    ``ml_dtypes`` has been imported. Measured with safetensors 0.8.0 and 0.5.3, in a fresh
    interpreter: ``safe_open(path, framework="numpy").get_tensor(name)`` on a BF16 tensor raises
    ``TypeError: data type 'bfloat16' not understood``; after ``import ml_dtypes`` it returns an
    ``ml_dtypes.bfloat16`` array with the file's exact bits. (Writing needs nothing: the writer passes
    ``dtype.name``, ``"bfloat16"``, to the library, which maps it to BF16.) TensorFlow imports
    ml_dtypes too, but this module must not depend on TF having been imported first.
    """
    import ml_dtypes  # noqa: F401  (importing it registers "bfloat16" with numpy)


_let_numpy_read_bfloat16()

# The safetensors dtype codes kbert reads. The library also defines F8_*, F6_*, F4 and C64; they have
# no use in a BERT checkpoint (and the numpy framework of safetensors 0.8 cannot even return the
# FP8/FP4 ones: it looks up e.g. ``numpy.float8_e4m3fn``, which does not exist: AttributeError).
_SUPPORTED_DTYPES = frozenset(
    {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL"})
# The numpy dtypes (by ``dtype.name``) the writer accepts: exactly those the reader returns. The
# library could also store complex64 and ml_dtypes' FP8 types, which kbert would not read back.
_WRITABLE_DTYPES = frozenset({"float64", "float32", "float16", "bfloat16", "int64", "int32", "int16",
                              "int8", "uint64", "uint32", "uint16", "uint8", "bool"})


def _check_path(path: str) -> None:
    """``CheckpointNotFoundError`` for a missing path or a folder (the library reports a folder as
    ``OSError: No such device``)."""
    if os.path.isdir(path):
        raise CheckpointNotFoundError(f"{path}: is a directory, not a safetensors file")
    if not os.path.exists(path):
        raise CheckpointNotFoundError(f"{path}: no such file")


def _corrupt(path: str, err: Exception) -> CorruptCheckpointError:
    return CorruptCheckpointError(f"{path}: not a valid safetensors file ({err})")


def _open(path: str) -> safetensors.safe_open:
    """Open ``path`` with the library, translating its errors into kbert's."""
    _check_path(path)
    try:
        return safetensors.safe_open(path, framework="numpy")
    except FileNotFoundError:  # removed between the check and the open
        raise CheckpointNotFoundError(f"{path}: no such file") from None
    except safetensors.SafetensorError as err:
        raise _corrupt(path, err) from None


def _reject_duplicate_names(path: str) -> None:
    """``CorruptCheckpointError`` if the header names a tensor twice.

    The library's JSON parser keeps the last of duplicated keys silently, so a file with two
    ``"w"`` entries would load one of them without warning. Called only after the library has
    validated the file, so the header length and JSON are known to be sound; only the header
    (not the data) is read.
    """
    with open(path, "rb") as f:
        header = f.read(int.from_bytes(f.read(8), "little"))

    def no_duplicates(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise CorruptCheckpointError(f"{path}: header names {key!r} more than once")
            seen.add(key)
        return dict(pairs)

    json.loads(header, object_pairs_hook=no_duplicates)


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every tensor of a ``.safetensors`` file into read-only numpy arrays.

    BF16 tensors come back as ``ml_dtypes.bfloat16`` arrays (the library's numpy framework returns
    them so). Raises ``CheckpointNotFoundError`` for a missing file, ``CorruptCheckpointError``
    (naming the file) for a malformed one and ``UnsupportedModelError`` (naming the file and the
    tensor) for a dtype kbert does not read.

    Example:
        >>> import tempfile, os, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> write_safetensors(path, {"bias": np.arange(3, dtype=np.int64)})
        >>> t = read_safetensors(path)["bias"]
        >>> t.tolist(), t.dtype.name, t.flags.writeable
        ([0, 1, 2], 'int64', False)
    """
    path = os.fspath(path)
    tensors = {}
    with _open(path) as f:
        try:
            names = f.keys()
            for name in names:
                code = f.get_slice(name).get_dtype()
                if code not in _SUPPORTED_DTYPES:
                    raise UnsupportedModelError(
                        f"{path}: tensor {name!r} has dtype {code}, which kbert does not support")
            for name in names:
                array = f.get_tensor(name)
                array.flags.writeable = False
                tensors[name] = array
        except safetensors.SafetensorError as err:  # e.g. the file changed while it was read
            raise _corrupt(path, err) from None
    _reject_duplicate_names(path)
    return tensors


def read_safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """Return the ``__metadata__`` of a ``.safetensors`` file (``{}`` when it has none).

    Only the header is read; it is validated like :func:`read_safetensors` does.

    Example:
        >>> import tempfile, os, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> write_safetensors(path, {"x": np.zeros(1)}, metadata={"format": "pt"})
        >>> read_safetensors_metadata(path)
        {'format': 'pt'}
    """
    path = os.fspath(path)
    with _open(path) as f:
        metadata = f.metadata()
    _reject_duplicate_names(path)
    return dict(metadata or {})


def write_safetensors(path: str | os.PathLike, tensors: Mapping[str, np.ndarray],
                      metadata: Mapping[str, str] | None = None) -> None:
    """Write ``tensors`` to ``path`` in the safetensors format, atomically.

    The bytes are made by ``safetensors.numpy.save``. ``metadata`` defaults to ``{"format": "pt"}``,
    which Hugging Face transformers expects; pass ``{}`` for none. The file is written to a temporary
    file in the same folder and then renamed over ``path``, so a reader never sees a half-written
    file. The library builds the whole file in memory first, so writing needs about the file's size
    in extra memory. Raises ``TypeError``/``ValueError`` for a name that is not a string, a dtype the format
    cannot store, or non-string metadata; ``path`` is then left as it was.

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

    prepared = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"{path}: {name!r} cannot be a tensor name")
        # order="C": the library serializes raw memory, so a transpose must be made contiguous first;
        # asarray also turns numpy scalars (np.int8(7), which have no .ctypes) into 0-d arrays.
        array = np.asarray(value, order="C")
        if array.dtype.name not in _WRITABLE_DTYPES:
            raise TypeError(f"{path}: tensor {name!r} has dtype {array.dtype}, which safetensors cannot store")
        prepared[name] = array
    try:
        data = safetensors.numpy.save(prepared, metadata=metadata)
    except safetensors.SafetensorError as err:  # not expected after the checks above
        raise ValueError(f"{path}: safetensors cannot serialize these tensors ({err})") from None
    write_bytes(path, data)

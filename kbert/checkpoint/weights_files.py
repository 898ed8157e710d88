"""Find and load the weights of a Hugging Face model folder, whatever the file layout.

Looked for in this order (the first one present wins):

1. ``model.safetensors``
2. ``model.safetensors.index.json`` (sharded: ``{"weight_map": {tensor name: shard file}}``)
3. ``pytorch_model.bin``
4. ``pytorch_model.bin.index.json``

Tensor names are returned exactly as stored; mapping them to kbert's layers happens elsewhere.

Example:
    >>> sd = load_state_dict("tests/fixtures/torch_bin/tiny_bert")
    >>> sd["bert.embeddings.word_embeddings.weight"].shape
    (40, 32)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from kbert.checkpoint.safetensors_io import read_safetensors
from kbert.checkpoint.torch_pickle import read_torch_bin
from kbert.errors import CheckpointNotFoundError, CorruptCheckpointError

__all__ = ["WeightsFiles", "find_weights_files", "load_state_dict", "WEIGHTS_NAMES"]

SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX_NAME = "model.safetensors.index.json"
TORCH_NAME = "pytorch_model.bin"
TORCH_INDEX_NAME = "pytorch_model.bin.index.json"
WEIGHTS_NAMES = (SAFETENSORS_NAME, SAFETENSORS_INDEX_NAME, TORCH_NAME, TORCH_INDEX_NAME)
_UNREADABLE = ("tf_model.h5", "flax_model.msgpack", "model.ckpt.index")


@dataclass(frozen=True)
class WeightsFiles:
    """The weights files of one model folder.

    ``format`` is ``"safetensors"`` or ``"torch"``; ``files`` are the files to read, in order (one,
    or the shards); ``index`` is the ``*.index.json`` of a sharded checkpoint, else ``None``;
    ``weight_map`` maps each tensor name to its shard path (empty when not sharded).
    """

    format: str
    files: tuple[str, ...]
    index: str | None = None
    weight_map: dict[str, str] = field(default_factory=dict, compare=False)


def find_weights_files(folder: str | os.PathLike) -> WeightsFiles:
    """Return which weights files of ``folder`` to load, checking that every shard exists.

    Raises ``CheckpointNotFoundError`` when the folder, all four weights names, or a shard named by
    the index are missing, and ``CorruptCheckpointError`` for an unreadable index.

    Example:
        >>> find_weights_files("tests/fixtures/torch_bin/tiny_bert").files
        ('tests/fixtures/torch_bin/tiny_bert/model.safetensors',)
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        what = "not a directory" if os.path.exists(folder) else "no such directory"
        raise CheckpointNotFoundError(f"{folder}: {what}")
    for name in WEIGHTS_NAMES:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        kind = "safetensors" if name.startswith(SAFETENSORS_NAME) else "torch"
        if not name.endswith(".index.json"):
            return WeightsFiles(kind, (path,))
        weight_map = _read_index(path, folder)
        files = tuple(dict.fromkeys(weight_map.values()))  # shard order of first appearance
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            names = ", ".join(repr(os.path.basename(f)) for f in missing)
            raise CheckpointNotFoundError(
                f"{path}: names {len(files)} shard file(s), but {names} "
                f"{'is' if len(missing) == 1 else 'are'} not in {folder}")
        return WeightsFiles(kind, files, path, weight_map)

    others = [n for n in _UNREADABLE if os.path.exists(os.path.join(folder, n))]
    hint = f" (it has {', '.join(others)}, a format kbert does not read)" if others else ""
    raise CheckpointNotFoundError(
        f"{folder}: no weights file found; looked for {', '.join(WEIGHTS_NAMES)}{hint}")


def _read_index(path: str, folder: str) -> dict[str, str]:
    """Parse a ``*.index.json``; return {tensor name: shard path}."""
    try:
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
    except (UnicodeDecodeError, ValueError) as err:
        raise CorruptCheckpointError(f"{path}: not valid JSON ({err})") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CorruptCheckpointError(f"{path}: has no 'weight_map' object mapping tensor names to shard files")
    shards = {}
    for name, shard in weight_map.items():
        if not isinstance(shard, str) or not shard:
            raise CorruptCheckpointError(f"{path}: weight_map entry {name!r} is {shard!r}, not a file name")
        normal = os.path.normpath(shard)
        if os.path.isabs(normal) or normal == ".." or normal.startswith(".." + os.sep):
            raise CorruptCheckpointError(
                f"{path}: weight_map puts {name!r} in {shard!r}, which is outside the model folder")
        shards[name] = os.path.join(folder, normal)
    return shards


def load_state_dict(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load all tensors of a model folder as ``{name: numpy array}`` (see the module docstring).

    safetensors tensors are read-only arrays (copied out by the safetensors library); ``pytorch_model.bin`` tensors are
    copies. For a sharded checkpoint exactly the names in ``weight_map`` are returned, in its order,
    and each must be found in the shard it names (``CorruptCheckpointError`` otherwise).

    Example:
        >>> sd = load_state_dict("tests/fixtures/torch_bin/tiny_bert")
        >>> sd["classifier.bias"].dtype.name, len(sd)
        ('float32', 41)
    """
    found = find_weights_files(folder)
    read = read_safetensors if found.format == "safetensors" else read_torch_bin
    if found.index is None:
        return read(found.files[0])

    names_by_shard: dict[str, list[str]] = {}
    for name, shard in found.weight_map.items():
        names_by_shard.setdefault(shard, []).append(name)
    loaded: dict[str, np.ndarray] = {}
    for shard, names in names_by_shard.items():
        tensors = read(shard)
        for name in names:
            if name not in tensors:
                raise CorruptCheckpointError(
                    f"{found.index}: weight_map puts {name!r} in {os.path.basename(shard)!r}, "
                    f"but {shard} has no tensor of that name")
            loaded[name] = tensors[name]
    return {name: loaded[name] for name in found.weight_map}

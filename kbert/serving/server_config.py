"""TF Serving's configuration files for exported models: ``models.config`` and ``batching_parameters.txt``.

``models.config`` (``tensorflow_model_server --model_config_file=...``) is a text-format
``ModelServerConfig`` built with the official proto (``tensorflow_serving.config.model_server_config_pb2``):
one ``config { name base_path model_platform: "tensorflow" }`` per model base folder, the folder that holds
the numbered versions (``saved_models/sentiment``, not ``saved_models/sentiment/1``); TF Serving serves the
highest version. Every base folder is checked to hold at least one ``<number>/saved_model.pb``.

``batching_parameters.txt`` (``--enable_batching --batching_parameters_file=...``) is a text-format
``BatchingParameters``. That proto lives in TF Serving's ``session_bundle_config.proto``, which the
``tensorflow-serving-api`` wheel does not ship, so :class:`BatchingParameters` writes its four
``google.protobuf.Int64Value`` fields itself (``max_batch_size { value: 32 }``).

Example:
    >>> import pathlib, tempfile
    >>> from kbert.serving.server_config import BatchingParameters, models_config_text, served_models
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "sentiment" / "1").mkdir(parents=True)
    >>> (root / "sentiment" / "1" / "saved_model.pb").touch()
    >>> print(models_config_text(served_models([root / "sentiment"], base_path_root="/models")), end="")
    model_config_list {
      config {
        name: "sentiment"
        base_path: "/models/sentiment"
        model_platform: "tensorflow"
      }
    }
    >>> print(BatchingParameters(num_batch_threads=4).text(), end="")
    max_batch_size { value: 32 }
    batch_timeout_micros { value: 2000 }
    num_batch_threads { value: 4 }
    max_enqueued_batches { value: 100 }
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from collections.abc import Sequence

from kbert.errors import ServingConfigError
from kbert.hints import hint, parameter

BATCHING_FILE = "batching_parameters.txt"  # written beside models.config
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")  # the name is part of the REST URL /v1/models/NAME


@dataclasses.dataclass(frozen=True)
class ServedModel:
    """One ``config`` entry: the model's ``name``, ``base_path`` as written and the local folder's versions."""

    name: str
    base_path: str
    folder: pathlib.Path
    versions: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's server-side batching: concurrent requests of a model are merged into one run.

    The exports take ``[None]`` string tensors, so requests concatenate along the batch dimension; outputs
    with a token axis (token classification) come back padded to the longest text of the merged batch.
    """

    max_batch_size: int = 32  # texts per merged run (kbert's pipeline batch); a request larger than this fails
    batch_timeout_micros: int = 2000  # wait at most 2 ms for a batch to fill: a small latency cost for throughput
    num_batch_threads: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)  # runs at once: the cores
    max_enqueued_batches: int = 100  # bounded queue: beyond it requests are refused (UNAVAILABLE), not left waiting

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value, minimum = getattr(self, field.name), 0 if field.name == "batch_timeout_micros" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ServingConfigError(f"batching: {field.name} must be an integer >= {minimum}, got {value!r}")

    def text(self) -> str:
        """The text-format ``BatchingParameters`` (one ``Int64Value`` field per line)."""
        return "".join(f"{f.name} {{ value: {getattr(self, f.name)} }}\n" for f in dataclasses.fields(self))


def model_versions(folder: pathlib.Path) -> tuple[int, ...]:
    """The numbered version folders of ``folder`` that hold a ``saved_model.pb``, ascending."""
    if not folder.is_dir():
        return ()
    return tuple(sorted(int(p.name) for p in folder.iterdir()
                        if p.name.isdigit() and (p / "saved_model.pb").is_file()))


def served_models(bases: Sequence[str | os.PathLike], names: Sequence[str] | None = None, *,
                  base_path_root: str | None = None) -> list[ServedModel]:
    """Check the model base folders and name them (default: the folder's name).

    ``base_path_root`` writes ``base_path`` as ``ROOT/<folder name>`` (the path inside a container, e.g.
    ``/models``) instead of the folder's absolute path.
    """
    if not bases:
        raise ServingConfigError("give at least one model base folder")
    if names is not None and len(names) != len(bases):
        raise ServingConfigError(f"{len(names)} model name(s) {list(names)} for {len(bases)} base folder(s): "
                                 f"give one {parameter('names')} per folder, in the same order")
    models: list[ServedModel] = []
    for i, base in enumerate(bases):
        folder = pathlib.Path(base).resolve()
        if not folder.is_dir():
            raise ServingConfigError(f"{base}: no such model base folder")
        versions = model_versions(folder)
        if not versions:
            tip = (f"; it is a version folder itself: give its parent {folder.parent}"
                   if (folder / "saved_model.pb").is_file() else "")
            raise ServingConfigError(f"{base}: no version folder <number>/saved_model.pb in it (TF Serving loads "
                                     f"BASE/<version>/){tip}")
        name = names[i] if names is not None else folder.name
        if not _NAME.fullmatch(name):
            raise ServingConfigError(f"{base}: model name {name!r} must be letters, digits, '_', '.' or '-' "
                                     "(it is part of the REST URL /v1/models/NAME)")
        base_path = str(folder) if base_path_root is None else f"{base_path_root.rstrip('/')}/{folder.name}"
        for other in models:
            if other.name == name:
                raise ServingConfigError(f"model name {name!r} is given twice: {other.folder} and {folder}"
                                         f"{hint(' (give {} to tell them apart)', 'names')}")
            if other.base_path == base_path and other.folder != folder:
                raise ServingConfigError(f"{other.folder} and {folder} both become base_path {base_path!r} "
                                         f"under {parameter('base_path_root')} {base_path_root}")
        models.append(ServedModel(name, base_path, folder, versions))
    return models


def models_config(models: Sequence[ServedModel]):
    """The ``tensorflow.serving.ModelServerConfig`` proto of ``models``."""
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    for model in models:
        config.model_config_list.config.add(name=model.name, base_path=model.base_path, model_platform="tensorflow")
    return config


def models_config_text(models: Sequence[ServedModel]) -> str:
    """``models.config``'s text (protobuf text format)."""
    from google.protobuf import text_format

    return text_format.MessageToString(models_config(models))


def write_serving_config(output: str | os.PathLike, bases: Sequence[str | os.PathLike], *,
                         names: Sequence[str] | None = None, base_path_root: str | None = None,
                         batching: BatchingParameters | None = None) -> dict:
    """Write ``output`` (``models.config``) and, with ``batching``, ``batching_parameters.txt`` beside it.

    Everything is checked before anything is written. Returns a JSON-safe summary with the
    ``tensorflow_model_server`` flags that use the files.
    """
    from kbert.atomic_files import write_bytes

    models = served_models(bases, names, base_path_root=base_path_root)
    output = pathlib.Path(output)
    if output.is_dir():
        raise ServingConfigError(f"{parameter('output')} {output}: is a folder; give the file to write, e.g. "
                                 f"{output}/models.config")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(output, models_config_text(models).encode("utf-8"))
        flags = [f"--model_config_file={output.resolve()}"]
        batching_path = None
        if batching is not None:
            batching_path = output.parent / BATCHING_FILE
            write_bytes(batching_path, batching.text().encode("utf-8"))
            flags += ["--enable_batching", f"--batching_parameters_file={batching_path.resolve()}"]
    except OSError as err:
        raise ServingConfigError(f"--output {output}: cannot write it ({err.strerror or err})") from None
    return {"models_config": str(output), "batching_parameters": None if batching_path is None else str(batching_path),
            "models": [{"name": m.name, "base_path": m.base_path, "versions": list(m.versions)} for m in models],
            "command": " ".join(["tensorflow_model_server", "--port=8500", "--rest_api_port=8501", *flags])}

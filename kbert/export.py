"""Export a model as a TF Serving SavedModel that takes raw strings.

``saved_models/NAME/<version>/`` holds one SavedModel whose ``serving_default`` signature takes
``text`` (``tf.string``, ``[None]``) and, for pair models, ``text_pair`` (the task decides:
question answering takes ``question`` and ``context``); tokenization runs inside
the graph (TensorFlow + tensorflow-text ops only, which TF Serving links). Versions are integers
picked as one more than the highest present; the SavedModel is written to a hidden temporary
folder beside them and renamed into place, so TF Serving never sees half a version.

Example:
    >>> import tempfile
    >>> from kbert.export import export_saved_model
    >>> path = export_saved_model("tests/fixtures/checkpoints/tiny-uncased-cls", tempfile.mkdtemp() + "/tiny")
    >>> path.name
    '1'
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import shutil
import uuid

import keras

from kbert.checkpoint import load_checkpoint
from kbert.errors import ExportError
from kbert.tasks import default_task, get_task

logger = logging.getLogger(__name__)
METADATA = pathlib.Path("assets.extra") / "kbert.json"  # TF Serving ignores assets.extra/* but warmup data


def next_version(base: pathlib.Path) -> int:
    """One more than the highest integer-named version folder in ``base`` (1 when there is none)."""
    versions = [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()] if base.is_dir() else []
    return max(versions, default=0) + 1


def export_saved_model(model: str | os.PathLike | None, output: str | os.PathLike, *, task: str | None = None,
                       text_pair: bool | None = None, max_length: int | None = None) -> pathlib.Path:
    """Write the next version of ``output`` for ``model`` and return the version folder.

    Args:
        model: checkpoint folder, ``"minilm"`` / ``None``, or ``hf://org/name``.
        output: the model's base folder in the TF Serving model root (e.g. ``saved_models/sentiment``).
        task: default: the task of the checkpoint's trained head, else feature-extraction.
        text_pair: add a ``text_pair`` input (default: ``kbert.text_pair`` of ``config.json``, else no).
        max_length: truncate inputs to this many tokens (default: the tokenizer's maximum).
    """
    checkpoint = load_checkpoint(model)
    task_obj = get_task(task or default_task(checkpoint))(checkpoint)
    if text_pair is None:
        text_pair = bool(checkpoint.config.extra.get("kbert", {}).get("text_pair", False))
    if text_pair and not task_obj.accepts_pairs:
        raise ExportError(f"task {task_obj.name} does not take text pairs")
    tokenizer = checkpoint.tokenizer
    max_length = tokenizer.model_max_length if max_length is None else min(max_length, tokenizer.model_max_length)
    keras_model = task_obj.build_model()
    function, input_signature = task_obj.serving_signature(keras_model, max_length=max_length, text_pair=text_pair)
    archive = keras.export.ExportArchive()
    archive.track(keras_model)
    archive.track(tokenizer)
    archive.add_endpoint("serving_default", function, input_signature=input_signature)

    base = pathlib.Path(output)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(f"{base}: cannot create the export folder ({err})") from None
    staging = base / f".tmp-{uuid.uuid4().hex}"
    try:
        archive.write_out(str(staging), verbose=False)
        metadata = {"task": task_obj.name, "model": str(checkpoint.path), "text_pair": text_pair,
                    "max_length": max_length, "labels": None, "scheme": None, **task_obj.export_metadata()}
        (staging / METADATA).parent.mkdir(exist_ok=True)
        (staging / METADATA).write_text(json.dumps(metadata, indent=2))
        return _publish(staging, base)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish(staging: pathlib.Path, base: pathlib.Path) -> pathlib.Path:
    """Rename the finished SavedModel to the next free version number (atomic on one filesystem)."""
    for _ in range(100):
        target = base / str(next_version(base))
        try:
            os.rename(staging, target)  # fails if another export took this number meanwhile
        except OSError:
            continue
        logger.info("exported %s", target)
        return target
    raise ExportError(f"{base}: could not find a free version number")

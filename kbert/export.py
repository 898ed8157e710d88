"""Export a model as a TF Serving SavedModel that takes raw strings.

``saved_models/NAME/<version>/`` holds one SavedModel whose ``serving_default`` signature takes
``text`` (``tf.string``, ``[None]``) and, for pair models, ``text_pair`` (the task decides:
question answering takes ``question`` and ``context``); tokenization runs inside
the graph (TensorFlow + tensorflow-text ops only, which TF Serving links). Versions are integers
picked as one more than the highest present; the SavedModel is written to a hidden temporary
folder beside them and renamed into place, so TF Serving never sees half a version.

A sentence-embedding export can also carry a small corpus (``corpus_index=``, ``kbert export --corpus-index``):
a second signature ``search`` takes ``text`` and returns the ``ids`` and ``scores`` of its ``top_k`` best
documents, an exact top-k in the graph (:mod:`kbert.semantic_search.search_graph`); ``assets.extra/kbert.json``
records the corpus under ``search``.

Every version also carries TF Serving warmup requests (``assets.extra/tf_serving_warmup_requests``: a
short text, one cut at ``max_length`` and a batch, for each signature; :mod:`kbert.serving.warmup`), which
TF Serving runs before it serves the version.

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
from kbert.hints import hint, parameter
from kbert.precision import check_precision, inference_model
from kbert.serving.warmup import write_warmup_requests
from kbert.tasks import default_task, get_task

logger = logging.getLogger(__name__)
METADATA = pathlib.Path("assets.extra") / "kbert.json"  # TF Serving ignores assets.extra/* but warmup data


def next_version(base: pathlib.Path) -> int:
    """One more than the highest integer-named version folder in ``base`` (1 when there is none)."""
    versions = [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()] if base.is_dir() else []
    return max(versions, default=0) + 1


def export_saved_model(model: str | os.PathLike | None, output: str | os.PathLike, *, task: str | None = None,
                       text_pair: bool | None = None, max_length: int | None = None,
                       corpus_index: str | os.PathLike | None = None, top_k: int | None = None,
                       precision: str = "float32") -> pathlib.Path:
    """Write the next version of ``output`` for ``model`` and return the version folder.

    Args:
        model: checkpoint folder, ``"minilm"`` / ``None``, or ``hf://org/name``.
        output: the model's base folder in the TF Serving model root (e.g. ``saved_models/sentiment``).
        task: default: the task of the checkpoint's trained head, else feature-extraction.
        text_pair: add a ``text_pair`` input (default: ``kbert.text_pair`` of ``config.json``, else no).
        max_length: truncate inputs to this many tokens (default: the tokenizer's maximum).
        corpus_index: an exact index folder written by ``kbert index`` (at most 200,000 documents): adds the
            ``search`` signature. Needs the sentence-embedding task (the default with it).
        top_k: documents per query of ``search`` (default 10, clipped to the corpus size).
        precision: ``"float32"`` or ``"bfloat16"`` (bfloat16 matmuls; the signatures' outputs stay float32;
            refused where this machine lacks native bfloat16: :mod:`kbert.precision`).
    """
    check_precision(precision)
    checkpoint = load_checkpoint(model)
    task_cls = get_task(task or default_task(checkpoint))
    if corpus_index is not None and task is None:
        from kbert.tasks.sentence_embedding.task import SentenceEmbedding

        if not issubclass(task_cls, SentenceEmbedding):  # a search export embeds (a retrieval model stays one)
            task_cls = SentenceEmbedding
    task_obj = task_cls(checkpoint)
    corpus = _search_corpus(model, checkpoint, task_obj, corpus_index, top_k)
    if text_pair is None:
        text_pair = bool(checkpoint.config.extra.get("kbert", {}).get("text_pair", False))
    if text_pair and not task_obj.accepts_pairs:
        raise ExportError(f"task {task_obj.name} does not take text pairs")
    tokenizer = checkpoint.tokenizer
    max_length = tokenizer.model_max_length if max_length is None else min(max_length, tokenizer.model_max_length)
    keras_model = inference_model(task_obj, precision)
    function, input_signature = task_obj.serving_signature(keras_model, max_length=max_length, text_pair=text_pair)
    archive = keras.export.ExportArchive()
    archive.track(keras_model)
    archive.track(tokenizer)
    archive.add_endpoint("serving_default", function, input_signature=input_signature)
    signatures = {"serving_default": [spec.name for spec in input_signature]}  # -> their input names (warmup)
    if corpus is not None:
        archive.track(corpus)
        search, search_signature = corpus.signature(task_obj, keras_model, max_length=max_length)
        archive.add_endpoint("search", search, input_signature=search_signature)
        signatures["search"] = [spec.name for spec in search_signature]

    base = pathlib.Path(output)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(f"{base}: cannot create the export folder ({err})") from None
    staging = base / f".tmp-{uuid.uuid4().hex}"
    try:
        archive.write_out(str(staging), verbose=False)
        metadata = {"task": task_obj.name, "model": str(checkpoint.path), "text_pair": text_pair,
                    "max_length": max_length, "precision": precision, "labels": None, "scheme": None,
                    **task_obj.export_metadata(),
                    **({"search": corpus.source} if corpus is not None else {})}
        (staging / METADATA).parent.mkdir(exist_ok=True)
        (staging / METADATA).write_text(json.dumps(metadata, indent=2))
        write_warmup_requests(staging, signatures, max_length=max_length, model_name=base.name)
        return _publish(staging, base)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _search_corpus(model, checkpoint, task_obj, corpus_index, top_k):
    """The corpus of the ``search`` signature (``None`` without ``corpus_index``), checked against the task."""
    if corpus_index is None:
        if top_k is not None:
            raise ExportError(f"{parameter('top_k')} is the size of the search signature's answers"
                              f"{hint('; give {} too', 'corpus_index')}")
        return None
    from kbert.semantic_search.indexing import model_name
    from kbert.semantic_search.search_graph import DEFAULT_TOP_K, SearchCorpus
    from kbert.tasks.sentence_embedding.task import SentenceEmbedding

    if not isinstance(task_obj, SentenceEmbedding):  # sentence-embedding, or retrieval (the same encoder)
        raise ExportError(f"corpus_index needs the sentence-embedding task, not {task_obj.name}")

    return SearchCorpus.from_index(corpus_index, DEFAULT_TOP_K if top_k is None else top_k,
                                   dimension=task_obj.dimension, model=model_name(model, checkpoint))


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

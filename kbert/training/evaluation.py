"""``kbert evaluate``: score a fine-tuned checkpoint on labelled data with its task's metrics.

The task comes from the checkpoint (``kbert.task`` in config.json, else the head its ``architectures``
name) unless given; the task reads the data, runs the model (:mod:`kbert.batching.inference`) and
scores it, and can draw its plots.

Example:
    >>> from kbert.training.evaluation import evaluate
    >>> metrics = evaluate("tests/fixtures/checkpoints/kbert-trained-tiny", "kbert/data/demo/sentiment_test.tsv")
    >>> sorted(metrics)
    ['accuracy', 'examples', 'loss', 'macro_f1']
"""

from __future__ import annotations

import os
import pathlib

from kbert.checkpoint import load_checkpoint
from kbert.errors import CheckpointError, InputError
from kbert.precision import check_precision, inference_model
from kbert.progress import progress_bars
from kbert.tasks import EvaluationReport, default_task, get_spec


def evaluate(model, data, *, task: str | None = None, format: str | None = None, encoding: str = "utf-8",
             text_column=None, text_pair_column=None, label_column=None, batch_size: int = 32,
             max_length: int | None = None, limit: int | None = None, download: bool = False,
             plots: str | os.PathLike | None = None, precision: str = "float32", **task_options) -> dict:
    """Metrics of a fine-tuned checkpoint on labelled ``data`` as one JSON-safe dict.

    Text classification gives ``{"accuracy", "macro_f1", "loss", "examples"}`` (micro-F1 for
    multi-hot labels, Pearson/Spearman for regression); token classification ``entity_f1``, ``precision``,
    ``recall`` and ``per_type`` (seqeval's definitions) for entity tags, ``accuracy`` and ``macro_f1``
    for other tags. ``task_options`` are the task's own (e.g. ``tag_column``); ``plots`` is a folder
    for the task's figures (confusion matrix, per-type F1). ``precision="bfloat16"`` scores the model as a
    bfloat16 pipeline runs it (:func:`kbert.precision.inference_model`): its quality cost on your data.
    """
    return evaluate_report(model, data, task=task, format=format, encoding=encoding, text_column=text_column,
                           text_pair_column=text_pair_column, label_column=label_column, batch_size=batch_size,
                           max_length=max_length, limit=limit, download=download, plots=plots,
                           precision=precision, **task_options).metrics


def evaluate_report(model, data, *, task: str | None = None, batch_size: int = 32, max_length: int | None = None,
                    limit: int | None = None, plots: str | os.PathLike | None = None, format: str | None = None,
                    encoding: str = "utf-8", text_column=None, text_pair_column=None, label_column=None,
                    download: bool = False, precision: str = "float32", **task_options) -> EvaluationReport:
    """:func:`evaluate`, returning the task's whole report (metrics and what its plots are drawn from)."""
    precision = check_precision(precision)
    checkpoint = load_checkpoint(model)
    task_name = task or default_task(checkpoint)  # the task it was trained for, else its head's
    spec = get_spec(task_name)
    options = spec.resolve("evaluate", task_options)
    task_cls = spec.load()
    if not task_cls.can_evaluate(checkpoint):
        raise CheckpointError(f"{checkpoint.path}: has no trained {task_cls.name} head to evaluate")
    task_obj = task_cls(checkpoint)
    trained = checkpoint.config.extra.get("kbert", {})
    if max_length is None:  # what the model was fine-tuned with, else the tokenizer's maximum
        max_length = trained.get("max_length") or checkpoint.tokenizer.model_max_length
    max_length = min(max_length, checkpoint.tokenizer.model_max_length)
    read = dict(format=format, text_column=text_column, text_pair_column=text_pair_column, label_column=label_column,
                download=download, encoding=encoding)
    model = inference_model(task_obj, precision)
    with progress_bars("evaluating"):
        report = task_obj.evaluate_data(data, model=model, read_options=read, task_options=options,
                                        batch_size=batch_size, max_length=max_length, limit=limit)
    if plots is not None:
        folder = pathlib.Path(plots)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(f"{folder}: cannot create the plots folder ({err.strerror or err})") from None
        task_obj.write_plots(report, folder)
    return report


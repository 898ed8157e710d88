"""Predict over a dataset and score it: the same code for per-epoch evaluation and ``kbert evaluate``.

Example:
    >>> import numpy as np
    >>> from kbert.training.evaluation import loss_value
    >>> round(loss_value("class", np.array([0, 1]), np.array([[2.0, 0.0], [0.0, 2.0]])), 4)
    0.1269
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kbert.tasks.base import sigmoid, softmax
from kbert.training.metrics import compute_metrics


def inference_logits(model):
    """``features -> logits`` of ``model`` in inference mode, as one ``tf.function`` for every batch shape.

    Called eagerly, a Keras model costs ~0.1 s of Python per batch; traced once, evaluating after every
    epoch stays cheap. The function is kept on the model, so later epochs reuse the trace.
    """
    forward = getattr(model, "_kbert_inference_logits", None)
    if forward is None:
        spec = tf.TensorSpec([None, None], tf.int32)

        def call(token_ids, segment_ids, padding_mask):
            out = model({"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask},
                        training=False)
            return out["logits"] if isinstance(out, dict) else out

        traced = tf.function(call, input_signature=[spec, spec, spec])

        def forward(features):
            return traced(*(tf.cast(features[k], tf.int32) for k in ("token_ids", "segment_ids", "padding_mask")))

        model._kbert_inference_logits = forward
    return forward


def predict(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of every batch of ``dataset`` (``(features, labels)`` pairs), in dataset order."""
    forward = inference_logits(model)
    logits, labels = [], []
    for features, label in dataset:
        logits.append(np.asarray(forward(features)))
        labels.append(np.asarray(label))
    return np.concatenate(logits), np.concatenate(labels)


def loss_value(kind: str, labels: np.ndarray, logits: np.ndarray) -> float:
    """The task loss (mean over examples), as the model was trained with."""
    logits = logits.astype(np.float64)
    if kind == "regression":
        return float(np.mean((logits.reshape(-1) - labels.reshape(-1)) ** 2))
    if kind == "multi_label":
        p = np.clip(sigmoid(logits), 1e-12, 1 - 1e-12)
        return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
    p = softmax(logits)[np.arange(len(labels)), labels.astype(int)]
    return float(-np.mean(np.log(np.clip(p, 1e-12, None))))


def score(kind: str, labels: np.ndarray, logits: np.ndarray, names: list[str]) -> dict[str, float]:
    """Task metrics plus ``loss`` and ``examples``."""
    metrics = compute_metrics(kind, labels.reshape(-1) if kind == "regression" else labels,
                              logits.reshape(-1) if kind == "regression" else logits, names)
    metrics = {k: float(v) for k, v in metrics.items()}
    metrics["loss"] = loss_value(kind, labels, logits)
    metrics["examples"] = int(len(labels))
    return metrics


def evaluate(model, data, *, task: str | None = None, format: str | None = None, text_column=None,
             text_pair_column=None, label_column=None, tag_column=None, batch_size: int = 32, max_length: int | None = None,
             limit: int | None = None, download: bool = False) -> dict[str, float]:
    """Score a fine-tuned checkpoint on labelled data: ``{"accuracy": ..., "macro_f1": ..., "loss": ..., "examples": n}``.

    The task and label kind come from the checkpoint (``kbert.task`` in config.json, else its
    ``architectures`` and ``problem_type``) unless ``task`` is given; data labels must be among the
    checkpoint's labels. Token classification reports ``entity_f1``, ``precision``, ``recall`` and
    ``per_type`` (seqeval's definitions) for entity tags, ``accuracy`` and ``macro_f1`` for other tags.
    """
    from kbert.checkpoint import load_checkpoint
    from kbert.data.labels import LabelSet, rename_labels
    from kbert.data.sources import load_examples, pair_columns
    from kbert.errors import CheckpointError
    from kbert.tasks import get_task
    from kbert.training.dataset import make_dataset
    from kbert.training.trainer import label_kind

    from kbert.export import default_task

    checkpoint = load_checkpoint(model)
    task_name = task or checkpoint.config.extra.get("kbert", {}).get("task") or default_task(checkpoint)
    kind = label_kind(task_name, checkpoint)
    task_obj = get_task(task_name)(checkpoint)
    if task_obj.checkpoint.task_head("classifier", task_obj.hf_architecture) is None:
        raise CheckpointError(f"{checkpoint.path}: has no trained {task_obj.name} head to evaluate")
    trained = checkpoint.config.extra.get("kbert", {})
    if max_length is None:  # what the model was fine-tuned with, else the tokenizer's maximum
        max_length = trained.get("max_length") or checkpoint.tokenizer.model_max_length
    max_length = min(max_length, checkpoint.tokenizer.model_max_length)
    if kind == "tags":
        return _evaluate_tagged(task_obj, data, format=format, tag_column=tag_column, batch_size=batch_size,
                                max_length=max_length, stride=trained.get("stride"), limit=limit)
    examples, _ = load_examples(data, label_type=kind, format=format, text_column=text_column,
                                text_pair_column=text_pair_column, label_column=label_column, limit=limit,
                                download=download)
    if trained.get("label_names") and kind != "regression":  # the data's labels as they were renamed in training
        examples = rename_labels(examples, trained["label_names"])
    labels = LabelSet(tuple(task_obj.id2label[i] for i in range(task_obj.num_labels)), kind)
    targets = labels.encode(examples)
    texts, pairs = pair_columns(examples, "the evaluation data")
    if kind == "regression":
        targets = targets.reshape(-1, 1)
    dataset = make_dataset(checkpoint.tokenizer, texts, pairs, targets, batch_size=batch_size,
                           max_length=max_length).dataset
    logits, targets = predict(task_obj.build_model(), dataset)
    return score(kind, targets, logits, list(labels.names))


def _evaluate_tagged(task, data, *, format, tag_column, batch_size: int, max_length: int, stride, limit) -> dict:
    from kbert.data.labels import LabelSet
    from kbert.training.tagging import DEFAULT_STRIDE, load_tagged, score_tagged, tagged_dataset

    sentences = load_tagged(data, format=format, tag_column=tag_column, limit=limit)
    labels = LabelSet(tuple(task.label_names))
    tagged = tagged_dataset(task.checkpoint.tokenizer, sentences, labels, batch_size=batch_size,
                            max_length=max_length, stride=DEFAULT_STRIDE if stride is None else stride,
                            training=False)
    return score_tagged(task.build_model(), tagged, task.label_names, task.scheme)

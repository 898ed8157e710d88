"""Token-classification data for training and evaluation: tagged files → windows → datasets → word-level scores.

    CoNLL / CoNLL-U / JSONL ─► TaggedSentence (words, tags) ─► label ids (unknown tags: an error naming file:line)
        ─► word pieces, labels on first pieces, windows (kbert.training.token_data) ─► tf.data
    predictions ─► one label per word ─► seqeval-exact entity F1 (NER) or tag accuracy (POS)

Example:
    >>> from kbert.data.tagged import tagged_from_lists
    >>> sentences = tagged_from_lists([["Ann", "sings"]], [["B-PER", "O"]])
    >>> tag_label_set(sentences).names
    ('B-PER', 'O')
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

import numpy as np

from kbert.data.labels import LabelSet, sort_names
from kbert.data.sources import split_row_range
from kbert.data.tagged import TaggedSentence, read_tagged
from kbert.errors import DataError
from kbert.training.dataset import TrainingData
from kbert.training.entity_metrics import tagging_metrics
from kbert.training.evaluation import inference_logits
from kbert.training.token_data import (
    IGNORE_INDEX, TokenWindows, continuation_labels, make_token_dataset, make_windows, tokenize_words,
    word_predictions)

DEFAULT_STRIDE = 32  # pieces shared by consecutive windows of a sentence longer than the model


def load_tagged(source: Any, *, format: str | None = None, tag_column=None, limit: int | None = None,
                labelled: bool = True) -> list[TaggedSentence]:
    """Sentences from a file (``FILE[start:stop]`` selects sentences) or a list of :class:`TaggedSentence`."""
    if isinstance(source, (list, tuple)) and all(isinstance(s, TaggedSentence) for s in source):
        sentences = list(source)
    elif isinstance(source, (str, os.PathLike)):
        path, rows = split_row_range(os.fspath(source))
        sentences = read_tagged(path, format=format, tag_column=tag_column, labelled=labelled)[rows]
    else:
        raise DataError(f"token-classification data must be a CoNLL/CoNLL-U/JSONL file or a list of TaggedSentence, "
                        f"got {type(source).__name__}")
    if limit is not None:
        sentences = sentences[:limit]
    if not sentences:
        raise DataError(f"{source}: no sentences")
    return sentences


def tag_label_set(sentences: Sequence[TaggedSentence]) -> LabelSet:
    """The tags that occur, sorted (as Hugging Face's ``run_ner.py`` orders its label list)."""
    return LabelSet(sort_names(tag for s in sentences for tag in s.tags))


def encode_tags(sentences: Sequence[TaggedSentence], labels: LabelSet) -> list[np.ndarray]:
    """Label ids per word; a tag outside ``labels`` is an error naming the sentence and the word."""
    index = labels.label2id()
    encoded = []
    for sentence in sentences:
        ids = np.empty(len(sentence.words), np.int64)
        for k, tag in enumerate(sentence.tags):
            if tag not in index:
                raise DataError(f"{sentence.where}: word {k + 1} {sentence.words[k]!r} has tag {tag!r}, which is not "
                                f"one of the model's labels {list(labels.names)}")
            ids[k] = index[tag]
        encoded.append(ids)
    return encoded


@dataclasses.dataclass(frozen=True)
class TaggedData:
    """Sentences with their windows and batches."""

    sentences: list[TaggedSentence]
    windows: TokenWindows
    data: TrainingData


def tagged_dataset(tokenizer, sentences: Sequence[TaggedSentence], labels: LabelSet, *, batch_size: int,
                   max_length: int, stride: int = DEFAULT_STRIDE, training: bool, seed: int = 0,
                   bucket: bool = True, label_all_pieces: bool = False) -> TaggedData:
    """Batches for training (shuffled, length buckets) or evaluation (in order, each word scored once)."""
    stride = min(stride, max_length - 3)
    windows = make_windows(tokenize_words(tokenizer, [s.words for s in sentences]), encode_tags(sentences, labels),
                           max_length=max_length, stride=stride, cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id,
                           label_all_pieces=label_all_pieces, continuation=continuation_labels(labels.names),
                           evaluation=not training)
    data = make_token_dataset(windows, pad_id=tokenizer.pad_id, batch_size=batch_size, max_length=max_length,
                              shuffle=training, seed=seed, bucket=bucket and training)
    return TaggedData(list(sentences), windows, data)


def predict_windows(model, dataset) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Logits ``(T, L)`` and labels ``(T,)`` of every window, in dataset order."""
    forward = inference_logits(model)
    logits, labels = [], []
    for features, label in dataset:
        logits.extend(np.asarray(forward(features)))
        labels.extend(np.asarray(label))
    return logits, labels


def score_tagged(model, tagged: TaggedData, names: Sequence[str], scheme: str) -> dict[str, Any]:
    """Word-level metrics of ``model`` on evaluation data made by :func:`tagged_dataset` (``training=False``).

    ``scheme="entities"``: ``entity_f1``, ``precision``, ``recall``, ``token_accuracy``, ``per_type``;
    ``"tags"``: ``accuracy``, ``macro_f1``. Both add ``loss`` (cross-entropy over scored words),
    ``examples`` (sentences) and ``words``. A word without any word piece (only characters the
    tokenizer drops) is predicted ``O`` (or the first label when there is no ``O``).
    """
    logits, labels = predict_windows(model, tagged.data.dataset)
    predicted, _ = word_predictions(logits, labels, tagged.windows)
    fallback = list(names).index("O") if "O" in names else 0
    y_pred = [[names[i] if i >= 0 else names[fallback] for i in row] for row in predicted]
    y_true = [list(s.tags) for s in tagged.sentences]
    metrics = tagging_metrics(y_true, y_pred, kind=scheme)
    metrics["loss"] = _loss(logits, labels)
    metrics["examples"] = len(tagged.sentences)
    metrics["words"] = int(sum(len(s.words) for s in tagged.sentences))
    return metrics


def _loss(logits: list[np.ndarray], labels: list[np.ndarray]) -> float:
    total, count = 0.0, 0
    for row_logits, row_labels in zip(logits, labels):
        keep = np.asarray(row_labels) != IGNORE_INDEX
        if not keep.any():
            continue
        x = np.asarray(row_logits, np.float64)[keep]
        x = x - x.max(axis=-1, keepdims=True)
        log_p = x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
        total -= float(log_p[np.arange(len(x)), np.asarray(row_labels)[keep]].sum())
        count += int(keep.sum())
    return total / max(count, 1)

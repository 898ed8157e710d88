"""Token-classification data for training and evaluation: tagged files → label ids → windows → datasets.

    CoNLL / CoNLL-U / JSONL ─► TaggedSentence (words, tags) ─► label ids (unknown tags: an error naming file:line)
        ─► word pieces, labels on first pieces, windows (features.py) ─► tf.data

Example:
    >>> from kbert.tasks.token_classification.tagged_files import tagged_from_lists
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
from kbert.errors import DataError
from kbert.tasks.token_classification.features import (
    TokenWindows, continuation_labels, make_token_dataset, make_windows, tokenize_words)
from kbert.tasks.token_classification.tagged_files import TaggedSentence, read_tagged
from kbert.batching.dataset import TrainingData

DEFAULT_STRIDE = 32  # pieces shared by consecutive windows of a sentence longer than the model


def load_tagged(source: Any, *, format: str | None = None, tag_column=None, limit: int | None = None,
                labelled: bool = True, encoding: str = "utf-8") -> list[TaggedSentence]:
    """Sentences from a file (``FILE[start:stop]`` selects sentences) or a list of :class:`TaggedSentence`."""
    if isinstance(source, (list, tuple)) and all(isinstance(s, TaggedSentence) for s in source):
        sentences = list(source)
    elif isinstance(source, (str, os.PathLike)):
        path, rows = split_row_range(os.fspath(source))
        sentences = read_tagged(path, format=format, tag_column=tag_column, labelled=labelled, encoding=encoding)[rows]
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


def tag_occurrences(sentences: Sequence[TaggedSentence]) -> list[tuple[str, str]]:
    """``(tag, "file:line word k 'word'")`` for every tagged word, for counting and naming rare tags."""
    return [(tag, f"{s.where}: word {k + 1} {s.words[k]!r}") for s in sentences for k, tag in enumerate(s.tags)]


def prepare(task_cls, config, checkpoint, max_length: int):
    """Read and validate tagged training / evaluation sentences now (nothing written); windows and batches later."""
    from kbert.data.labels import check_label_counts
    from kbert.errors import TrainingError
    from kbert.tasks.base import PreparedTraining, TrainingPlan
    from kbert.tasks.token_classification.scoring import score_tagged
    from kbert.tasks.token_classification.task import is_entity_scheme

    options = config.task_options
    read = dict(format=config.format, tag_column=options["tag_column"], encoding=config.encoding)
    train_sentences = load_tagged(config.train, limit=config.train_limit, **read)
    eval_sentences = load_tagged(config.eval, limit=config.eval_limit, **read) if config.eval is not None else None
    rows = checkpoint.head_outputs(task_cls.hf_head)  # None: no trained head
    inferred = not (config.labels or (rows is not None and checkpoint.config.id2label))
    counts = check_label_counts(tag_occurrences(train_sentences), report=inferred, strict=config.strict_labels)
    if config.labels:
        labels = LabelSet(tuple(config.labels))
    elif rows is not None and checkpoint.config.id2label:
        labels = LabelSet.from_id2label(checkpoint.config.id2label)
    else:
        labels = tag_label_set(train_sentences)
    if rows is not None and rows != labels.num_labels:
        raise TrainingError(
            f"{checkpoint.path}: its token classifier head has {rows} outputs but the data has "
            f"{labels.num_labels} labels {list(labels.names)}; start from a checkpoint without a head")
    for sentences in (train_sentences, eval_sentences or []):
        encode_tags(sentences, labels)  # every tag checked before anything is written
    tokenizer = checkpoint.tokenizer
    batches = dict(batch_size=config.batch_size, max_length=max_length, stride=options["stride"])

    def build() -> TrainingPlan:
        training = tagged_dataset(tokenizer, train_sentences, labels, training=True, seed=config.seed,
                                  bucket=config.bucket_by_length, label_all_pieces=options["label_all_pieces"],
                                  **batches)
        labelled = training.windows.labelled_tokens()
        if labelled == 0:
            raise TrainingError(f"{config.train}: no word of the training data has a word piece to carry its label "
                                f"(every word is made only of characters the tokenizer drops)")
        # Length buckets: weigh every labelled token alike, as random batches do (loss.py).
        loss_options = ({"labelled_tokens_per_batch": labelled / training.data.num_batches}
                        if config.bucket_by_length else {})
        if eval_sentences is None:
            return TrainingPlan(training.data, None, loss_options=loss_options)
        evaluation = tagged_dataset(tokenizer, eval_sentences, labels, training=False, **batches)
        scheme = "entities" if is_entity_scheme(labels.names) else "tags"
        return TrainingPlan(training.data, lambda model: score_tagged(model, evaluation, labels.names, scheme),
                            len(eval_sentences), loss_options=loss_options)

    return PreparedTraining(labels, None, build, label_counts=counts, units=("windows", "sentences"),
                            checkpoint_info={"stride": options["stride"]})

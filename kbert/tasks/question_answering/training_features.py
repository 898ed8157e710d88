"""Question-answering windows with answer-span labels, as transformers' ``run_qa.py`` makes them.

    question.lstrip() + context ─► tokenizer (eager, chunks of 8,192; truncation only_second, overflow windows
        of ``max_seq_len`` tokens sharing ``doc_stride`` context tokens) ─► per window: token ids, segment ids,
        character offsets, sequence ids, example index
        ─► start / end positions of the first answer (numpy, all windows at once) ─► tf.data batches

The labels follow ``prepare_train_features`` of ``examples/pytorch/question-answering/run_qa.py``
(transformers) exactly. A question without an answer, or a window that does not hold the whole first
answer, is labelled with the ``[CLS]`` index (0) at both ends. Otherwise run_qa walks the offsets: forward
from the window's first context token while a token's start offset is ``<=`` the answer's first character
(start = one before where it stops), and back from the last context token while a token's end offset is
``>=`` the answer's end (end = one after where it stops). The forward walk does not stop at the context's
end: when the answer starts in the window's last context token it walks on over the final ``[SEP]``
(offsets ``(0, 0)``), and the start is the ``[SEP]`` index, one after the end. kbert keeps that label, as
run_qa gives it with ``--pad_to_max_length False`` (padded to ``max_seq_len``, run_qa's start lands on the
last padding position instead). It is rare: none of the 13,190 MiniLM windows (384 / 128) of the 12,776
shared SQuAD v1.1 and v2.0 dev questions has it.

``max_seq_len`` is used as given: run_qa first lowers it to the tokenizer's ``model_max_length``, which
is the caller's choice here.

Example:
    >>> from kbert.checkpoint import load_checkpoint
    >>> from kbert.tasks.question_answering.examples import QAExample
    >>> tok = load_checkpoint("tests/fixtures/checkpoints/tiny-uncased-qa").tokenizer
    >>> e = QAExample("q1", "who lives in paris?", "sinan lives in paris", ("sinan",), (0,))
    >>> w = qa_windows(tok, [e], max_seq_len=64, doc_stride=16)
    >>> tok.convert_ids_to_tokens(w.token_ids[0][w.start_positions[0]:w.end_positions[0] + 1])
    ['sinan']
    >>> w.example_index.tolist(), w.lengths.tolist()
    ([0], [18])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from kbert.errors import InputError, TokenizerError
from kbert.tasks.question_answering.examples import QAExample
from kbert.tokenizer import truncation as trunc
from kbert.batching.dataset import TOKENIZE_CHUNK, TrainingData, batch_examples
from kbert.tokenizer.subword import SECOND

CLS_INDEX = 0  # where kbert's tokenizer puts [CLS]: run_qa's input_ids.index(cls_token_id)


@dataclasses.dataclass(frozen=True)
class RaggedRows:
    """Rows of different lengths as one flat numpy array and its row splits; ``rows[k]`` is a view of row ``k``."""

    values: np.ndarray
    row_splits: np.ndarray  # (N + 1,) int64, row k is values[row_splits[k]:row_splits[k + 1]]

    @classmethod
    def from_ragged(cls, ragged: tf.RaggedTensor) -> "RaggedRows":
        return cls(ragged.flat_values.numpy().astype(np.int32), ragged.row_splits.numpy().astype(np.int64))

    def __len__(self) -> int:
        return len(self.row_splits) - 1

    def __getitem__(self, k: int) -> np.ndarray:
        return self.values[self.row_splits[k]:self.row_splits[k + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.row_splits)

    def to_tensor(self) -> tf.RaggedTensor:
        return tf.RaggedTensor.from_row_splits(self.values, self.row_splits, validate=False)

    def tolist(self) -> list[list[int]]:
        return [self[k].tolist() for k in range(len(self))]


@dataclasses.dataclass(frozen=True)
class QAWindows:
    """Windows of a list of examples: model inputs, offsets for decoding answers, and span labels.

    ``starts``/``ends`` are character offsets into the question (sequence id 0) or the context (1);
    special tokens have ``(0, 0)`` and sequence id -1. ``example_index[k]`` is the example window ``k``
    comes from (run_qa's ``overflow_to_sample_mapping``). ``start_positions``/``end_positions`` are
    token indices within the window (``None`` unless ``training``).
    """

    token_ids: RaggedRows
    segment_ids: RaggedRows
    starts: RaggedRows
    ends: RaggedRows
    sequence_ids: RaggedRows
    example_index: np.ndarray
    start_positions: np.ndarray | None = None
    end_positions: np.ndarray | None = None

    @property
    def lengths(self) -> np.ndarray:
        """Tokens of every window, special tokens included."""
        return self.token_ids.lengths

    def __len__(self) -> int:
        return len(self.example_index)


def qa_windows(tokenizer, examples: Sequence[QAExample], *, max_seq_len: int = 384, doc_stride: int = 128,
               training: bool = True) -> QAWindows:
    """Every window of every example (see the module docstring), with span labels when ``training``."""
    if not examples:
        raise InputError("no question-answering examples to make windows of")
    specials = pair_special_tokens(tokenizer)
    if not 0 <= doc_stride < max_seq_len - specials:
        raise InputError(f"doc_stride={doc_stride} must be at least 0 and less than max_seq_len - {specials} = "
                         f"{max_seq_len - specials} (the tokens a window holds besides its {specials} special tokens)")
    parts = []
    for begin in range(0, len(examples), TOKENIZE_CHUNK):
        chunk = examples[begin:begin + TOKENIZE_CHUNK]
        encoding = _encode_chunk(tokenizer, chunk, max_seq_len, doc_stride)
        parts.append((encoding, begin))
    fields = {name: RaggedRows.from_ragged(_concat([getattr(enc, name) for enc, _ in parts]))
              for name in ("token_ids", "segment_ids", "starts", "ends", "sequence_ids")}
    example_index = np.concatenate([enc.sample_index.numpy().astype(np.int64) + begin for enc, begin in parts])
    windows = QAWindows(**fields, example_index=example_index)
    if not training:
        return windows
    start_positions, end_positions = span_positions(windows, examples)
    return dataclasses.replace(windows, start_positions=start_positions, end_positions=end_positions)


def pair_special_tokens(tokenizer) -> int:
    """Special tokens around a question + context pair: 3 for BERT, 4 for RoBERTa (``<s> q </s></s> c </s>``)."""
    return tokenizer.special_layout(True).count(True)


def _concat(tensors: list[tf.RaggedTensor]) -> tf.RaggedTensor:
    return tensors[0] if len(tensors) == 1 else tf.concat(tensors, axis=0)


def _encode_chunk(tokenizer, chunk: Sequence[QAExample], max_seq_len: int, doc_stride: int):
    questions = [e.question.lstrip() for e in chunk]
    contexts = [e.context for e in chunk]
    try:
        return tokenizer.encode(tf.constant(questions, tf.string), tf.constant(contexts, tf.string),
                                max_length=max_seq_len, truncation="only_second", stride=doc_stride)
    except TokenizerError:
        row = _question_too_long(tokenizer, questions, contexts, max_seq_len, doc_stride)
        if row is None:
            raise
        n = int(tokenizer.tokenize(tf.constant([questions[row]], tf.string)).ids.row_lengths()[0])
        specials = pair_special_tokens(tokenizer)
        raise InputError(
            f"question id {chunk[row].id!r}: its {n} tokens leave {max(max_seq_len - specials - n, 0)} of "
            f"max_seq_len={max_seq_len} ({specials} are special tokens) for the context, which needs windows that advance, "
            f"i.e. more than doc_stride={doc_stride}; shorten the question, lower doc_stride or raise max_seq_len"
        ) from None


def _question_too_long(tokenizer, questions: list[str], contexts: list[str], max_seq_len: int,
                       doc_stride: int) -> int | None:
    """The first row whose question leaves its (overflowing) context no room beyond ``doc_stride`` tokens."""
    n1, n2 = (tf.cast(tokenizer.tokenize(tf.constant(texts, tf.string)).ids.row_lengths(), tf.int32)
              for texts in (questions, contexts))
    budget = max_seq_len - pair_special_tokens(tokenizer)
    bad = trunc.pair_overflow(n1, n2, budget, "only_second") | ((budget - n1 <= doc_stride) & (n1 + n2 > budget))
    rows = np.flatnonzero(bad.numpy())
    return int(rows[0]) if len(rows) else None


def answer_chars(examples: Sequence[QAExample]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per example: has an answer, the first answer's start and end character (run_qa labels the first only)."""
    answered = np.zeros(len(examples), bool)
    start = np.zeros(len(examples), np.int64)
    end = np.zeros(len(examples), np.int64)
    for k, e in enumerate(examples):
        if e.is_impossible or not e.answers:
            continue
        if not e.answer_starts:
            raise InputError(f"question id {e.id!r}: answer {e.answers[0]!r} has no answer_start")
        answered[k], start[k] = True, e.answer_starts[0]
        end[k] = start[k] + len(e.answers[0])
    return answered, start, end


def span_positions(windows: QAWindows, examples: Sequence[QAExample]) -> tuple[np.ndarray, np.ndarray]:
    """run_qa's ``start_positions`` / ``end_positions`` of every window, int32 (see the module docstring).

    run_qa walks the offsets token by token; here every walk is a masked min / max over all windows' tokens
    at once (``np.minimum.reduceat``: each window has at least 3 tokens, so no segment is empty).
    """
    answered, char_start, char_end = (a[windows.example_index] for a in answer_chars(examples))
    lengths, row_begin = windows.lengths, windows.token_ids.row_splits[:-1]
    row = np.repeat(np.arange(len(lengths)), lengths)  # window of every token
    pos = np.arange(len(row)) - row_begin[row]  # index of every token in its window
    starts, ends = windows.starts.values, windows.ends.values
    context = windows.sequence_ids.values == SECOND
    first = np.minimum.reduceat(np.where(context, pos, np.iinfo(np.int64).max), row_begin)  # first context token
    last = np.maximum.reduceat(np.where(context, pos, -1), row_begin)  # last context token (-1: none)
    has_context = last >= 0
    first_c, last_c = np.where(has_context, first, 0), np.where(has_context, last, 0)
    inside = (answered & has_context & (starts[row_begin + first_c] <= char_start)
              & (ends[row_begin + last_c] >= char_end))
    # Forward walk from the first context token while start offset <= the answer's start; stop one past.
    stops = (pos >= first_c[row]) & (starts > char_start[row])
    start_pos = np.minimum.reduceat(np.where(stops, pos, lengths[row]), row_begin) - 1
    # Backward walk from the last context token while end offset >= the answer's end; stop one before.
    stops = (pos <= last_c[row]) & (ends < char_end[row])
    end_pos = np.maximum.reduceat(np.where(stops, pos, -1), row_begin) + 1
    return (np.where(inside, start_pos, CLS_INDEX).astype(np.int32),
            np.where(inside, end_pos, CLS_INDEX).astype(np.int32))


def qa_training_data(windows: QAWindows, *, pad_id: int, batch_size: int, max_length: int, shuffle: bool,
                     seed: int, bucket: bool = True) -> TrainingData:
    """``({"token_ids", "segment_ids", "padding_mask"}, labels)`` batches; labels ``(B, 2)`` int32 ``[start, end]``."""
    if windows.start_positions is None or windows.end_positions is None:
        raise InputError("these question-answering windows have no span labels (made with training=False)")
    labels = np.stack([windows.start_positions, windows.end_positions], axis=1).astype(np.int32)
    source = tf.data.Dataset.from_tensor_slices(
        ({"token_ids": windows.token_ids.to_tensor(), "segment_ids": windows.segment_ids.to_tensor()}, labels))

    def features(inputs, label):
        ids = inputs["token_ids"]
        return {"token_ids": ids, "segment_ids": inputs["segment_ids"], "padding_mask": tf.ones_like(ids)}, label

    dataset = source.map(features, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return batch_examples(dataset, len(windows), label_shape=[2], label_padding=tf.constant(0, tf.int32),
                          pad_id=pad_id, batch_size=batch_size, max_length=max_length, shuffle=shuffle, seed=seed,
                          bucket=bucket, lengths=windows.lengths)

"""Word-level tagged sentences → word-piece windows with aligned labels, and predictions back to words.

    words + tags ─► text = words joined by spaces ─► word pieces (character offsets) ─► piece → word
                 ─► labels on the first piece of each word (-100 elsewhere: ignored by the loss)
                 ─► windows of ``max_length`` tokens overlapping by ``stride`` pieces (long sentences are
                    split, never cut) ─► [CLS] window [SEP] ─► tf.data batches

Joining words with single spaces and mapping pieces back by their character offsets gives the same
pieces as Hugging Face's ``is_split_into_words=True`` (BERT splits on whitespace and punctuation
either way). For evaluation every word is labelled in exactly one window (the one where it has the
most context on both sides), so word-level predictions come out once per word.

Example:
    >>> import numpy as np
    >>> text, word_starts = join_words(["New", "York", "rocks"])
    >>> text, word_starts.tolist()
    ('New York rocks', [0, 4, 9])
    >>> piece_word = words_of_pieces(np.array([0, 4, 9, 11]), word_starts)  # "new" "york" "ro" "##cks"
    >>> piece_word.tolist()
    [0, 1, 2, 2]
    >>> align_labels(piece_word, np.array([1, 2, 0])).tolist()
    [1, 2, 0, -100]
    >>> window_spans(10, size=4, stride=1)
    [(0, 4), (3, 7), (6, 10)]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from kbert.batching.dataset import TrainingData, batch_examples

IGNORE_INDEX = -100  # label of positions the loss and the metrics skip (Hugging Face's convention)
TOKENIZE_CHUNK = 1024


def join_words(words: Sequence[str]) -> tuple[str, np.ndarray]:
    """The words joined by single spaces, and the character offset where each word starts."""
    lengths = np.array([len(w) for w in words], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]) if len(words) else np.zeros(0, np.int64)
    return " ".join(words), starts


def words_of_pieces(piece_starts: np.ndarray, word_starts: np.ndarray) -> np.ndarray:
    """Index of the word each piece belongs to, from character offsets (words are in text order)."""
    return np.searchsorted(word_starts, piece_starts, side="right") - 1


def first_pieces(piece_word: np.ndarray) -> np.ndarray:
    """True for the first piece of each word."""
    return np.concatenate([[True], piece_word[1:] != piece_word[:-1]]) if len(piece_word) else np.zeros(0, bool)


def align_labels(piece_word: np.ndarray, word_labels: np.ndarray, *, label_all_pieces: bool = False,
                 continuation: np.ndarray | None = None) -> np.ndarray:
    """Per-piece labels: the word's label on its first piece, ``IGNORE_INDEX`` on the others.

    With ``label_all_pieces`` every piece carries a label: ``continuation[label]`` (the ``I-`` label of a
    ``B-`` label, see :func:`continuation_labels`) on the pieces after the first, as Hugging Face's
    ``run_ner.py --label_all_tokens`` does.
    """
    labels = word_labels[piece_word].astype(np.int64)
    first = first_pieces(piece_word)
    if not label_all_pieces:
        return np.where(first, labels, IGNORE_INDEX)
    if continuation is None:
        return labels
    return np.where(first, labels, continuation[labels])


def continuation_labels(names: Sequence[str]) -> np.ndarray:
    """For each label id, the id to use on a word's later pieces: ``B-X`` → ``I-X`` when present, else itself."""
    index = {n: i for i, n in enumerate(names)}
    return np.array([index.get("I-" + n[2:], i) if n.startswith("B-") else i for i, n in enumerate(names)], np.int64)


def window_spans(n: int, size: int, stride: int) -> list[tuple[int, int]]:
    """``[begin, end)`` piece ranges of at most ``size`` pieces, each starting ``size - stride`` after the last."""
    if n <= size:
        return [(0, n)]
    step = size - stride
    spans, begin = [], 0
    while True:
        spans.append((begin, min(begin + size, n)))
        if begin + size >= n:
            return spans
        begin += step


def owning_window(position: int, spans: list[tuple[int, int]]) -> int:
    """The window where a piece has the most context: the largest distance to the nearer window edge."""
    best, best_context = 0, -1
    for w, (begin, end) in enumerate(spans):
        if begin <= position < end:
            context = min(position - begin, end - 1 - position)
            if context > best_context:
                best, best_context = w, context
    return best


@dataclasses.dataclass(frozen=True)
class SentencePieces:
    """Word pieces of one sentence (no special tokens) and the word each belongs to."""

    ids: np.ndarray
    word: np.ndarray
    num_words: int


def tokenize_words(tokenizer, sentences: Sequence[Sequence[str]]) -> list[SentencePieces]:
    """Word pieces of word lists, exactly as Hugging Face's ``is_split_into_words=True`` gives them.

    The words are joined by spaces and tokenized once; a byte-level tokenizer gets a space before the
    first word too (``tokenizer.split_words_prefix``), as ``run_ner.py`` loads RoBERTa's tokenizer with
    ``add_prefix_space=True`` so that every word is tokenized as ``" word"``.
    """
    out = []
    prefix = tokenizer.split_words_prefix
    for chunk_start in range(0, len(sentences), TOKENIZE_CHUNK):
        chunk = sentences[chunk_start:chunk_start + TOKENIZE_CHUNK]
        joined = [(prefix + text, starts + len(prefix)) for text, starts in (join_words(words) for words in chunk)]
        pieces = tokenizer.tokenize(tf.constant([text for text, _ in joined], tf.string))
        ids, starts = pieces.ids.to_list(), pieces.starts.to_list()
        for (_, word_starts), row_ids, row_starts, words in zip(joined, ids, starts, chunk):
            out.append(SentencePieces(np.asarray(row_ids, np.int32),
                                      words_of_pieces(np.asarray(row_starts, np.int64), word_starts), len(words)))
    return out


@dataclasses.dataclass(frozen=True)
class TokenWindows:
    """Model-ready windows of a set of sentences.

    ``token_ids``/``labels`` include ``[CLS]``/``[SEP]`` (labelled ``IGNORE_INDEX``); ``sentence[i]`` is
    the sentence window ``i`` comes from and ``words[i]`` the word index of each labelled position of
    window ``i``, in position order (what :func:`word_predictions` maps predictions back with).
    """

    token_ids: list[np.ndarray]
    labels: list[np.ndarray]
    sentence: np.ndarray
    words: list[np.ndarray]
    num_words: np.ndarray  # per sentence

    def labelled_tokens(self) -> int:
        """Positions that carry a label (not ``IGNORE_INDEX``), over all windows."""
        return int(sum(int(np.count_nonzero(labels != IGNORE_INDEX)) for labels in self.labels))


def make_windows(pieces: Sequence[SentencePieces], word_labels: Sequence[np.ndarray] | None, *, max_length: int,
                 stride: int, cls_id: int, sep_id: int, label_all_pieces: bool = False,
                 continuation: np.ndarray | None = None, evaluation: bool = False) -> TokenWindows:
    """Split every sentence into windows of at most ``max_length`` tokens and label their pieces.

    ``evaluation=True`` labels first pieces only, each in the one window that owns it
    (:func:`owning_window`), so every word is scored once. Without ``word_labels`` (prediction) the
    same holds, with label 0 on those pieces so that :func:`word_predictions` knows which positions to read.
    """
    size = max_length - 2
    if not 0 <= stride < size:
        raise ValueError(f"stride must be in [0, {size}) for max_length={max_length}, got {stride}")
    once = evaluation or word_labels is None  # every word labelled in exactly one window
    token_ids, labels, sentence, words = [], [], [], []
    for index, sent in enumerate(pieces):
        word_label = (word_labels[index] if word_labels is not None else np.zeros(sent.num_words, np.int64))
        first = first_pieces(sent.word)
        if once:
            piece_labels = np.where(first, word_label[sent.word], IGNORE_INDEX) if len(sent.word) else np.zeros(0, np.int64)
        else:
            piece_labels = align_labels(sent.word, word_label, label_all_pieces=label_all_pieces,
                                        continuation=continuation)
        spans = window_spans(len(sent.ids), size, stride)
        if once and len(spans) > 1:
            owner = np.array([owning_window(p, spans) for p in range(len(sent.ids))])
        for w, (begin, end) in enumerate(spans):
            window_labels = piece_labels[begin:end].copy()
            if once and len(spans) > 1:
                window_labels[owner[begin:end] != w] = IGNORE_INDEX
            labelled = window_labels != IGNORE_INDEX
            token_ids.append(np.concatenate([[cls_id], sent.ids[begin:end], [sep_id]]).astype(np.int32))
            labels.append(np.concatenate([[IGNORE_INDEX], window_labels, [IGNORE_INDEX]]).astype(np.int32))
            sentence.append(index)
            words.append(sent.word[begin:end][labelled] if once else np.zeros(0, np.int64))
    return TokenWindows(token_ids, labels, np.asarray(sentence, np.int64), words,
                        np.array([p.num_words for p in pieces], np.int64))


def _ragged(rows: list[np.ndarray]) -> tf.RaggedTensor:
    lengths = np.array([len(r) for r in rows], np.int64)
    values = np.concatenate(rows) if rows else np.zeros(0, np.int32)
    return tf.RaggedTensor.from_row_lengths(values.astype(np.int32), lengths)


def make_token_dataset(windows: TokenWindows, *, pad_id: int, batch_size: int, max_length: int,
                       shuffle: bool = False, seed: int = 0, bucket: bool = True) -> TrainingData:
    """``({"token_ids", "segment_ids", "padding_mask"}, labels)`` batches; labels padded with ``IGNORE_INDEX``."""
    source = tf.data.Dataset.from_tensor_slices((_ragged(windows.token_ids), _ragged(windows.labels)))

    def features(ids, labels):
        return {"token_ids": ids, "segment_ids": tf.zeros_like(ids), "padding_mask": tf.ones_like(ids)}, labels

    dataset = source.map(features, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return batch_examples(dataset, len(windows.token_ids), label_shape=[None],
                          label_padding=tf.constant(IGNORE_INDEX, tf.int32), pad_id=pad_id, batch_size=batch_size,
                          max_length=max_length, shuffle=shuffle, seed=seed, bucket=bucket)


def word_predictions(window_logits: Sequence[np.ndarray], window_labels: Sequence[np.ndarray],
                     windows: TokenWindows) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per sentence, the predicted label id and its probability for every word (-1 / 0.0: a word with no piece).

    ``window_logits[i]``/``window_labels[i]`` are window ``i``'s logits ``(T, L)`` and labels ``(T,)`` in the
    order of ``windows`` (batches unpadded or padded: positions are matched by label, not by length).
    """
    predicted = [np.full(n, -1, np.int64) for n in windows.num_words]
    probability = [np.zeros(n, np.float64) for n in windows.num_words]
    for logits, labels, sentence, words in zip(window_logits, window_labels, windows.sentence, windows.words):
        positions = np.flatnonzero(np.asarray(labels) != IGNORE_INDEX)
        chosen = np.asarray(logits, np.float64)[positions]
        chosen = np.exp(chosen - chosen.max(axis=-1, keepdims=True))
        chosen /= chosen.sum(axis=-1, keepdims=True)
        predicted[sentence][words] = chosen.argmax(axis=-1)
        probability[sentence][words] = chosen.max(axis=-1)
    return predicted, probability

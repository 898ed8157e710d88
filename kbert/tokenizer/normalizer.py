"""BERT text normalisation and word splitting as TensorFlow ops, with character offsets.

This reproduces Hugging Face's ``BertNormalizer`` + ``BertPreTokenizer`` (the Rust "fast"
tokenizer) code point by code point, so that it can live inside a SavedModel:

    text ─► code points ─► drop control chars, whitespace → ' '      (clean_text)
         ─► strip accents (NFD, drop Mn) and/or lower-case, per char  (table lookups)
         ─► split on spaces, isolate punctuation and CJK ideographs   (words)

Every code point that survives remembers the index of the character it came from in the
*original* Python string, so word pieces can report ``offset_mapping`` exactly as HF does
(Python ``str`` indices, not UTF-8 bytes).

The per-code-point rules are data (``unicode_tables.json``) probed from the real Rust
implementation by ``tools/make_unicode_tables.py``; see that script for why.

Example:
    >>> import tensorflow as tf
    >>> from kbert.tokenizer.normalizer import BertNormalizer
    >>> words = BertNormalizer(lowercase=True).split_words(tf.constant(["Héllo, World!"]))
    >>> [w.decode() for w in words.words.numpy()]
    ['hello', ',', 'world', '!']
    >>> words.starts.numpy().tolist(), words.ends.numpy().tolist()
    ([0, 5, 7, 12], [5, 6, 12, 13])
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib

import numpy as np
import tensorflow as tf

from kbert.tokenizer.special_tokens import SpecialTokenMatcher

_TABLES_PATH = pathlib.Path(__file__).with_name("unicode_tables.json")

# Classes of a raw code point under clean_text (see tools/make_unicode_tables.py).
_KEEP, _REMOVE, _SPACE = 0, 1, 2
# Classes of a normalised code point for word splitting.
_WORD, _ISOLATE, _SEPARATOR = 0, 1, 2
_SPACE_CP = 32


@functools.lru_cache(maxsize=None)
def _load_tables() -> dict:
    return json.loads(_TABLES_PATH.read_text(encoding="utf-8"))


@dataclasses.dataclass(frozen=True)
class Words:
    """Words of a batch of texts, flattened: ``words[i]`` belongs to text ``text_index[i]``.

    ``starts``/``ends`` are character offsets of each word in its original text; ``char_positions``
    holds, per word, the original index of every normalised character (a ragged tensor), which is
    what lets word pieces that split a word report their own offsets.
    """

    words: tf.Tensor  # (W,) tf.string, normalised, UTF-8
    text_index: tf.Tensor  # (W,) int32
    starts: tf.Tensor  # (W,) int32
    ends: tf.Tensor  # (W,) int32
    char_positions: tf.RaggedTensor  # (W, (chars)) int32
    num_texts: tf.Tensor  # () int32
    special: tf.Tensor  # (W,) int32: index of the special token this word is, else -1


class _RangeTable(tf.Module):
    """Maps code points to small integer classes with a sorted list of run boundaries."""

    def __init__(self, runs: list[list[int]], name: str):
        super().__init__(name=name)
        starts, classes = zip(*runs)
        self._starts = tf.constant(np.asarray(starts, np.int32))
        self._classes = tf.constant(np.asarray(classes, np.int32))

    def __call__(self, code_points: tf.Tensor) -> tf.Tensor:
        run = tf.searchsorted(self._starts, code_points, side="right") - 1
        return tf.gather(self._classes, run)


class _CodePointMapping(tf.Module):
    """Replaces code points by sequences of 0..n code points (accent stripping, lower-casing)."""

    def __init__(self, table: dict[str, list[int]], name: str):
        super().__init__(name=name)
        keys = np.asarray([int(k) for k in table], np.int32)
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, np.arange(len(keys), dtype=np.int32)),
            default_value=-1,
        )
        values = list(table.values())
        lengths = np.asarray([len(v) for v in values], np.int32)
        self._lengths = tf.constant(lengths)
        self._row_starts = tf.constant(np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int32))
        self._values = tf.constant(np.asarray([cp for v in values for cp in v], np.int32))

    def __call__(self, code_points: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Return ``(new_code_points, source)``: ``source[j]`` is the input that output ``j`` comes from."""
        entry = self._table.lookup(code_points)  # (N,), -1 = unchanged
        lengths = tf.where(entry >= 0, tf.gather(self._lengths, tf.maximum(entry, 0)), 1)
        source = tf.repeat(tf.range(tf.shape(code_points)[0]), lengths)  # (M,)
        first_out = tf.cumsum(lengths, exclusive=True)
        offset = tf.range(tf.shape(source)[0]) - tf.gather(first_out, source)  # (M,) position in its expansion
        out_entry = tf.gather(entry, source)
        mapped = tf.gather(self._values, tf.gather(self._row_starts, tf.maximum(out_entry, 0)) + offset)
        return tf.where(out_entry >= 0, mapped, tf.gather(code_points, source)), source


class BertNormalizer(tf.Module):
    """Hugging Face ``BertNormalizer`` + ``BertPreTokenizer`` as TensorFlow ops.

    Args:
        lowercase: lower-case every character (``do_lower_case``).
        strip_accents: remove accents (NFD, then drop non-spacing marks); ``None`` follows
            ``lowercase``, as in Hugging Face.
        tokenize_chinese_chars: make every CJK ideograph a word of its own.
        special_tokens: literal tokens matched in the raw text before normalisation (each becomes
            one word; see :mod:`kbert.tokenizer.special_tokens`).
    """

    def __init__(self, lowercase: bool = True, strip_accents: bool | None = None,
                 tokenize_chinese_chars: bool = True, special_tokens: tuple[str, ...] = (),
                 name: str | None = None):
        super().__init__(name=name)
        self.special_tokens = SpecialTokenMatcher(list(special_tokens), name="special_tokens")
        tables = _load_tables()
        self.lowercase = bool(lowercase)
        self.strip_accents = self.lowercase if strip_accents is None else bool(strip_accents)
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        self._clean = _RangeTable(tables["clean_text_runs"], name="clean_text")
        self._split = _RangeTable(tables["split_runs"], name="split")
        key = "+".join(k for k, on in (("strip_accents", self.strip_accents), ("lowercase", self.lowercase)) if on)
        self._mapping = _CodePointMapping(tables["mappings"][key], name="mapping") if key else None
        if not self.tokenize_chinese_chars:
            self._chinese = _RangeTable(_CHINESE_RUNS, name="chinese")

    def normalize(self, texts: tf.Tensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
        """Normalised code points, their source character indices, and special-token marks.

        All three are ``(B, (n))``; the marks are ``-1`` for ordinary characters, else the index
        of the special token the character belongs to, plus ``len(special_tokens)`` on the first
        character of each match (so that adjacent matches stay apart).
        """
        texts = tf.convert_to_tensor(texts, tf.string)
        cps = tf.strings.unicode_decode(texts, "UTF-8", errors="replace")  # (B, (chars))
        positions = tf.ragged.range(tf.cast(cps.row_lengths(), tf.int32))  # (B, (chars))
        flat_cp, flat_pos, row = cps.flat_values, positions.flat_values, cps.value_rowids()
        special, special_start = self.special_tokens(flat_cp, row)
        is_special = special >= 0
        marks = tf.where(special_start, special + len(self.special_tokens.tokens), special)

        cls = tf.where(is_special, _KEEP, self._clean(flat_cp))  # special tokens are matched raw
        keep = tf.not_equal(cls, _REMOVE)
        flat_cp = tf.where(tf.equal(cls, _SPACE), _SPACE_CP, flat_cp)
        flat_cp, flat_pos, row, marks = _select(keep, flat_cp, flat_pos, row, marks)

        if self._mapping is not None:
            flat_cp, source = self._map_outside_specials(flat_cp, marks)
            flat_pos, row, marks = (tf.gather(t, source) for t in (flat_pos, row, marks))

        nrows = tf.shape(texts, out_type=tf.int64)[0]
        return tuple(tf.RaggedTensor.from_value_rowids(t, row, nrows=nrows, validate=False) for t in (flat_cp, flat_pos, marks))

    def _map_outside_specials(self, flat_cp, marks):
        """Accent stripping / lower-casing of every code point that is not part of a special token."""
        protected = tf.where(marks >= 0, -1, flat_cp)  # -1 is no code point: the mapping leaves it alone
        mapped, source = self._mapping(protected)
        return tf.where(tf.gather(marks, source) >= 0, tf.gather(flat_cp, source), mapped), source

    def split_words(self, texts: tf.Tensor) -> Words:
        """Normalise ``texts`` (shape ``(B,)``) and split them into words with character offsets."""
        cps, positions, marks = self.normalize(texts)
        flat_cp, flat_pos, row, marks = cps.flat_values, positions.flat_values, cps.value_rowids(), marks.flat_values
        num_special = len(self.special_tokens.tokens)

        cls = self._split(flat_cp)
        if not self.tokenize_chinese_chars:  # CJK ideographs are then ordinary word characters
            cls = tf.where(tf.equal(self._chinese(flat_cp), 1), _WORD, cls)
        cls = tf.where(marks >= 0, _WORD, cls)  # a special token is one word, brackets included
        # A word starts at a non-separator that follows a separator, an isolated char, the start
        # of its text, or that is itself isolated; special tokens start and end words.
        first_in_text = tf.equal(tf.ragged.range(cps.row_lengths()).flat_values, 0)
        prev_cls = tf.concat([[_SEPARATOR], cls[:-1]], axis=0)
        prev_cls = tf.where(first_in_text, _SEPARATOR, prev_cls)
        prev_special = tf.concat([[False], marks[:-1] >= 0], axis=0) & ~first_in_text
        is_char = tf.not_equal(cls, _SEPARATOR)
        starts_word = is_char & (tf.not_equal(prev_cls, _WORD) | tf.equal(cls, _ISOLATE)
                                 | (marks >= num_special) | (prev_special & (marks < 0)))

        flat_cp, flat_pos, row, starts_word, marks = _select(is_char, flat_cp, flat_pos, row, starts_word, marks)
        word_id = tf.cumsum(tf.cast(starts_word, tf.int64)) - 1  # (chars,)
        num_words = tf.reduce_sum(tf.cast(starts_word, tf.int64))
        word_cps = tf.RaggedTensor.from_value_rowids(flat_cp, word_id, nrows=num_words, validate=False)
        char_positions = tf.RaggedTensor.from_value_rowids(flat_pos, word_id, nrows=num_words, validate=False)
        word_row, first_marks = _select(starts_word, row, marks)  # (W,)
        word_text = tf.cast(word_row, tf.int32)
        return Words(
            words=tf.strings.unicode_encode(word_cps, "UTF-8"),
            text_index=word_text,
            starts=tf.gather(flat_pos, char_positions.row_starts()),
            ends=tf.gather(flat_pos, char_positions.row_limits() - 1) + 1,
            char_positions=char_positions,
            num_texts=tf.shape(texts)[0],
            special=tf.where(first_marks >= 0, first_marks % max(num_special, 1), -1),
        )


def _select(mask: tf.Tensor, *tensors: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """``tf.boolean_mask`` of several 1-D tensors by one mask (one ``where``, far fewer graph nodes)."""
    index = tf.reshape(tf.where(mask), [-1])
    return tuple(tf.gather(t, index) for t in tensors)


# CJK ranges of the Rust normaliser (note 0x2B920, not 0x2B820: inherited from the original BERT).
_CHINESE_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
                   (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]
_CHINESE_RUNS = [[0, 0]] + [run for lo, hi in sorted(_CHINESE_RANGES) for run in ([lo, 1], [hi + 1, 0])]

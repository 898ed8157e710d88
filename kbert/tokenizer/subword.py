"""What every kbert subword tokenizer shares: pieces, truncation, overflow windows, special-token layout.

A subclass (:class:`~kbert.tokenizer.BertTokenizer`, :class:`~kbert.tokenizer.RobertaTokenizer`) provides
``tokenize()`` (text → pieces with character offsets, no special tokens) and ``special_layout()`` (where its
special tokens go); :meth:`SubwordTokenizer.encode` does the rest with Hugging Face's semantics: pairs,
``longest_first`` / ``only_first`` / ``only_second`` truncation and overflow windows with a stride.
Everything is TensorFlow ops (``tf.data`` ``map``, ``tf.function``, SavedModel).

Example (a minimal subclass: one piece per character):
    >>> import tensorflow as tf
    >>> class Chars(SubwordTokenizer):
    ...     vocabulary, pad_id, cls_id, sep_id, unk_id, model_max_length = ("<pad>", "<cls>", "<sep>"), 0, 1, 2, 0, 8
    ...     def tokenize(self, texts):
    ...         cps = tf.strings.unicode_decode(texts, "UTF-8")
    ...         starts = tf.ragged.range(cps.row_lengths())
    ...         return Pieces(tf.cast(cps, tf.int32), tf.cast(starts, tf.int32), tf.cast(starts + 1, tf.int32))
    ...     def special_layout(self, is_pair):
    ...         return SpecialLayout(((self.cls_id, 0),), ((self.sep_id, 0),), ((self.sep_id, 1),), 1)
    >>> enc = Chars().encode(tf.constant(["abcdefgh"]), max_length=6, stride=1)
    >>> enc.token_ids.to_list(), enc.sample_index.numpy().tolist()
    ([[1, 97, 98, 99, 100, 2], [1, 100, 101, 102, 103, 2], [1, 103, 104, 2]], [0, 0, 0])
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
import tensorflow as tf

from kbert.errors import CheckpointNotFoundError, TokenizerError
from kbert.tokenizer import truncation as trunc

# Sequence ids, as Hugging Face's ``Encoding.sequence_ids`` (None for special tokens → -1 here).
SPECIAL, FIRST, SECOND = -1, 0, 1


@dataclasses.dataclass(frozen=True)
class Encoding:
    """Token-level view of a batch: ragged ``(N, (T))`` tensors plus ``sample_index`` ``(N,)``.

    ``N`` is the number of texts, or of windows when overflow windows were asked for;
    ``sample_index[i]`` is the input text row ``i`` comes from (HF's ``overflow_to_sample_mapping``).
    ``starts``/``ends`` are character offsets into the text (first or pair) the token comes from;
    special tokens have ``(0, 0)`` and ``sequence_ids == -1``.
    """

    token_ids: tf.RaggedTensor
    segment_ids: tf.RaggedTensor
    starts: tf.RaggedTensor
    ends: tf.RaggedTensor
    sequence_ids: tf.RaggedTensor
    sample_index: tf.Tensor

    def padded(self, length: int | tf.Tensor | None = None, pad_id: int = 0) -> dict[str, tf.Tensor]:
        """Dense ``(N, L)`` model inputs and offsets; ``L`` is ``length`` or the longest row."""
        if length is None:  # the longest row; at least 2 so that an empty batch still has a [CLS] column
            length = tf.maximum(self.token_ids.bounding_shape(axis=1, out_type=tf.int32), 2)
        shape = tf.stack([self.token_ids.nrows(out_type=tf.int32), tf.cast(length, tf.int32)])

        def dense(rt, value):
            return rt.to_tensor(default_value=value, shape=shape)

        return {
            "token_ids": dense(self.token_ids, pad_id),
            "segment_ids": dense(self.segment_ids, 0),
            "padding_mask": dense(tf.ones_like(self.token_ids), 0),
            "starts": dense(self.starts, 0),
            "ends": dense(self.ends, 0),
            "sequence_ids": dense(self.sequence_ids, SPECIAL),
        }


@dataclasses.dataclass(frozen=True)
class Pieces:
    """Subword pieces of a batch of texts, without special tokens: ragged ``(B, (n))`` int32.

    ``opening_starts``/``opening_ends`` (optional, same shape) are the offsets a piece reports when it
    is the first of its sequence -- of a text, or of an overflow window. Hugging Face's byte-level
    ``trim_offsets`` keeps the prefix space it added on such a token, so it differs there; a tokenizer
    without that rule leaves them ``None``. ``word_starts`` (optional) marks the pieces that begin a word
    of the pre-tokenizer: where Hugging Face's ``word_ids()`` moves on.
    """

    ids: tf.RaggedTensor
    starts: tf.RaggedTensor
    ends: tf.RaggedTensor
    opening_starts: tf.RaggedTensor | None = None
    opening_ends: tf.RaggedTensor | None = None
    word_starts: tf.RaggedTensor | None = None  # bool: the piece begins a pre-tokenizer word (HF's word_ids)

    def _map(self, fn) -> "Pieces":
        return Pieces(*(None if t is None else fn(t) for t in (getattr(self, f.name) for f in dataclasses.fields(self))))

    def take(self, keep: tf.Tensor) -> "Pieces":
        """First ``keep[b]`` pieces of every row."""
        starts = tf.cast(self.ids.row_starts(), tf.int32)
        return self._pick(tf.ragged.range(starts, starts + keep))

    def _pick(self, index: tf.RaggedTensor) -> "Pieces":
        """Rows made of the flat pieces at ``index`` (a ragged tensor of flat positions)."""
        return self._map(lambda t: tf.gather(t.flat_values, index))

    def gather(self, rows: tf.Tensor) -> "Pieces":
        return self._map(lambda t: tf.gather(t, rows))

    def windows(self, size: tf.Tensor, stride: int) -> tuple["Pieces", tf.Tensor]:
        """Overflow windows of at most ``size[b]`` pieces, every ``size - stride`` pieces."""
        n = tf.cast(self.ids.row_lengths(), tf.int32)
        starts = trunc.window_starts(n, size, stride)  # (B, (k))
        row = tf.cast(starts.value_rowids(), tf.int32)  # (W,)
        begin = starts.flat_values  # (W,)
        end = tf.minimum(begin + tf.gather(tf.broadcast_to(size, tf.shape(n)), row), tf.gather(n, row))
        offset = tf.gather(tf.cast(self.ids.row_starts(), tf.int32), row)
        return self._pick(tf.ragged.range(begin + offset, end + offset)), row

    def offsets(self) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        """``(starts, ends)`` as the rows report them: the opening offsets on each row's first piece."""
        if self.opening_starts is None:
            return self.starts, self.ends
        first = tf.equal(tf.ragged.range(self.ids.row_lengths()), 0)
        return (tf.ragged.map_flat_values(tf.where, first, self.opening_starts, self.starts),
                tf.ragged.map_flat_values(tf.where, first, self.opening_ends, self.ends))


_Pieces = Pieces  # the name kbert used before the base class existed


@dataclasses.dataclass(frozen=True)
class SpecialLayout:
    """Where a tokenizer puts its special tokens: ``(id, segment)`` pairs around the texts.

    Single text: ``before first after_first``; pair: ``before first after_first second after_second``.
    ``second_segment`` is the segment id of the second text's pieces.
    """

    before: tuple[tuple[int, int], ...]
    after_first: tuple[tuple[int, int], ...]
    after_second: tuple[tuple[int, int], ...]
    second_segment: int

    def count(self, is_pair: bool) -> int:
        return len(self.before) + len(self.after_first) + (len(self.after_second) if is_pair else 0)


def _fields(pieces: Pieces, segment: int, sequence: int) -> tf.RaggedTensor:
    """``(N, (n), 5)``: id, segment id, start, end, sequence id of every piece."""
    ids = pieces.ids.flat_values
    starts, ends = pieces.offsets()
    values = tf.stack([ids, tf.fill(tf.shape(ids), segment), starts.flat_values, ends.flat_values,
                       tf.fill(tf.shape(ids), sequence)], axis=1)
    return tf.RaggedTensor.from_row_splits(values, pieces.ids.row_splits, validate=False)


def _special_columns(rows: tf.Tensor, tokens: tuple[tuple[int, int], ...]) -> tf.RaggedTensor:
    """``(N, k, 5)`` fields of ``k`` special tokens per row (offsets 0, 0; sequence id -1)."""
    column = tf.tile(tf.constant([[[token_id, segment, 0, 0, SPECIAL] for token_id, segment in tokens]], tf.int32),
                     tf.stack([rows, 1, 1]))
    return tf.RaggedTensor.from_tensor(column, ragged_rank=1)


class SubwordTokenizer(tf.Module):
    """Base of kbert's tokenizers (:class:`kbert.tokenizer.protocol.Tokenizer`): HF fast-tokenizer ``encode``
    semantics over a subclass's pieces.

    A subclass sets ``vocabulary`` (tokens in id order), ``pad_id``, ``cls_id``, ``sep_id``, ``unk_id``,
    ``model_max_length`` and ``normalizer``, and implements :meth:`tokenize`, :meth:`special_layout` and
    :meth:`split_words`; one whose tokens do not mark words (no ``continuing_subword_prefix``) also
    ``convert_tokens_to_string`` and ``join_tokens``.
    """

    vocabulary: tuple[str, ...]
    pad_id: int
    cls_id: int
    sep_id: int
    unk_id: int
    model_max_length: int
    continuing_subword_prefix: str | None = None
    split_words_prefix: str = ""
    takes_split_words: bool = True
    decoder_cleanup: bool = False

    @property
    def word_aware(self) -> bool:
        """Whether tokens alone tell where words start (WordPiece's ``##``); byte-level BPE's do not."""
        return bool(self.continuing_subword_prefix)

    @property
    def lowercase(self) -> bool:
        return bool(getattr(self.normalizer, "lowercase", False))

    def continues_word(self) -> np.ndarray:
        """``(V,)`` bool: the vocabulary's pieces that continue the word before them (``##`` pieces)."""
        prefix = self.continuing_subword_prefix
        return np.array([bool(prefix) and t.startswith(prefix) for t in self.vocabulary])

    def split_words(self, texts: tf.Tensor):
        """The pre-tokenizer's words of ``texts`` (``char_positions``, ``text_index``, ``num_texts``)."""
        raise NotImplementedError

    def word_starts(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Ragged ``(B, (words))`` character offsets where :meth:`split_words`' words start (TF ops)."""
        words = self.split_words(texts)
        positions = words.char_positions
        first = tf.gather(positions.flat_values, tf.minimum(tf.cast(positions.row_starts(), tf.int32),
                                                            tf.maximum(tf.size(positions.flat_values) - 1, 0)))
        return tf.RaggedTensor.from_value_rowids(first, tf.cast(words.text_index, tf.int64),
                                                 nrows=tf.cast(words.num_texts, tf.int64))

    def tokenize(self, texts: tf.Tensor) -> Pieces:
        """Pieces of ``texts`` ``(B,)`` without special tokens, with character offsets."""
        raise NotImplementedError

    def special_layout(self, is_pair: bool) -> SpecialLayout:
        raise NotImplementedError

    def encode(self, texts, text_pairs=None, *, max_length: int | None = None, truncation: str = "longest_first",
               stride: int | None = None) -> Encoding:
        """Token ids, segment ids and offsets of texts (or text pairs) with special tokens.

        Args:
            texts: ``(B,)`` strings.
            text_pairs: optional ``(B,)`` second texts.
            max_length: longest result, special tokens included (default ``model_max_length``).
            truncation: ``longest_first``, ``only_first`` or ``only_second`` (pairs).
            stride: when given, return every overflow window instead of cutting (HF's
                ``return_overflowing_tokens=True``): windows of ``max_length`` tokens that overlap by
                ``stride`` tokens of the truncated side. ``sample_index`` maps windows to inputs.
        """
        max_length = self.model_max_length if max_length is None else int(max_length)
        trunc.check_strategy(truncation)
        is_pair = text_pairs is not None
        budget = max_length - self.special_layout(is_pair).count(is_pair)
        if budget < 1:
            raise TokenizerError(f"max_length={max_length} leaves no room for text after the special tokens")
        first = self.tokenize(texts)
        n1 = tf.cast(first.ids.row_lengths(), tf.int32)
        batch = tf.shape(n1)[0]
        sample_index = tf.range(batch)
        if not is_pair:
            if stride is None:
                first = first.take(trunc.single_lengths(n1, budget))
            else:
                _check_stride(stride, budget)
                first, sample_index = first.windows(tf.fill([batch], budget), stride)
            return self._assemble(first, None, sample_index)

        second = self.tokenize(text_pairs)
        n2 = tf.cast(second.ids.row_lengths(), tf.int32)
        if stride is None:
            k1, k2 = trunc.pair_lengths(n1, n2, budget, truncation)
            self._check_pair_fits(n1, n2, budget, truncation)
            return self._assemble(first.take(k1), second.take(k2), sample_index)
        if truncation == "longest_first":
            raise TokenizerError("overflow windows over text pairs need truncation='only_first' or 'only_second'")
        self._check_pair_fits(n1, n2, budget, truncation, stride)
        if truncation == "only_second":
            second, sample_index = second.windows(budget - n1, stride)
            first = first.gather(sample_index)
        else:
            first, sample_index = first.windows(budget - n2, stride)
            second = second.gather(sample_index)
        return self._assemble(first, second, sample_index)

    def __call__(self, texts, text_pairs=None, **kwargs) -> Encoding:
        return self.encode(texts, text_pairs, **kwargs)

    def convert_ids_to_tokens(self, ids) -> list[str]:
        return [self.vocabulary[int(i)] for i in ids]

    # --- helpers -------------------------------------------------------------------------------
    def _assemble(self, first: Pieces, second: Pieces | None, sample_index: tf.Tensor) -> Encoding:
        """The special layout around the pieces, with segment ids, offsets and sequence ids."""
        layout = self.special_layout(second is not None)
        rows = tf.shape(sample_index)[0]
        parts = [_fields(first, 0, FIRST)]
        if layout.before:
            parts.insert(0, _special_columns(rows, layout.before))
        if layout.after_first:
            parts.append(_special_columns(rows, layout.after_first))
        if second is not None:
            parts.append(_fields(second, layout.second_segment, SECOND))
            if layout.after_second:
                parts.append(_special_columns(rows, layout.after_second))
        joined = tf.concat(parts, axis=1)  # (N, (T), 5): one ragged concat for all five fields
        ids, segments, starts, ends, sequence = (joined.with_flat_values(joined.flat_values[:, k]) for k in range(5))
        return Encoding(ids, segments, starts, ends, sequence, sample_index)

    @staticmethod
    def _check_pair_fits(n1, n2, budget, truncation, stride=None):
        """Raise as Hugging Face does when one-sided truncation cannot make a pair fit (eager only)."""
        if truncation == "longest_first" or not tf.executing_eagerly():
            return
        bad = trunc.pair_overflow(n1, n2, budget, truncation)
        if stride is not None:
            other = n2 if truncation == "only_first" else n1
            bad = bad | ((budget - other <= stride) & (n1 + n2 > budget))
        if bool(tf.reduce_any(bad)):
            row = int(tf.where(bad)[0][0])
            side = "first" if truncation == "only_first" else "second"
            raise TokenizerError(
                f"input {row}: with truncation={truncation!r}, max_length leaves {budget} tokens for a pair of "
                f"{int(n1[row])} + {int(n2[row])} tokens; cutting only the {side} text cannot make it fit"
                + ("" if stride is None else f" with stride={stride}"))


def _check_stride(stride: int, budget: int) -> None:
    if not 0 <= stride < budget:
        raise TokenizerError(f"stride={stride} must be at least 0 and less than the {budget} tokens a window holds")


@dataclasses.dataclass(frozen=True)
class TokenizerFolder:
    """What a Hugging Face tokenizer folder says outside its model files: ``tokenizer_config.json``,
    ``special_tokens_map.json``, and the special tokens' names (the config's, else the map's, else defaults)."""

    path: pathlib.Path
    config: dict
    special_map: dict

    @classmethod
    def read(cls, folder) -> "TokenizerFolder":
        folder = pathlib.Path(folder)
        if not folder.is_dir():
            raise CheckpointNotFoundError(f"{folder}: not a folder, so there is no tokenizer")

        def optional(name):
            return read_json(folder / name) if (folder / name).is_file() else {}

        return cls(folder, optional("tokenizer_config.json"), optional("special_tokens_map.json"))

    def special_tokens(self, defaults: dict[str, str]) -> dict[str, str]:
        """``{"cls_token": "<s>", ...}`` for the keys of ``defaults``."""
        def name(key, default):
            value = self.config.get(key, self.special_map.get(key, default))
            return value.get("content", default) if isinstance(value, dict) else (value or default)

        return {key: name(key, default) for key, default in defaults.items()}

    def model_max_length(self, positions: int | None) -> int:
        """``tokenizer_config.json``'s ``model_max_length``; when it is missing or unbounded (transformers then
        never truncates), and as an upper bound, the ``positions`` the model has (default 512)."""
        max_length = self.config.get("model_max_length")
        if not isinstance(max_length, int) or max_length > 1_000_000:
            max_length = positions or 512
        return min(max_length, positions) if positions else max_length


def check_special_tokens(index, tokens, model_max_length: int, what: str = "vocabulary") -> None:
    """Refuse a vocabulary (token → id) that lacks a special token, and a ``model_max_length`` below 3."""
    missing = [t for t in tokens if t not in index]
    if missing:
        raise TokenizerError(f"the {what} ({len(index)} tokens) lacks the special tokens {missing}")
    if model_max_length < 3:
        raise TokenizerError(f"model_max_length={model_max_length} leaves no room for text")


def read_json(path: pathlib.Path) -> dict:
    """A JSON object from ``path``, or a :class:`TokenizerError` naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TokenizerError(f"{path}: not a readable JSON file ({err})") from None
    if not isinstance(data, dict):
        raise TokenizerError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data

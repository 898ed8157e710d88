"""BERT WordPiece tokenizer in TensorFlow ops: Hugging Face ids, character offsets, pairs, windows.

Everything here is graph-compatible (``tf.data`` ``map``, ``tf.function``, SavedModel), and gives
the same ``input_ids``, ``token_type_ids`` and ``offset_mapping`` as Hugging Face's
``BertTokenizerFast`` for the same vocabulary and options.

Example:
    >>> from kbert.tokenizer import BertTokenizer
    >>> tok = BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "i", "love", "paris", "!"])
    >>> enc = tok.encode(["I love Paris!"])
    >>> enc.token_ids.to_list(), enc.starts.to_list(), enc.ends.to_list()
    ([[2, 4, 5, 6, 7, 3]], [[0, 0, 2, 7, 12, 0]], [[0, 1, 6, 12, 13, 0]])
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib

import tensorflow as tf
import tensorflow_text as tf_text

from kbert.errors import CheckpointNotFoundError, TokenizerError
from kbert.tokenizer import truncation as trunc
from kbert.tokenizer.normalizer import BertNormalizer

logger = logging.getLogger(__name__)

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
class _Pieces:
    """Word pieces of a batch of texts, without special tokens: ragged ``(B, (n))``."""

    ids: tf.RaggedTensor
    starts: tf.RaggedTensor
    ends: tf.RaggedTensor

    def take(self, keep: tf.Tensor) -> "_Pieces":
        """First ``keep[b]`` pieces of every row."""
        starts = tf.cast(self.ids.row_starts(), tf.int32)
        return self._pick(tf.ragged.range(starts, starts + keep))

    def _pick(self, index: tf.RaggedTensor) -> "_Pieces":
        """Rows made of the flat pieces at ``index`` (a ragged tensor of flat positions)."""
        return _Pieces(*(tf.gather(t.flat_values, index) for t in (self.ids, self.starts, self.ends)))

    def gather(self, rows: tf.Tensor) -> "_Pieces":
        return _Pieces(*(tf.gather(t, rows) for t in (self.ids, self.starts, self.ends)))

    def windows(self, size: tf.Tensor, stride: int) -> tuple["_Pieces", tf.Tensor]:
        """Overflow windows of at most ``size[b]`` pieces, every ``size - stride`` pieces."""
        n = tf.cast(self.ids.row_lengths(), tf.int32)
        starts = trunc.window_starts(n, size, stride)  # (B, (k))
        row = tf.cast(starts.value_rowids(), tf.int32)  # (W,)
        begin = starts.flat_values  # (W,)
        end = tf.minimum(begin + tf.gather(tf.broadcast_to(size, tf.shape(n)), row), tf.gather(n, row))
        offset = tf.gather(tf.cast(self.ids.row_starts(), tf.int32), row)
        return self._pick(tf.ragged.range(begin + offset, end + offset)), row


def _fields(pieces: _Pieces, segment: int, sequence: int) -> tf.RaggedTensor:
    """``(N, (n), 5)``: id, segment id, start, end, sequence id of every piece."""
    ids = pieces.ids.flat_values
    values = tf.stack([ids, tf.fill(tf.shape(ids), segment), pieces.starts.flat_values, pieces.ends.flat_values,
                       tf.fill(tf.shape(ids), sequence)], axis=1)
    return tf.RaggedTensor.from_row_splits(values, pieces.ids.row_splits, validate=False)


def _special_column(rows: tf.Tensor, token_id: int, segment: int) -> tf.RaggedTensor:
    """``(N, 1, 5)`` fields of one special token per row (offsets 0, 0; sequence id -1)."""
    column = tf.tile(tf.constant([[[token_id, segment, 0, 0, SPECIAL]]], tf.int32), tf.stack([rows, 1, 1]))
    return tf.RaggedTensor.from_tensor(column, ragged_rank=1)


class BertTokenizer(tf.Module):
    """WordPiece tokenizer with Hugging Face ``BertTokenizerFast`` semantics, in TensorFlow ops.

    Args:
        vocabulary: tokens in id order (the lines of ``vocab.txt``).
        lowercase: ``do_lower_case``.
        strip_accents: ``None`` follows ``lowercase`` (Hugging Face's rule).
        tokenize_chinese_chars: make each CJK ideograph its own word.
        model_max_length: default ``max_length`` for :meth:`encode`, special tokens included.
        max_input_chars_per_word: longer words become ``unk_token`` (100, as Hugging Face).
        decoder_cleanup: the ``cleanup`` of ``tokenizer.json``'s WordPiece decoder (``" ."`` → ``"."`` ...
            when tokens are joined back into words, as token classification does).
    """

    def __init__(self, vocabulary: list[str], *, lowercase: bool = True, strip_accents: bool | None = None,
                 tokenize_chinese_chars: bool = True, model_max_length: int = 512,
                 unk_token: str = "[UNK]", cls_token: str = "[CLS]", sep_token: str = "[SEP]",
                 pad_token: str = "[PAD]", mask_token: str = "[MASK]", max_input_chars_per_word: int = 100,
                 decoder_cleanup: bool = True, name: str | None = None):
        super().__init__(name=name)
        # A tuple: tf.Module would wrap a list in a tracked ListWrapper, element by element (~0.5 s of
        # a pipeline's construction for 30,522 tokens, measured); the tuple is left as it is.
        self.vocabulary = tuple(vocabulary)
        index = {token: i for i, token in enumerate(self.vocabulary)}
        missing = [t for t in (unk_token, cls_token, sep_token, pad_token) if t not in index]
        if missing:
            raise TokenizerError(f"the vocabulary ({len(self.vocabulary)} tokens) lacks the special tokens {missing}")
        if model_max_length < 3:
            raise TokenizerError(f"model_max_length={model_max_length} leaves no room for text")
        self.unk_token, self.cls_token, self.sep_token, self.pad_token = unk_token, cls_token, sep_token, pad_token
        self.mask_token = mask_token
        self.unk_id, self.cls_id, self.sep_id, self.pad_id = (index[t] for t in (unk_token, cls_token, sep_token, pad_token))
        self.model_max_length = int(model_max_length)
        self.max_input_chars_per_word = int(max_input_chars_per_word)
        self.decoder_cleanup = bool(decoder_cleanup)
        # Special tokens typed in the text are matched literally, as Hugging Face's added tokens are.
        self._special_ids = [index[t] for t in (pad_token, unk_token, cls_token, sep_token, mask_token) if t in index]
        self.normalizer = BertNormalizer(lowercase=lowercase, strip_accents=strip_accents,
                                         tokenize_chinese_chars=tokenize_chinese_chars,
                                         special_tokens=tuple(self.vocabulary[i] for i in self._special_ids))
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=list(self.vocabulary), suffix_indicator="##", max_bytes_per_word=4 * self.max_input_chars_per_word + 4,
            token_out_type=tf.int32, unknown_token=unk_token, no_pretokenization=True,
        )

    # --- construction --------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, folder: str | pathlib.Path, *, max_position_embeddings: int | None = None) -> "BertTokenizer":
        """Build the tokenizer of a Hugging Face checkpoint folder (``vocab.txt`` + ``tokenizer_config.json``).

        Missing ``do_lower_case`` means lower-casing, as in Hugging Face; a missing or unbounded
        ``model_max_length`` falls back to ``max_position_embeddings``. Without ``vocab.txt`` the
        vocabulary is read from ``tokenizer.json``.
        """
        folder = pathlib.Path(folder)
        config = _read_json(folder / "tokenizer_config.json") if (folder / "tokenizer_config.json").is_file() else {}
        special_map = _read_json(folder / "special_tokens_map.json") if (folder / "special_tokens_map.json").is_file() else {}
        vocabulary = _read_vocabulary(folder)
        lowercase = config.get("do_lower_case")
        if lowercase is None:
            lowercase = True
            if any(t[:1].isupper() for t in vocabulary[1000:3000]):
                logger.warning("%s: tokenizer_config.json has no do_lower_case; lower-casing as Hugging Face "
                               "does, although the vocabulary looks cased. Set do_lower_case explicitly.", folder)
        max_length = config.get("model_max_length")
        if not isinstance(max_length, int) or max_length > 1_000_000:
            max_length = max_position_embeddings or 512
        if max_position_embeddings:
            max_length = min(max_length, max_position_embeddings)

        def special(key, default):
            value = config.get(key, special_map.get(key, default))
            return value.get("content", default) if isinstance(value, dict) else (value or default)

        return cls(
            vocabulary, lowercase=bool(lowercase), strip_accents=config.get("strip_accents"),
            tokenize_chinese_chars=bool(config.get("tokenize_chinese_chars", True)), model_max_length=max_length,
            unk_token=special("unk_token", "[UNK]"), cls_token=special("cls_token", "[CLS]"),
            sep_token=special("sep_token", "[SEP]"), pad_token=special("pad_token", "[PAD]"),
            mask_token=special("mask_token", "[MASK]"), decoder_cleanup=_decoder_cleanup(folder),
        )

    # --- tokenization ------------------------------------------------------------------------
    def tokenize(self, texts: tf.Tensor) -> _Pieces:
        """Word pieces of ``texts`` ``(B,)`` without special tokens, with character offsets."""
        words = self.normalizer.split_words(texts)
        num_chars = tf.cast(words.char_positions.row_lengths(), tf.int32)  # (W,)
        # Words whose id is known without WordPiece: literal special tokens, and words over the
        # length limit (one [UNK]). They go through WordPiece as the unk token, a single vocab entry.
        forced = tf.where(words.special >= 0, tf.gather(tf.constant(self._special_ids or [0], tf.int32),
                                                        tf.maximum(words.special, 0)), -1)
        forced = tf.where((forced < 0) & (num_chars > self.max_input_chars_per_word), self.unk_id, forced)
        word_strings = tf.where(forced >= 0, self.unk_token, words.words)
        ids, byte_starts, byte_ends = self._wordpiece.tokenize_with_offsets(word_strings)  # (W, (p))
        piece_word = tf.cast(ids.value_rowids(), tf.int32)  # (P,)
        piece_text = tf.gather(word_strings, piece_word)
        zeros = tf.zeros_like(piece_word)
        char_start = tf.strings.length(tf.strings.substr(piece_text, zeros, tf.cast(byte_starts.flat_values, tf.int32)),
                                       unit="UTF8_CHAR")
        char_end = tf.strings.length(tf.strings.substr(piece_text, zeros, tf.cast(byte_ends.flat_values, tf.int32)),
                                     unit="UTF8_CHAR")
        piece_forced = tf.gather(forced, piece_word)
        whole = piece_forced >= 0
        piece_ids = tf.where(whole, piece_forced, ids.flat_values)
        char_start = tf.where(whole, 0, char_start)
        char_end = tf.where(whole, tf.gather(num_chars, piece_word), char_end)
        # Map character indices within the normalised word back to the original text.
        base = tf.gather(tf.cast(words.char_positions.row_starts(), tf.int32), piece_word)
        positions = words.char_positions.flat_values
        starts = tf.gather(positions, base + char_start)
        ends = tf.gather(positions, base + char_end - 1) + 1
        text_of_piece = tf.gather(words.text_index, piece_word)
        nrows = tf.cast(words.num_texts, tf.int64)

        def per_text(values):
            return tf.RaggedTensor.from_value_rowids(values, tf.cast(text_of_piece, tf.int64), nrows=nrows, validate=False)

        return _Pieces(per_text(piece_ids), per_text(starts), per_text(ends))

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
        budget = max_length - (3 if is_pair else 2)
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

    # --- helpers -------------------------------------------------------------------------------
    def _assemble(self, first: _Pieces, second: _Pieces | None, sample_index: tf.Tensor) -> Encoding:
        """``[CLS] first [SEP] (second [SEP])`` with segment ids, offsets and sequence ids."""
        rows = tf.shape(sample_index)[0]
        parts = [_special_column(rows, self.cls_id, 0), _fields(first, 0, FIRST), _special_column(rows, self.sep_id, 0)]
        if second is not None:
            parts += [_fields(second, 1, SECOND), _special_column(rows, self.sep_id, 1)]
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

    def convert_ids_to_tokens(self, ids) -> list[str]:
        return [self.vocabulary[int(i)] for i in ids]


def _check_stride(stride: int, budget: int) -> None:
    if not 0 <= stride < budget:
        raise TokenizerError(f"stride={stride} must be at least 0 and less than the {budget} tokens a window holds")


def _decoder_cleanup(folder: pathlib.Path) -> bool:
    """``tokenizer.json``'s WordPiece decoder ``cleanup`` (True when absent: what transformers' converter writes)."""
    path = folder / "tokenizer.json"
    decoder = (_read_json(path).get("decoder") or {}) if path.is_file() else {}
    return bool(decoder.get("cleanup", True))


def _read_json(path: pathlib.Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TokenizerError(f"{path}: not a readable JSON file ({err})") from None
    if not isinstance(data, dict):
        raise TokenizerError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _read_vocabulary(folder: pathlib.Path) -> list[str]:
    vocab_file, tokenizer_file = folder / "vocab.txt", folder / "tokenizer.json"
    if vocab_file.is_file():
        try:
            lines = vocab_file.read_text(encoding="utf-8").split("\n")
        except UnicodeDecodeError as err:
            raise TokenizerError(f"{vocab_file}: not UTF-8 ({err})") from None
        if lines and lines[-1] == "":
            lines.pop()
        # HF strips the trailing newline of each line only (tokens may contain other spaces).
        vocabulary = [line.rstrip("\r") for line in lines]
    elif tokenizer_file.is_file():
        model = _read_json(tokenizer_file).get("model", {})
        vocab = model.get("vocab")
        if model.get("type") != "WordPiece" or not isinstance(vocab, dict):
            raise TokenizerError(f"{tokenizer_file}: not a WordPiece tokenizer (model type {model.get('type')!r})")
        vocabulary = [token for token, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    else:
        raise CheckpointNotFoundError(f"{folder}: no vocab.txt or tokenizer.json, so there is no tokenizer")
    if not vocabulary:
        raise TokenizerError(f"{folder}: the vocabulary is empty")
    duplicates = len(vocabulary) - len(set(vocabulary))
    if duplicates:
        logger.warning("%s: the vocabulary repeats %d tokens; the last id of each wins, as in Hugging Face",
                       folder, duplicates)
    return vocabulary

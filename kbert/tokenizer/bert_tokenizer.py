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

import logging
import pathlib

import tensorflow as tf
import tensorflow_text as tf_text

from kbert.errors import CheckpointNotFoundError, TokenizerError
from kbert.tokenizer.normalizer import BertNormalizer
from kbert.tokenizer.subword import (FIRST, SECOND, SPECIAL, Encoding, Pieces, SpecialLayout,  # noqa: F401
                                     SubwordTokenizer, _check_stride, _Pieces)  # re-exported
from kbert.tokenizer.subword import check_special_tokens
from kbert.tokenizer.subword import read_json as _read_json

logger = logging.getLogger(__name__)


class BertTokenizer(SubwordTokenizer):
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

    continuing_subword_prefix = "##"  # WordPiece marks the pieces after a word's first: a "word-aware" tokenizer
    split_words_prefix = ""  # pre-split words are tokenized joined by spaces, nothing before the first
    takes_split_words = True  # is_split_into_words works as it is

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
        check_special_tokens(index, (unk_token, cls_token, sep_token, pad_token), model_max_length)
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
    def tokenize(self, texts: tf.Tensor) -> Pieces:
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

        return Pieces(per_text(piece_ids), per_text(starts), per_text(ends))

    def split_words(self, texts: tf.Tensor):
        return self.normalizer.split_words(texts)

    def convert_tokens_to_string(self, tokens) -> str:
        """WordPiece's decoder: ``##`` pieces glued to the piece before, with its clean-up."""
        from kbert.tokenizer.wordpiece_decoder import wordpiece_decode

        return wordpiece_decode(tokens, self.continuing_subword_prefix, self.decoder_cleanup)

    def join_tokens(self, token_ids, group, num_groups):
        raise NotImplementedError("WordPiece tokens are joined by the word-aware path (continuing_subword_prefix)")

    def special_layout(self, is_pair: bool) -> SpecialLayout:
        """``[CLS] first [SEP]`` and ``[CLS] first [SEP] second [SEP]`` (second text and its [SEP]: segment 1)."""
        return SpecialLayout(before=((self.cls_id, 0),), after_first=((self.sep_id, 0),),
                             after_second=((self.sep_id, 1),), second_segment=1)


def _decoder_cleanup(folder: pathlib.Path) -> bool:
    """``tokenizer.json``'s WordPiece decoder ``cleanup`` (True when absent: what transformers' converter writes)."""
    path = folder / "tokenizer.json"
    decoder = (_read_json(path).get("decoder") or {}) if path.is_file() else {}
    return bool(decoder.get("cleanup", True))


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

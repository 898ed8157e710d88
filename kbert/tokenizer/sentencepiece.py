"""SentencePiece tokenizers (XLM-RoBERTa, ALBERT) in TensorFlow ops: Hugging Face fast-tokenizer ids and offsets.

The pieces come from tensorflow-text's ``SentencepieceTokenizer`` (the SentencePiece library itself, as an op:
exact ids, fast, and it lives in a SavedModel that needs only tensorflow + tensorflow_text). Around it, kbert
does what transformers' fast tokenizers (``XLMRobertaTokenizerFast``, ``AlbertTokenizerFast``: the ``tokenizers``
pipeline converted from the ``.model``) do differently from the SentencePiece library:

    text ─► added tokens (``<mask>``, ``[CLS]`` ... typed literally; kbert.tokenizer.byte_level.AddedTokenMatcher)
         ─► pre-normalisation of ALBERT (`````` → ``"``, strip accents, lower-case), code point by code point with
            the index of the character each one comes from (kbert.tokenizer.normalizer's tables)
         ─► SentencePiece op on each stretch of text between added tokens (its normaliser: the model's
            ``precompiled_charsmap``, extra spaces removed, ``▁`` dummy prefix) ─► ids + UTF-8 byte offsets
         ─► character offsets as ``tokenizers`` aligns them (:func:`_hf_spans`) ─► ``<s> A </s></s> B </s>`` /
            ``[CLS] A [SEP] B [SEP]``

The model proto is rewritten once so that its ids *are* transformers' ids: fairseq's shift for XLM-RoBERTa's
``sentencepiece.bpe.model`` (``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, every other piece +1, ``<mask>``
last), and a proto built from ``tokenizer.json``'s ``Unigram`` vocabulary (scores, ``Precompiled`` charsmap,
``Metaspace``) when a folder has no ``.model`` or has both (transformers reads ``tokenizer.json`` then).

Offsets. The SentencePiece library reports for each piece the bytes from where its first normalised character
came from to where the next piece's came from; ``tokenizers`` reports the characters its normalised characters
are aligned to. They differ where the normaliser joins, drops, expands or inserts characters. kbert rebuilds
``tokenizers``' view (:func:`_hf_spans`): the normalised text is the pieces one after the other, and each
original character stands for 0, 1 or more of its characters (:func:`_normalized_lengths`: removed characters
and composed accents 0, ``½`` 3, all but the *last* space of a collapsed run 0, the dummy-prefix ``▁`` taken by
the character after it); a piece spans the characters its first and last normalised characters come from.
A few corners of ``tokenizers``' grapheme-by-grapheme normaliser are not reproduced (README, limitations).

Example:
    >>> import tensorflow as tf
    >>> tok = SentencePieceTokenizer.from_pretrained("tests/fixtures/tokenizers/sp-albert", model_file="spiece.model")
    >>> enc = tok.encode(tf.constant(["Ｆull  ``ﬁne''"]), tf.constant(["Ça va"]))
    >>> tok.convert_ids_to_tokens(enc.token_ids[0].numpy())
    ['[CLS]', '▁full', '▁', '<unk>', 'f', 'ine', '<unk>', '[SEP]', '▁ca', '▁', 'v', 'a', '[SEP]']
    >>> enc.starts[0].numpy().tolist(), enc.ends[0].numpy().tolist(), enc.segment_ids[0].numpy().tolist()
    ([0, 0, 5, 7, 8, 8, 12, 0, 0, 2, 3, 4, 0], [0, 4, 6, 8, 9, 11, 13, 0, 2, 3, 4, 5, 0], [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import logging
import pathlib
import struct
import unicodedata
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from kbert.errors import CheckpointNotFoundError, TokenizerError
from kbert.tokenizer import ragged
from kbert.tokenizer.byte_level import AddedToken, AddedTokenMatcher
from kbert.tokenizer.normalizer import _CodePointMapping, _load_tables
from kbert.tokenizer.subword import (Pieces, SpecialLayout, SubwordTokenizer, TokenizerFolder, check_special_tokens,
                                     read_json)
from kbert.tokenizer.tracing import EagerThenTraced

logger = logging.getLogger(__name__)

SPACE = "▁"  # U+2581, SentencePiece's (and Metaspace's) stand-in for a space
TEMPLATES = ("two_separators", "token_types")  # <s> A </s></s> B </s> | [CLS] A [SEP] B [SEP], B typed 1
# SentencePiece ModelProto.SentencePiece.Type
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _BYTE = 1, 2, 3, 4, 6
_BACKTICK, _QUOTE, _DOUBLE_QUOTE = 0x60, 0x27, 0x22
_COMPOSING_FROM = 0x300  # no code point below U+0300 is ever composed into the character before it (NFKC)


@dataclasses.dataclass(frozen=True)
class PreNormalizer:
    """What ``tokenizers`` does before the charsmap for ALBERT: `````` and ``''`` → ``"``, accents stripped (NFKD
    and non-spacing marks dropped), lower-casing. XLM-RoBERTa has none of it."""

    replace_quotes: bool = False
    strip_accents: bool = False
    lowercase: bool = False

    @property
    def active(self) -> bool:
        return self.replace_quotes or self.strip_accents or self.lowercase


class SentencePieceTokenizer(SubwordTokenizer):
    """SentencePiece tokenizer with transformers' fast-tokenizer semantics, in TensorFlow ops.

    Args:
        model_proto: a serialized SentencePiece ``ModelProto`` whose ids are transformers' ids (see
            :func:`proto_from_model_file`, :func:`proto_from_tokenizer_json`).
        template: ``"two_separators"`` (``<s> A </s></s> B </s>``, one token type) or ``"token_types"``
            (``[CLS] A [SEP] B [SEP]``,
            ``B`` and its ``[SEP]`` type 1).
        cls_token, sep_token, pad_token, unk_token, mask_token: special tokens.
        added_tokens: tokens matched literally in the text; default: the special tokens (the mask with ``lstrip``,
            matched in the normalised text when ``mask_normalized``, as XLM-RoBERTa's ``<mask>``; DeBERTa-v2's
            ``added_tokens="deberta"``: no lstrip, the unknown token matched in the normalised text, as its slow
            tokenizer's conversion makes them).
        pre_normalizer: ALBERT's normalisation before the charsmap.
        strip_right: trailing white space is dropped (``tokenizers``' ``Strip``, as the converter of XLM-RoBERTa
            writes it); ALBERT's normaliser has none: trailing spaces become one last ``▁`` there.
        strip_left: leading white space is dropped too (DeBERTa-v2's ``Strip()``): the first piece starts at the
            first character after it.
        model_max_length: default ``max_length`` of :meth:`encode`, special tokens included.
    """

    decoder_cleanup = False
    continuing_subword_prefix = None  # words are told by ▁ (and transformers' space heuristic), not by "##"
    split_words_prefix = ""  # Metaspace puts ▁ before every pre-split word itself

    def __init__(self, model_proto: bytes, *, template: str = "token_types", cls_token: str = "[CLS]", sep_token: str = "[SEP]",
                 pad_token: str = "<pad>", unk_token: str = "<unk>", mask_token: str = "[MASK]",
                 added_tokens: Sequence[AddedToken] | str | None = None, pre_normalizer: PreNormalizer = PreNormalizer(),
                 mask_normalized: bool = False, strip_right: bool = True, model_max_length: int = 512,
                 strip_left: bool = False, name: str | None = None):
        super().__init__(name=name)
        import tensorflow_text as tf_text  # registers the SentencePiece ops (also needed to load an export)

        if template not in TEMPLATES:
            raise TokenizerError(f"template must be one of {TEMPLATES}, got {template!r}")
        proto = _parse(model_proto)
        self.vocabulary = tuple(p.piece for p in proto.pieces)
        index = {piece: i for i, piece in enumerate(self.vocabulary)}
        check_special_tokens(index, (cls_token, sep_token, pad_token, unk_token), model_max_length,
                             "SentencePiece vocabulary")
        self.template = template
        self.cls_token, self.sep_token, self.pad_token, self.unk_token = cls_token, sep_token, pad_token, unk_token
        self.mask_token = mask_token
        self.cls_id, self.sep_id, self.pad_id, self.unk_id = (index[t] for t in (cls_token, sep_token, pad_token, unk_token))
        self.mask_id = index.get(mask_token)
        self.model_max_length = int(model_max_length)
        self.pre_normalizer = pre_normalizer
        self.strip_right = bool(strip_right)
        self.strip_left = bool(strip_left)
        if added_tokens is None:
            added_tokens = [AddedToken(t, index[t], lstrip=t == mask_token, normalized=t == mask_token and mask_normalized)
                            for t in dict.fromkeys((cls_token, sep_token, pad_token, unk_token, mask_token)) if t in index]
        elif added_tokens == "deberta":
            added_tokens = [AddedToken(t, index[t], normalized=t == unk_token)
                            for t in dict.fromkeys((pad_token, cls_token, sep_token, unk_token, mask_token)) if t in index]
        self.added_tokens = AddedTokenMatcher(list(added_tokens), name="added_tokens")
        serialized = proto.SerializeToString()
        # tensorflow-text's op keeps its model in a kernel-owned resource shared by node name: in a loaded
        # SavedModel two SentencePiece tokenizers (two exports' models in one graph) would both get the first one's
        # model. A name per model keeps them apart (test_a_saved_model_tokenizes_alike_in_bare_tensorflow).
        self.sentencepiece = tf_text.SentencepieceTokenizer(
            serialized, out_type=tf.int32, name=f"sentencepiece_{hashlib.sha1(serialized).hexdigest()[:16]}")
        self.space_id = index.get(SPACE, self.unk_id)
        mapped = single_characters(proto.normalizer_spec.precompiled_charsmap)
        spaces = {cp for cp, text in mapped.items() if text and not text.strip(" ")} | {32}
        changed = {cp: len(text) for cp, text in mapped.items() if len(text) != 1 and cp not in spaces}
        self._spaces = tf.constant(sorted(spaces), tf.int32)
        self._white_space = tf.constant(sorted(_WHITE_SPACE), tf.int32)
        self._lengths = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(changed) or [-1], tf.int32), tf.constant(list(changed.values()) or [1], tf.int32)),
            default_value=1)
        self._compositions = tf.constant(sorted(_composition_pairs()), tf.int64)
        self._starts_with_space = tf.constant([p.startswith(SPACE) for p in self.vocabulary])
        self._piece_lengths = tf.constant([len(p) for p in self.vocabulary], tf.int32)
        tokens = self.added_tokens.tokens
        self._normalized_lstrip = tf.constant([t.normalized and t.lstrip for t in tokens] or [False])
        self._normalized = tf.constant([t.normalized for t in tokens] or [False])
        self.added_tokens_ids = tf.constant([t.id for t in tokens] or [0], tf.int32)
        self._text = tf.constant([p.replace(SPACE, " ") for p in self.vocabulary])
        self._mapping = (_CodePointMapping(_load_tables()["mappings"]["lowercase"], name="lowercase")
                         if pre_normalizer.lowercase else None)
        self._marks = tf.constant(_marks() if pre_normalizer.strip_accents else [-1], tf.int32)
        self._runner = EagerThenTraced(self._tokenize)

    @property
    def lowercase(self) -> bool:
        return self.pre_normalizer.lowercase

    # --- construction --------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, folder: str | pathlib.Path, *, model_file: str, fairseq_ids: bool = False,
                        template: str = "token_types", cls_token: str = "[CLS]", sep_token: str = "[SEP]",
                        pad_token: str = "<pad>", unk_token: str = "<unk>", mask_token: str = "[MASK]",
                        lowercase: bool = False, keep_accents: bool = True, replace_quotes: bool = False,
                        mask_normalized: bool = False, strip_right: bool = True, max_position_embeddings: int | None = None, positions_offset: int = 0,
                        strip_left: bool = False, append_mask: bool = False, added_tokens: str | None = None
                        ) -> "SentencePieceTokenizer":
        """The tokenizer of a Hugging Face folder, as transformers' fast tokenizer decides it.

        ``tokenizer.json`` wins when there is one (its vocabulary, normaliser, added tokens and template);
        else ``model_file`` (``sentencepiece.bpe.model`` with ``fairseq_ids``, ``spiece.model``) with the family's
        defaults given here, which ``tokenizer_config.json`` (``do_lower_case``, ``keep_accents``, special tokens,
        ``model_max_length``) overrides. ``model_max_length`` is at most ``max_position_embeddings -
        positions_offset`` (RoBERTa-style positions start after the padding id). ``append_mask``: a ``mask_token``
        the ``.model`` lacks gets the next id (DeBERTa-v3's ``[MASK]``, as its slow tokenizer adds it);
        ``added_tokens``: ``"deberta"`` for DeBERTa-v2's (see the class), from a ``.model`` only.
        """
        files = TokenizerFolder.read(folder)
        folder, config = files.path, files.config
        names = files.special_tokens({"cls_token": cls_token, "sep_token": sep_token, "pad_token": pad_token,
                                      "unk_token": unk_token, "mask_token": mask_token})
        if (folder / "tokenizer.json").is_file():
            proto, options = proto_from_tokenizer_json(folder / "tokenizer.json")
            names.update(options.pop("names"))
        elif (folder / model_file).is_file():
            proto = proto_from_model_file(folder / model_file, fairseq_ids=fairseq_ids, mask_token=names["mask_token"],
                                          append_mask=append_mask)
            lowercase = bool(config.get("do_lower_case", lowercase))
            keep_accents = bool(config.get("keep_accents", keep_accents))
            options = {"template": template, "added_tokens": added_tokens, "mask_normalized": mask_normalized,
                       "strip_right": strip_right, "strip_left": strip_left,
                       "pre_normalizer": PreNormalizer(
                replace_quotes=replace_quotes, strip_accents=not keep_accents, lowercase=lowercase)}
        else:
            raise CheckpointNotFoundError(f"{folder}: no tokenizer.json and no {model_file}, so there is no "
                                          "SentencePiece tokenizer")
        positions = int(max_position_embeddings) - positions_offset if max_position_embeddings else None
        max_length = files.model_max_length(positions)
        return cls(proto.SerializeToString(), model_max_length=max_length, **names, **options)

    # --- tokenization ------------------------------------------------------------------------
    def tokenize(self, texts: tf.Tensor) -> Pieces:
        """Pieces of ``texts`` ``(B,)`` without special tokens, with transformers' character offsets."""
        texts = tf.convert_to_tensor(texts, tf.string)
        if tf.executing_eagerly() and texts.shape.rank != 1:
            return Pieces(**self._tokenize(texts))
        return Pieces(**self._runner(texts))

    def _tokenize(self, texts: tf.Tensor) -> dict[str, tf.RaggedTensor]:
        cps = tf.strings.unicode_decode(texts, "UTF-8", errors="replace")  # (B, (n))
        x = cps.flat_values
        splits = tf.cast(cps.row_splits, tf.int32)
        row = ragged.row_ids(splits)
        pos = tf.range(tf.shape(x)[0]) - tf.gather(splits, row)
        token, token_start = self.added_tokens(x, row, _member(x, self._white_space))
        added = token >= 0
        # Units: the stretches of text between added tokens, and each added token; in text order.
        previous_added = _shifted(added, False)
        unit_start = tf.equal(pos, 0) | token_start | (~added & previous_added)
        unit = tf.cumsum(tf.cast(unit_start, tf.int32)) - 1
        num_units = tf.reduce_sum(tf.cast(unit_start, tf.int32))
        first_char = tf.cast(tf.reshape(tf.where(unit_start), [-1]), tf.int32)  # (U,)
        unit_row, unit_token = tf.gather(row, first_char), tf.gather(token, first_char)
        unit_limit = tf.concat([first_char, tf.shape(x)], axis=0)[1:]  # one past the unit's last character

        # Stretches of text: pre-normalised, trailing white space dropped when tokenizers strips it, one op call.
        white = _member(x, self._white_space)
        space = self._is_space(x)
        removed = tf.equal(self._lengths.lookup(x), 0) & ~space
        marks = _member(x, self._marks)  # stripped with the accents (ALBERT); else no code point is in _marks
        tail = _trailing(x, unit, white | space | removed | marks) & ~added
        soft_tail, lead = tail, tf.zeros_like(added)  # soft_tail: what may end in one last ▁ (no Strip after it)
        if self.strip_left:
            # DeBERTa's Strip() runs first, on each call's raw text (the text between added tokens matched in the raw
            # text): it takes white space off both ends; what the charsmap then makes spaces ends in one last ▁.
            opens, closes = self._call_ends(pos, first_char, unit_token, num_units)
            lead = _leading(x, unit, white) & tf.gather(opens, unit) & ~added
            hard_tail = _trailing(x, unit, white) & tf.gather(closes, unit)
            soft_tail = _trailing(x, unit, space | removed | marks | hard_tail) & ~hard_tail & ~lead & ~added
            keep = ~added & ~lead & ~hard_tail
        else:
            keep = ~added & ~tail if self.strip_right else ~added
        keep = tf.reshape(tf.where(keep), [-1])
        tx, tpos, tunit = (tf.gather(t, keep) for t in (x, pos, unit))
        if self.pre_normalizer.active:
            tx, tpos, tunit = self._pre_normalize(tx, tpos, tunit)
        seg_cps = tf.RaggedTensor.from_value_rowids(tx, tunit, nrows=num_units, validate=False)
        ids, byte_starts, _ = self.sentencepiece.tokenize_with_offsets(tf.strings.unicode_encode(seg_cps, "UTF-8"))
        spans = _hf_spans(self, tx, tunit, seg_cps, ids, byte_starts)
        last_tx = tf.maximum(tf.size(tpos) - 1, 0)
        sp_unit = tf.cast(ids.value_rowids(), tf.int32)
        sp_order = 1 + tf.range(tf.size(ids.flat_values)) - tf.gather(tf.cast(ids.row_starts(), tf.int32), sp_unit)
        sp_word = tf.equal(sp_order, 1) | tf.gather(self._starts_with_space, ids.flat_values)
        parts = [(ids.flat_values, tf.gather(tpos, tf.minimum(spans.start, last_tx)),
                  tf.gather(tpos, tf.minimum(spans.end - 1, last_tx)) + 1, sp_unit, sp_order, sp_word)]

        # Each added token: one piece over its characters (swallowed spaces included). One matched in the
        # normalised text (``<mask>``) swallows one space on its left (lstrip), but a run of two or more became
        # ``▁`` there, which stays a piece of its own: the run's last space.
        added_unit = unit_token >= 0
        token_index = tf.maximum(unit_token, 0)
        units = tf.range(num_units)
        content_start = tf.math.unsorted_segment_min(  # the token's first character (after swallowed spaces)
            tf.where(white, tf.size(x), tf.range(tf.size(x))), unit, num_units)
        content_start = tf.minimum(content_start, unit_limit - 1)
        split_space = added_unit & tf.gather(self._normalized_lstrip, token_index) & (content_start - first_char >= 2)
        token_first = tf.where(split_space, content_start, first_char)
        ones = tf.ones_like(units)
        parts.append(_select(added_unit, tf.gather(self.added_tokens_ids, token_index), tf.gather(pos, token_first),
                             tf.gather(pos, unit_limit - 1) + 1, units, ones, tf.ones_like(added_unit)))
        space_pos = tf.gather(pos, tf.maximum(content_start - 1, 0))
        parts.append(_select(split_space, tf.fill([num_units], self.space_id), space_pos, space_pos + 1, units,
                             0 * ones, tf.ones_like(added_unit)))
        if not self.strip_right or self.strip_left:
            # Without tokenizers' Strip (ALBERT), or with one before the charsmap (DeBERTa), trailing spaces are one
            # last ▁: at the run's last space.
            last_space = tf.math.unsorted_segment_max(
                tf.where(soft_tail & space & ~_crlf(x, unit), tf.range(tf.size(x)), -1), unit, num_units)
            has_space = ~added_unit & (last_space >= 0)
            space_at = tf.gather(pos, tf.maximum(last_space, 0))
            parts.append(_select(has_space, tf.fill([num_units], self.space_id), space_at, space_at + 1, units,
                                 ones * (1 << 20), tf.ones_like(added_unit)))

        flat_ids, flat_starts, flat_ends, piece_unit, order, word_start = (
            tf.concat([part[k] for part in parts], axis=0) for k in range(6))
        sort = tf.argsort(tf.cast(piece_unit, tf.int64) * (1 << 21) + tf.cast(order, tf.int64), stable=True)
        flat_ids, flat_starts, flat_ends, piece_unit, word_start = (
            tf.gather(t, sort) for t in (flat_ids, flat_starts, flat_ends, piece_unit, word_start))
        shift = tf.gather(self._leading_removed_shift(x, pos, unit, num_units, first_char, unit_token, lead), piece_unit)
        flat_starts, flat_ends = tf.maximum(flat_starts - shift, 0), tf.maximum(flat_ends - shift, 0)
        text_splits = ragged.splits_of_sorted_rows(tf.gather(unit_row, piece_unit), tf.shape(texts)[0])

        def per_text(values):
            return tf.RaggedTensor.from_row_splits(values, text_splits, validate=False)

        return {"ids": per_text(flat_ids), "starts": per_text(flat_starts), "ends": per_text(flat_ends),
                "word_starts": per_text(word_start)}

    def _call_ends(self, pos, first_char, unit_token, num_units):
        """``(U,)`` each: whether a unit of text opens a normaliser call (the text's start, or after an added token
        matched in the raw text) and whether it closes one (before such a token, or at the text's end)."""
        raw_token = (unit_token >= 0) & ~tf.gather(self._normalized, tf.maximum(unit_token, 0))
        row_start = tf.equal(tf.gather(pos, first_char), 0)
        opens = (row_start | _shifted(raw_token, True)) & (unit_token < 0)
        next_opens_row = tf.concat([row_start[1:], tf.ones([tf.minimum(num_units, 1)], tf.bool)], axis=0)
        next_raw = tf.concat([raw_token[1:], tf.ones([tf.minimum(num_units, 1)], tf.bool)], axis=0)
        return opens, (next_opens_row | next_raw) & (unit_token < 0)

    def _leading_removed_shift(self, x, pos, unit, num_units, first_char, unit_token, stripped=None):
        """``(U,)``: how far ``tokenizers`` shifts the offsets of each unit.

        When the text a normaliser is called on starts with characters the charsmap removes (``\\x0b``, a
        stray combining mark), ``tokenizers``' ``Precompiled`` has no character before them to charge their
        removal to and loses it: every later character of that call is aligned that many characters too early.
        A call spans the text up to the next added token that is matched in the raw text. ``stripped``: leading
        characters a ``Strip`` took off before the charsmap ran (DeBERTa), which it does not count.
        """
        n = tf.size(x)
        removed = tf.equal(self._lengths.lookup(x), 0) & ~self._is_space(x)
        if stripped is None:
            stripped = tf.zeros_like(removed)
        first_kept = tf.math.unsorted_segment_min(tf.where(removed | stripped, n, tf.range(n)), unit, num_units)
        begin = tf.math.unsorted_segment_min(tf.where(stripped, n, tf.range(n)), unit, num_units)
        begin = tf.minimum(tf.maximum(begin, first_char), tf.minimum(first_kept, n))
        leading = tf.maximum(tf.minimum(first_kept, n) - begin, 0)  # (U,)
        raw_token = (unit_token >= 0) & ~tf.gather(self._normalized, tf.maximum(unit_token, 0))
        previous_raw = _shifted(raw_token, True)
        opens_call = (tf.equal(tf.gather(pos, first_char), 0) | previous_raw) & (unit_token < 0)
        call_first = _last_true(opens_call | raw_token)
        return tf.where(raw_token, 0, tf.gather(tf.where(opens_call, leading, 0), tf.maximum(call_first, 0)))

    def _is_space(self, x: tf.Tensor) -> tf.Tensor:
        return _member(x, self._spaces)

    def _pre_normalize(self, x, pos, unit):
        """ALBERT's normalisation before the charsmap, each code point keeping the character it comes from:
        `````` / ``''`` → ``"``; NFKD (tensorflow-text's ICU, with its offsets map) then every mark (category M,
        ``tokenizers``' ``StripAccents``) dropped; lower-casing as Rust's ``to_lowercase`` (kbert's tables)."""
        if self.pre_normalizer.replace_quotes:
            x, pos, unit = _replace_quote_pairs(x, pos, unit)
        if self.pre_normalizer.strip_accents:
            source, x = _nfkd(x)
            pos, unit = tf.gather(pos, source), tf.gather(unit, source)
            keep = tf.reshape(tf.where(~_member(x, self._marks)), [-1])
            x, pos, unit = (tf.gather(t, keep) for t in (x, pos, unit))
        if self._mapping is not None:
            x, source = self._mapping(x)
            pos, unit = tf.gather(pos, source), tf.gather(unit, source)
        return x, pos, unit

    def special_layout(self, is_pair: bool) -> SpecialLayout:
        """``<s> A </s></s> B </s>`` (one segment) or ``[CLS] A [SEP] B [SEP]`` (``B`` and its ``[SEP]``: segment 1)."""
        if self.template == "two_separators":
            after_first = ((self.sep_id, 0), (self.sep_id, 0)) if is_pair else ((self.sep_id, 0),)
            return SpecialLayout(((self.cls_id, 0),), after_first, ((self.sep_id, 0),), 0)
        return SpecialLayout(((self.cls_id, 0),), ((self.sep_id, 0),), ((self.sep_id, 1),), 1)

    # --- words and decoding --------------------------------------------------------------------
    def word_starts(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Where the ``Metaspace`` pre-tokenizer's words start: at each piece that starts with ``▁``, at each
        added token and after it."""
        pieces = self.tokenize(texts)
        return tf.ragged.boolean_mask(pieces.starts, pieces.word_starts)

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """The ``Metaspace`` decoder: ``▁`` → space, the first token's leading space dropped."""
        text = "".join(tokens).replace(SPACE, " ")
        return text[1:] if text.startswith(" ") else text

    def join_tokens(self, token_ids: tf.Tensor, group: tf.Tensor, num_groups: tf.Tensor,
                    unk_texts: tf.Tensor | None = None) -> tf.Tensor:
        """In-graph :meth:`convert_tokens_to_string` of groups of tokens: ``(num_groups,)`` strings; an unknown
        token reads ``unk_texts`` (its text) when given."""
        strings = tf.gather(self._text, token_ids)
        if unk_texts is not None:
            strings = tf.where(tf.equal(token_ids, self.unk_id), unk_texts, strings)
        joined = tf.strings.unsorted_segment_join(strings, group, num_groups)
        return tf.strings.regex_replace(joined, "^ ", "")


# --- offsets ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Spans:
    start: tf.Tensor  # (P,) index into the flat pre-normalised characters
    end: tf.Tensor  # (P,) one past the last character


def _normalized_lengths(tok: "SentencePieceTokenizer", tx: tf.Tensor, tunit: tf.Tensor) -> tf.Tensor:
    """How many characters of the normalised text (``tokenizers``' view) each pre-normalised character becomes.

    The charsmap's own length (0: removed, 2+: ``½`` → ``1⁄2``, ``ﬁ`` → ``fi``); 0 for a combining mark NFKC
    composes into the character before it, for all but the last space of a run (``Replace(" {2,}")`` keeps the
    last; removed characters inside a run do not end it), for the ``\n`` of ``\r\n`` (``tokenizers`` maps the
    grapheme to one space, aligned to the ``\r``).
    """
    n = tf.size(tx)
    length = tok._lengths.lookup(tx)
    previous = _shifted(tx, -1)
    pair = tf.cast(previous, tf.int64) * 0x110000 + tf.cast(tx, tf.int64)
    composed = _member(pair, tok._compositions) & (tx >= _COMPOSING_FROM) & tf.equal(
        _shifted(tunit, -1), tunit)
    length = tf.where(composed, 0, length)
    crlf = _crlf(tx, tunit)
    length = tf.where(crlf, 0, length)
    space = tok._is_space(tx) & ~crlf
    index = tf.range(n)
    # The next character that is not removed, and the next that is neither removed nor a space.
    next_kept = _next_true(tf.concat([(length > 0) | space, [True]], axis=0))
    next_solid = _next_true(tf.concat([(length > 0) & ~space, [True]], axis=0))
    unit_of = tf.concat([tunit, [-1]], axis=0)
    after = tf.gather(next_kept, index + 1)
    space_follows = tf.equal(tf.gather(unit_of, after), tunit) & tf.gather(tf.concat([space, [False]], 0), after)
    solid_follows = tf.equal(tf.gather(unit_of, tf.gather(next_solid, index + 1)), tunit)
    return tf.where(space, tf.where(space_follows | ~solid_follows, 0, 1), length)


def _crlf(tx: tf.Tensor, tunit: tf.Tensor) -> tf.Tensor:
    """The ``\\n`` of each ``\\r\\n``: ``tokenizers`` maps the grapheme to one space, aligned to the ``\\r``."""
    return tf.equal(tx, 10) & tf.equal(_shifted(tx, -1), 13) & tf.equal(_shifted(tunit, -1), tunit)


def _hf_spans(tok: "SentencePieceTokenizer", tx, tunit, seg_cps, ids, byte_starts) -> _Spans:
    """Each piece's characters as ``tokenizers`` aligns them (see the module docstring), as flat indices into
    ``tx`` (the pre-normalised code points of every stretch of text, in order).

    The normalised text is the pieces one after the other (with the dummy-prefix ``▁`` when the stretch does not
    start with a space); :func:`_normalized_lengths` tells which character each normalised position comes from.
    """
    width = 1 + tf.cast(tx >= 0x80, tf.int32) + tf.cast(tx >= 0x800, tf.int32) + tf.cast(tx >= 0x10000, tf.int32)
    char_byte = tf.cumsum(width, exclusive=True)  # where each character starts, all stretches joined
    seg_first = tf.cast(seg_cps.row_starts(), tf.int32)  # (U,)
    seg_limit = tf.cast(seg_cps.row_limits(), tf.int32)
    seg_byte = tf.gather(tf.concat([char_byte, [tf.reduce_sum(width)]], axis=0), seg_first)
    piece_seg = tf.cast(ids.value_rowids(), tf.int32)
    start = tf.searchsorted(char_byte, tf.gather(seg_byte, piece_seg) + tf.cast(byte_starts.flat_values, tf.int32),
                            out_type=tf.int32)  # SentencePiece's first character of each piece

    length = _normalized_lengths(tok, tx, tunit)
    cum = tf.concat([[0], tf.cumsum(length)], axis=0)  # (n + 1,) normalised position of each character
    first_kept = tf.gather(_next_true(tf.concat([length > 0, [True]], 0)),
                           seg_first)  # (U,)
    dummy = tf.cast((first_kept < seg_limit) & ~tf.gather(tf.concat([tok._is_space(tx), [True]], 0), first_kept),
                    tf.int32)  # (U,) 1: SentencePiece's dummy ▁ opens the stretch

    piece_len = tf.gather(tok._piece_lengths, ids.flat_values)
    is_unk = tf.equal(ids.flat_values, tok.unk_id)
    seg_dummy = tf.gather(dummy, piece_seg)
    seg_base = tf.gather(tf.gather(cum, seg_first), piece_seg)
    # Where each piece starts in its stretch's normalised text: the lengths of the pieces before it, except that
    # an unknown piece's length is not its string's: it ends where the next piece's first character starts.
    next_start = tf.concat([start, [0]], axis=0)[1:]
    last_of_seg = tf.not_equal(tf.concat([piece_seg, [-1]], axis=0)[1:], piece_seg)
    next_start = tf.where(last_of_seg, tf.gather(seg_limit, piece_seg), next_start)
    unk_end = tf.gather(cum, next_start) - seg_base + seg_dummy  # (P,) meaningful for unknown pieces
    known = tf.where(is_unk, 0, piece_len)
    running = tf.cumsum(known, exclusive=True)
    seg_running = tf.gather(tf.concat([running, [tf.reduce_sum(known)]], 0), tf.cast(ids.row_starts(), tf.int32))
    total = running - tf.gather(seg_running, piece_seg)  # known lengths before each piece, in its stretch
    last_unk = _shifted(_last_true(is_unk), -1)  # the last unknown before
    last_unk = tf.where(tf.equal(tf.gather(piece_seg, tf.maximum(last_unk, 0)), piece_seg), last_unk, -1)
    offset_in_seg = total
    for _ in range(2):  # an unknown piece is at least one character long: a second pass moves what follows it
        unk_end = tf.maximum(unk_end, offset_in_seg + 1)
        anchor = tf.gather(unk_end, tf.maximum(last_unk, 0)) - tf.gather(total, tf.maximum(last_unk, 0))
        offset_in_seg = tf.where(last_unk >= 0, anchor + total, total)
    piece_len = tf.where(is_unk, tf.maximum(unk_end - offset_in_seg, 1), piece_len)

    def char_at(k):
        """The pre-normalised character of normalised position ``k`` of each piece's stretch."""
        at = tf.searchsorted(cum[:-1], seg_base + tf.maximum(k - seg_dummy, 0), side="right", out_type=tf.int32) - 1
        return tf.where(k < seg_dummy, tf.gather(tf.concat([first_kept, [0]], 0), piece_seg), at)

    first = char_at(offset_in_seg)
    last = char_at(offset_in_seg + tf.maximum(piece_len, 1) - 1)
    return _Spans(first, tf.maximum(last, first) + 1)


def _trailing(x: tf.Tensor, unit: tf.Tensor, strippable: tf.Tensor) -> tf.Tensor:
    """The characters of each unit after its last non-``strippable`` one."""
    n = tf.size(x)
    index = tf.range(n)
    # The last solid character at or before each position, by unit: a solid one later in the unit ends the tail.
    solid = tf.where(strippable, -1, index)
    last_solid = tf.math.unsorted_segment_max(solid, unit, tf.reduce_max(tf.concat([unit, [-1]], 0)) + 1)
    return strippable & (index > tf.gather(last_solid, unit))


def _leading(x: tf.Tensor, unit: tf.Tensor, strippable: tf.Tensor) -> tf.Tensor:
    """The characters of each unit before its first non-``strippable`` one."""
    index = tf.range(tf.size(x))
    solid = tf.where(strippable, tf.size(x), index)
    first_solid = tf.math.unsorted_segment_min(solid, unit, tf.reduce_max(tf.concat([unit, [-1]], 0)) + 1)
    return strippable & (index < tf.gather(first_solid, unit))


def _shifted(t: tf.Tensor, fill) -> tf.Tensor:
    """``t`` moved one place right, ``fill`` first (``out[j] = t[j - 1]``); empty stays empty."""
    return tf.concat([tf.fill([tf.minimum(tf.size(t), 1)], tf.cast(fill, t.dtype)), t[:-1]], axis=0)


def _select(mask: tf.Tensor, *tensors: tf.Tensor) -> tuple[tf.Tensor, ...]:
    index = tf.reshape(tf.where(mask), [-1])
    return tuple(tf.gather(t, index) for t in tensors)


def _last_true(mask: tf.Tensor) -> tf.Tensor:
    """For each position, the last index at or before it where ``mask`` holds (-1 before the first): a gather,
    not :func:`_cummax`'s log-depth passes over the whole tensor."""
    true_at = tf.cast(tf.reshape(tf.where(mask), [-1]), tf.int32)
    return tf.gather(tf.concat([[-1], true_at], axis=0), tf.cumsum(tf.cast(mask, tf.int32)))


def _next_true(mask: tf.Tensor) -> tf.Tensor:
    """For each position, the first index at or after it where ``mask`` holds (``len(mask)`` after the last)."""
    true_at = tf.cast(tf.reshape(tf.where(mask), [-1]), tf.int32)
    return tf.gather(tf.concat([true_at, tf.size(mask)[None]], axis=0), tf.cumsum(tf.cast(mask, tf.int32),
                                                                                  exclusive=True))


def _cummax(t: tf.Tensor) -> tf.Tensor:
    """Running maximum of a 1-D int32 tensor (log-depth doubling, no Python loop over elements)."""
    n = tf.size(t)
    shift = tf.constant(1)

    def body(t, shift):
        padded = tf.concat([tf.fill([tf.minimum(shift, n)], tf.int32.min), t[:tf.maximum(n - shift, 0)]], axis=0)
        return tf.maximum(t, padded), shift * 2

    t, _ = tf.while_loop(lambda t, shift: shift < n, body, (t, shift),
                         shape_invariants=(tf.TensorShape([None]), shift.shape))
    return t


def _member(x: tf.Tensor, sorted_values: tf.Tensor) -> tf.Tensor:
    """Whether each code point is one of ``sorted_values`` (a sorted int32 vector)."""
    at = tf.minimum(tf.searchsorted(sorted_values, x, side="left"), tf.size(sorted_values) - 1)
    return tf.equal(tf.gather(sorted_values, at), x)


@functools.lru_cache(maxsize=1)
def _composition_pairs() -> tuple[int, ...]:
    """``base * 0x110000 + mark`` of every pair NFC composes into one character (``e`` + U+0301 → ``é``)."""
    pairs = []
    for cp in range(0x110000):
        parts = unicodedata.decomposition(chr(cp)).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            base, mark = int(parts[0], 16), int(parts[1], 16)
            if unicodedata.normalize("NFC", chr(base) + chr(mark)) == chr(cp):
                pairs.append(base * 0x110000 + mark)
    return tuple(pairs)


@functools.lru_cache(maxsize=1)
def _marks() -> tuple[int, ...]:
    """Code points of category M (Mn, Mc, Me): what ``tokenizers``' ``StripAccents`` removes."""
    return tuple(cp for cp in range(0x110000) if unicodedata.category(chr(cp)).startswith("M"))


def _nfkd(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``(source, code points)`` of NFKD(x): ``source[j]`` is the input code point output ``j`` comes from."""
    return tf.cond(tf.size(x) > 0, lambda: _nfkd_of(x), lambda: (tf.zeros([0], tf.int32), x))


def _nfkd_of(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    import tensorflow_text as tf_text

    width = 1 + tf.cast(x >= 0x80, tf.int32) + tf.cast(x >= 0x800, tf.int32) + tf.cast(x >= 0x10000, tf.int32)
    char_byte = tf.cumsum(width, exclusive=True)
    text = tf.strings.unicode_encode(tf.RaggedTensor.from_row_lengths(x, tf.size(x)[None]), "UTF-8")
    normalized, offsets_map = tf_text.normalize_utf8_with_offsets_map(text, "NFKD")
    out, out_starts = tf.strings.unicode_decode_with_offsets(normalized, "UTF-8")
    begin = tf.cast(tf_text.find_source_offsets(offsets_map, out_starts).flat_values, tf.int32)
    end = tf.cast(tf_text.find_source_offsets(offsets_map, out_starts + 1).flat_values, tf.int32)
    # The characters an expansion adds (½ → 1 ⁄ 2) map to an empty stretch of the input: the one before's source.
    source = tf.searchsorted(char_byte, begin, side="right", out_type=tf.int32) - 1
    source = _cummax(tf.where(end > begin, source, -1))
    return tf.maximum(source, 0), out.flat_values


def _replace_quote_pairs(x, pos, unit):
    """`````` → ``"`` and ``''`` → ``"``, leftmost pairs first; the ``"`` keeps the second character's index."""
    n = tf.size(x)
    quote = tf.equal(x, _BACKTICK) | tf.equal(x, _QUOTE)
    same_before = tf.equal(x, _shifted(x, -1)) & tf.equal(unit, _shifted(unit, -1)) & quote
    # Position in the run of equal quote characters: pairs are (0, 1), (2, 3), ...
    run_first = _last_true(~same_before)
    in_run = tf.range(n) - run_first
    second = same_before & tf.equal(in_run % 2, 1)
    first_of_pair = tf.concat([second, [False]], axis=0)[1:]
    x = tf.where(second, _DOUBLE_QUOTE, x)
    keep = tf.reshape(tf.where(~first_of_pair), [-1])
    return tf.gather(x, keep), tf.gather(pos, keep), tf.gather(unit, keep)


# --- the model proto ---------------------------------------------------------------------------
def _parse(model_proto: bytes):
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    try:
        proto.ParseFromString(model_proto)
    except Exception as err:  # protobuf's DecodeError and friends
        raise TokenizerError(f"not a SentencePiece model ({err})") from None
    if not proto.pieces:
        raise TokenizerError("the SentencePiece model has no pieces")
    return proto


def proto_from_model_file(path: pathlib.Path, *, fairseq_ids: bool = False, mask_token: str = "<mask>",
                          append_mask: bool = False):
    """The ``ModelProto`` of a ``.model`` file; with ``fairseq_ids``, renumbered as XLM-RoBERTa's tokenizer does:
    ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, the model's pieces from its id 3 on at id + 1, ``mask_token``
    last. ``append_mask``: ``mask_token`` appended when the model lacks it."""
    try:
        proto = _parse(pathlib.Path(path).read_bytes())
    except TokenizerError as err:
        raise TokenizerError(f"{path}: {err}") from None
    if append_mask and not fairseq_ids and mask_token not in {p.piece for p in proto.pieces}:
        proto.pieces.add(piece=mask_token, type=_CONTROL, score=0.0)
    if not fairseq_ids:
        return proto
    from sentencepiece import sentencepiece_model_pb2

    shifted = sentencepiece_model_pb2.ModelProto()
    shifted.CopyFrom(proto)
    del shifted.pieces[:]
    for piece, kind in (("<s>", _CONTROL), ("<pad>", _CONTROL), ("</s>", _CONTROL), ("<unk>", _UNKNOWN)):
        shifted.pieces.add(piece=piece, type=kind, score=0.0)
    shifted.pieces.extend(proto.pieces[3:])
    shifted.pieces.add(piece=mask_token, type=_CONTROL, score=0.0)
    shifted.trainer_spec.unk_id, shifted.trainer_spec.bos_id, shifted.trainer_spec.eos_id = 3, 0, 2
    shifted.trainer_spec.pad_id = 1
    return shifted


def proto_from_tokenizer_json(path: pathlib.Path):
    """``(ModelProto, options)`` of a ``tokenizer.json`` with a ``Unigram`` model and ``Metaspace`` pre-tokenizer.

    The proto's pieces are the vocabulary in id order with their scores; its normaliser the ``Precompiled``
    charsmap. ``options``: the template, special-token names, added tokens and ALBERT's pre-normalisation.
    """
    from sentencepiece import sentencepiece_model_pb2

    data = read_json(path)
    model = data.get("model") or {}
    if model.get("type") != "Unigram":
        raise TokenizerError(f"{path}: not a SentencePiece Unigram tokenizer (model type {model.get('type')!r})")
    if model.get("byte_fallback"):
        raise TokenizerError(f"{path}: Unigram byte_fallback is not supported by kbert's SentencePiece tokenizer")
    vocab = model.get("vocab")
    if not isinstance(vocab, list) or not vocab:
        raise TokenizerError(f"{path}: model.vocab must be a non-empty list of [piece, score]")
    unk_id = model.get("unk_id")
    charsmap, pre, strip_right, strip_left = b"", {}, False, False
    steps = _normalizers(data.get("normalizer"))
    for step in steps:
        kind = step.get("type")
        if kind == "Precompiled":
            charsmap = base64.b64decode(step.get("precompiled_charsmap") or "")
        elif kind == "Replace" and step.get("pattern", {}).get("String") in ("``", "''"):
            pre["replace_quotes"] = True
        elif kind in ("NFKD", "StripAccents"):
            pre["strip_accents"] = True
        elif kind == "Lowercase":
            pre["lowercase"] = True
        elif kind == "Replace" and step.get("pattern", {}).get("Regex") == " {2,}":
            pass  # SentencePiece's remove_extra_whitespaces
        elif kind == "Strip":
            strip_right, strip_left = bool(step.get("strip_right", True)), bool(step.get("strip_left", True))
        else:
            raise TokenizerError(f"{path}: normalizer {kind!r} is not supported by kbert's SentencePiece tokenizer")
    pre_tokenizer = data.get("pre_tokenizer") or {}
    if pre_tokenizer.get("type") == "Sequence" and len(pre_tokenizer.get("pretokenizers") or []) == 1:
        pre_tokenizer = pre_tokenizer["pretokenizers"][0]  # DeBERTa-v2's converter wraps its Metaspace
    if pre_tokenizer.get("type") != "Metaspace" or pre_tokenizer.get("replacement", SPACE) != SPACE:
        raise TokenizerError(f"{path}: pre_tokenizer {pre_tokenizer.get('type')!r} (only Metaspace with ▁ is supported)")
    prepend = pre_tokenizer.get("prepend_scheme", "always" if pre_tokenizer.get("add_prefix_space", True) else "never")
    if prepend not in ("always", "never"):
        raise TokenizerError(f"{path}: Metaspace prepend_scheme {prepend!r} is not supported (always or never)")
    added = {int(t["id"]): t for t in data.get("added_tokens") or []}
    proto = sentencepiece_model_pb2.ModelProto()
    for i, entry in enumerate(vocab):
        piece, score = entry
        kind = _UNKNOWN if i == unk_id else _CONTROL if added.get(i, {}).get("special") else _NORMAL
        proto.pieces.add(piece=piece, score=float(score), type=kind)
    if unk_id is None:
        raise TokenizerError(f"{path}: the Unigram model has no unk_id")
    proto.trainer_spec.model_type = sentencepiece_model_pb2.TrainerSpec.UNIGRAM
    proto.trainer_spec.unk_id = int(unk_id)
    proto.normalizer_spec.name = "kbert"
    proto.normalizer_spec.precompiled_charsmap = charsmap
    proto.normalizer_spec.add_dummy_prefix = prepend == "always"
    proto.normalizer_spec.remove_extra_whitespaces = True
    proto.normalizer_spec.escape_whitespaces = True
    template, names = _template(data.get("post_processor"), path)
    tokens = [AddedToken(t["content"], i, lstrip=bool(t.get("lstrip")), rstrip=bool(t.get("rstrip")),
                         normalized=bool(t.get("normalized"))) for i, t in sorted(added.items())]
    return proto, {"template": template, "names": names, "added_tokens": tokens, "strip_right": strip_right,
                   "strip_left": strip_left,
                   "pre_normalizer": PreNormalizer(**pre)}


def _normalizers(spec) -> list[dict]:
    if not spec:
        return []
    if spec.get("type") == "Sequence":
        return [step for inner in spec.get("normalizers") or [] for step in _normalizers(inner)]
    return [spec]


def _template(post, path) -> tuple[str, dict]:
    """``("two_separators" | "token_types", {cls_token, sep_token})`` of a ``TemplateProcessing`` post-processor."""
    if not post or post.get("type") != "TemplateProcessing":
        raise TokenizerError(f"{path}: post_processor {post and post.get('type')!r} (only TemplateProcessing is supported)")
    pair = [next(iter(item.items())) for item in post.get("pair") or []]
    kinds = [(kind, value["id"], value.get("type_id", 0)) for kind, value in pair]
    if len(kinds) == 6 and kinds[3][0] == "SpecialToken" and kinds[4][1] == "B":
        template = "two_separators"  # <s> A </s> </s> B </s>
    elif len(kinds) == 5 and kinds[3][1] == "B":
        template = "token_types"  # [CLS] A [SEP] B [SEP]
    else:
        raise TokenizerError(f"{path}: a pair template {[k[1] for k in kinds]} kbert does not know")
    return template, {"cls_token": kinds[0][1], "sep_token": kinds[2][1]}


# --- the charsmap ----------------------------------------------------------------------------
# Unicode White_Space: what ``tokenizers``' Strip and an added token's lstrip/rstrip remove (Rust's is_whitespace).
_WHITE_SPACE = (*range(9, 14), 32, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F,
                0x3000)


def single_characters(charsmap: bytes) -> dict[int, str]:
    """What SentencePiece's ``precompiled_charsmap`` maps each single character to (the characters it changes).

    The charsmap is a Darts double-array trie over UTF-8 keys followed by the strings they map to
    (SentencePiece's ``normalizer.cc``); its keys of one character are at most 4 bytes deep, read here level by
    level for every node at once (~50 ms for XLM-RoBERTa's).
    """
    return dict(_single_characters(bytes(charsmap)))


@functools.lru_cache(maxsize=8)
def _single_characters(charsmap: bytes) -> tuple[tuple[int, str], ...]:
    if len(charsmap) < 4:
        return ()
    (size,) = struct.unpack_from("<I", charsmap, 0)
    units = np.frombuffer(charsmap[4:4 + size], dtype="<u4").astype(np.int64)
    strings = charsmap[4 + size:]
    if units.size == 0:
        return ()

    def offset(unit):
        return (unit >> 10) << ((unit & (1 << 9)) >> 6)

    labels = np.arange(256)
    nodes, keys, found = np.array([offset(units[0])]), [b""], []
    for _ in range(4):  # UTF-8: a character is at most 4 bytes
        child = nodes[:, None] ^ labels[None, :]
        inside = child < len(units)
        child = np.where(inside, child, 0)
        unit = units[child]
        hit = inside & ((unit & ((1 << 31) | 0xFF)) == labels[None, :])
        which, byte = np.nonzero(hit)
        unit = unit[which, byte]
        nodes = child[which, byte] ^ offset(unit)
        keys = [keys[i] + bytes([b]) for i, b in zip(which.tolist(), byte.tolist())]
        for key, node, leaf in zip(keys, nodes.tolist(), ((unit >> 8) & 1).tolist()):
            if not leaf:
                continue
            try:
                text = key.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if len(text) == 1:
                value = int(units[node]) & ((1 << 31) - 1)
                found.append((ord(text), strings[value:strings.index(b"\0", value)].decode("utf-8", "replace")))
    return tuple(found)

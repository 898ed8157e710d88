"""MPNet's tokenizer: BERT's WordPiece, ``<s>``/``</s>`` templates, a ``<mask>`` that swallows the space before it.

What ``MPNetTokenizerFast`` (transformers 4.57) does differently from ``BertTokenizerFast``:

- special tokens ``<s>`` (cls), ``</s>`` (sep), ``<pad>``, ``<mask>``; ``[UNK]`` stays the unknown token;
- templates ``<s> A </s>`` and ``<s> A </s> </s> B </s>``; asked for token types, the fast tokenizer gives
  ``B`` and its ``</s>`` type 1, as here (the model has no token types and ignores them);
- ``<mask>`` is an added token with ``lstrip``: typed as ``"a <mask>"`` its offsets start at the space.

Example:
    >>> tok = MPNetTokenizer(["<s>", "<pad>", "</s>", "<unk>", "[UNK]", "a", "b", "<mask>"])
    >>> enc = tok.encode(["a  <mask>"], ["b"])
    >>> enc.token_ids.to_list(), enc.starts.to_list(), enc.ends.to_list(), enc.segment_ids.to_list()
    ([[0, 5, 7, 2, 2, 6, 2]], [[0, 0, 1, 0, 0, 0, 0]], [[0, 1, 9, 0, 0, 1, 0]], [[0, 0, 0, 0, 0, 1, 1]])
"""

from __future__ import annotations

import dataclasses
import pathlib

import tensorflow as tf

from kbert.errors import TokenizerError
from kbert.tokenizer.bert_tokenizer import BertTokenizer
from kbert.tokenizer.subword import Pieces, SpecialLayout, read_json

# Unicode White_Space (what the tokenizers crate's lstrip trims), as an RE2 class.
_TRAILING_SPACE = "[\\t\\n\\x{0B}\\x{0C}\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}" \
                  "\\x{202F}\\x{205F}\\x{3000}]+$"
_SPECIAL_KEYS = ("cls_token", "sep_token", "pad_token", "mask_token")


class MPNetTokenizer(BertTokenizer):
    """WordPiece tokenizer with ``MPNetTokenizerFast`` semantics; arguments as :class:`BertTokenizer`'s."""

    def __init__(self, vocabulary: list[str], *, unk_token: str = "[UNK]", cls_token: str = "<s>",
                 sep_token: str = "</s>", pad_token: str = "<pad>", mask_token: str = "<mask>", **kwargs):
        super().__init__(vocabulary, unk_token=unk_token, cls_token=cls_token, sep_token=sep_token,
                         pad_token=pad_token, mask_token=mask_token, **kwargs)
        self.mask_id = self.vocabulary.index(mask_token) if mask_token in self.vocabulary else None

    @classmethod
    def from_pretrained(cls, folder: str | pathlib.Path, *, max_position_embeddings: int | None = None
                        ) -> "MPNetTokenizer":
        """As :meth:`BertTokenizer.from_pretrained`; the folder must name MPNet's special tokens (transformers
        always writes them), since BertTokenizer would fill the gaps with BERT's ``[CLS]``/``[SEP]`` ..."""
        folder = pathlib.Path(folder)
        named = set()
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            if (folder / name).is_file():
                named |= set(read_json(folder / name))
        missing = [key for key in _SPECIAL_KEYS if key not in named]
        if missing:
            raise TokenizerError(f"{folder}: tokenizer_config.json and special_tokens_map.json do not name {missing}; "
                                 "an MPNet tokenizer needs them (<s>, </s>, <pad>, <mask>)")
        return super().from_pretrained(folder, max_position_embeddings=max_position_embeddings)

    def tokenize(self, texts: tf.Tensor) -> Pieces:
        """BERT's pieces, with each ``<mask>`` starting where the whitespace before it starts (``lstrip``)."""
        pieces = super().tokenize(texts)
        if self.mask_id is None:
            return pieces
        texts = tf.convert_to_tensor(texts, tf.string)
        starts = pieces.starts.flat_values
        where = tf.where(tf.equal(pieces.ids.flat_values, self.mask_id))  # (M, 1): only the masks pay for this
        text = tf.gather(texts, tf.gather(pieces.ids.value_rowids(), where[:, 0]))
        before = tf.strings.substr(text, tf.zeros_like(where[:, 0], tf.int32), tf.gather_nd(starts, where),
                                   unit="UTF8_CHAR")
        new = tf.strings.length(tf.strings.regex_replace(before, _TRAILING_SPACE, ""), unit="UTF8_CHAR")
        starts = tf.tensor_scatter_nd_update(starts, where, new)
        return dataclasses.replace(pieces, starts=pieces.starts.with_flat_values(starts))

    def special_layout(self, is_pair: bool) -> SpecialLayout:
        """``<s> A </s>`` and ``<s> A </s> </s> B </s>`` (``B`` and its ``</s>``: segment 1, as the fast tokenizer)."""
        after_first = ((self.sep_id, 0), (self.sep_id, 0)) if is_pair else ((self.sep_id, 0),)
        return SpecialLayout(before=((self.cls_id, 0),), after_first=after_first, after_second=((self.sep_id, 1),),
                             second_segment=1)

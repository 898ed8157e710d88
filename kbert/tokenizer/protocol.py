"""The tokenizer contract: what tasks, pipelines, training and export may ask of a family's tokenizer.

Every family's tokenizer (``family.tokenizer(folder, config)``) is a :class:`Tokenizer`; tasks use nothing
else of it. :class:`~kbert.tokenizer.subword.SubwordTokenizer` implements the shared part (``encode`` with
truncation and overflow windows in one place, ``word_aware``, ``continues_word``, ``word_starts``); a family's
subclass provides its pieces (``tokenize``), its special-token layout and, for tokenizers whose tokens do not
mark word boundaries (byte-level BPE), how tokens are joined back into text.

Example:
    >>> from kbert.checkpoint import load_checkpoint
    >>> from kbert.tokenizer.protocol import Tokenizer
    >>> tokenizer = load_checkpoint("tests/fixtures/checkpoints/tiny-roberta-cls").tokenizer
    >>> isinstance(tokenizer, Tokenizer), tokenizer.word_aware, tokenizer.lowercase
    (True, False, False)
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Tokenizer(Protocol):
    """Members every family's tokenizer has (types in the docstrings of ``SubwordTokenizer``)."""

    vocabulary: tuple[str, ...]  # tokens in id order
    pad_id: int
    unk_id: int
    cls_id: int  # the token that starts a sequence ([CLS], <s>)
    sep_id: int  # the token that ends a text ([SEP], </s>)
    model_max_length: int  # default max_length of encode, special tokens included
    continuing_subword_prefix: str | None  # "##" when pieces after a word's first are marked; else None
    split_words_prefix: str  # put before each pre-split word (is_split_into_words): "" or " " (byte-level)
    takes_split_words: bool  # whether transformers accepts is_split_into_words for this tokenizer
    decoder_cleanup: bool  # the WordPiece decoder's clean-up (" ." -> ".") when tokens are joined into words

    @property
    def word_aware(self) -> bool:
        """Whether tokens alone tell where words start (WordPiece's ``##``)."""

    @property
    def lowercase(self) -> bool:
        """Whether the normaliser lower-cases."""

    def encode(self, texts, text_pairs=None, *, max_length=None, truncation="longest_first", stride=None):
        """:class:`~kbert.tokenizer.subword.Encoding` of ``(B,)`` texts (and pairs): ids, segment ids, character
        offsets, sequence ids (special tokens: -1; the first text 0, the second 1), ``sample_index`` of
        overflow windows (``stride``), in TF ops (eager, ``tf.function``, ``tf.data``, SavedModel)."""

    def tokenize(self, texts):
        """:class:`~kbert.tokenizer.subword.Pieces` of ``(B,)`` texts without special tokens: ids and character
        offsets (the pieces for decoding words and for counting a text's tokens before windowing it)."""

    def special_layout(self, is_pair: bool):
        """:class:`~kbert.tokenizer.subword.SpecialLayout`: the special tokens around one text or a pair."""

    def convert_ids_to_tokens(self, ids) -> list[str]:
        """Token strings of ids."""

    def convert_tokens_to_string(self, tokens) -> str:
        """Tokens joined into text as transformers' decoder does (token classification's ``word``)."""

    def join_tokens(self, token_ids, group, num_groups, unk_texts=None):
        """The graph version of :meth:`convert_tokens_to_string` over groups of tokens (exports); where
        ``token_ids`` is the unknown token, ``unk_texts`` (the text it stands for, as transformers' token
        classification pipeline puts it) replaces its string."""

    def continues_word(self):
        """``(V,)`` bool numpy array: which vocabulary entries continue the word before them."""

    def word_starts(self, texts):
        """Ragged ``(B, (words))`` character offsets where the pre-tokenizer's words of ``texts`` start (TF ops);
        transformers' ``word_ids`` are these words."""

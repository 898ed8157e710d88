"""ModernBERT's tokenizer: RoBERTa's byte-level BPE read from ``tokenizer.json``, with its ``TemplateProcessing``.

What ``PreTrainedTokenizerFast`` (transformers 4.57) does with ModernBERT's folder, and kbert too:

- special tokens ``[CLS]``, ``[SEP]``, ``[PAD]``, ``[UNK]``, ``[MASK]`` (``[MASK]`` with ``lstrip``, from the
  file's ``added_tokens``);
- templates ``[CLS] A [SEP]`` and ``[CLS] A [SEP] B [SEP]``, ``B`` and its ``[SEP]`` of type 1 (the model has no
  token types and ignores them);
- offsets are not trimmed: ``TemplateProcessing`` keeps the space a piece starts with (``"Ġworld"`` covers
  `` world``), unlike ``RobertaProcessing``;
- positions are rotary: the tokenizer's length limit is ``max_position_embeddings`` itself.
"""

from __future__ import annotations

from kbert.tokenizer.roberta_tokenizer import RobertaTokenizer
from kbert.tokenizer.subword import SpecialLayout


class ModernBertTokenizer(RobertaTokenizer):
    """Byte-level BPE with ``[CLS] A [SEP] (B [SEP])`` templates; arguments as :class:`RobertaTokenizer`'s."""

    default_special_tokens = (("cls_token", "[CLS]"), ("sep_token", "[SEP]"), ("pad_token", "[PAD]"),
                              ("unk_token", "[UNK]"), ("mask_token", "[MASK]"), ("bos_token", "[CLS]"),
                              ("eos_token", "[SEP]"))
    post_processor = "TemplateProcessing"

    @staticmethod
    def max_positions(max_position_embeddings, pad_id):
        return max_position_embeddings

    def special_layout(self, is_pair: bool) -> SpecialLayout:
        """``[CLS] A [SEP]`` and ``[CLS] A [SEP] B [SEP]`` (``B`` and its ``[SEP]``: segment 1)."""
        return SpecialLayout(before=((self.cls_id, 0),), after_first=((self.sep_id, 0),),
                             after_second=((self.sep_id, 1),), second_segment=1)

"""XLM-RoBERTa (xlm-roberta-base/large and their fine-tunes, multilingual-e5, bge-m3): RoBERTa's encoder, names
(``roberta.``) and heads, with a SentencePiece tokenizer (``sentencepiece.bpe.model``) and fairseq's id layout
(``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, then the SentencePiece pieces shifted by one, ``<mask>`` last).

Example:
    >>> from kbert.models.xlm_roberta import FAMILY
    >>> FAMILY.architecture("ForTokenClassification"), FAMILY.weight_prefix
    ('XLMRobertaForTokenClassification', 'roberta.')
    >>> FAMILY.head_layout("ForSequenceClassification").prefixes
    ('classifier.dense', 'classifier.out_proj')
"""

from __future__ import annotations

from kbert.models.bert import COMMON_TOKENIZER_FILES
from kbert.models.roberta import RobertaFamily


class XLMRobertaFamily(RobertaFamily):
    model_type = "xlm-roberta"
    class_prefix = "XLMRoberta"
    tokenizer_files = ("sentencepiece.bpe.model", *COMMON_TOKENIZER_FILES)

    def tokenizer(self, folder, config):
        from kbert.tokenizer.sentencepiece import SentencePieceTokenizer

        return SentencePieceTokenizer.from_pretrained(
            folder, model_file="sentencepiece.bpe.model", fairseq_ids=True, template="two_separators", cls_token="<s>",
            sep_token="</s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>",
            mask_normalized=True, max_position_embeddings=config.max_position_embeddings, positions_offset=self.position_offset(config))


FAMILY = XLMRobertaFamily()

"""BERT (and MiniLM, which is a BERT checkpoint): WordPiece, token types, the pooler head for sequences.

Example:
    >>> from kbert.models.bert import FAMILY
    >>> FAMILY.head_layout("ForSequenceClassification").features
    'pooled'
"""

from __future__ import annotations

from kbert.models.family import Family

COMMON_TOKENIZER_FILES = ("tokenizer_config.json", "special_tokens_map.json", "tokenizer.json")


class BertFamily(Family):
    model_type = "bert"
    weight_prefix = "bert."
    class_prefix = "Bert"
    tokenizer_files = ("vocab.txt", *COMMON_TOKENIZER_FILES)

    def backbone_slots(self, backbone):
        from kbert.models.bert.weights import encoder_slots

        return encoder_slots(backbone)

    def tokenizer(self, folder, config):
        from kbert.tokenizer.bert_tokenizer import BertTokenizer

        return BertTokenizer.from_pretrained(folder, max_position_embeddings=config.max_position_embeddings)


FAMILY = BertFamily()

"""RoBERTa: BERT's encoder with byte-level BPE, positions counted from the padding id, one token type, and
``RobertaClassificationHead`` (``classifier.dense`` → tanh → ``classifier.out_proj`` on ``<s>``).

Example:
    >>> from kbert.models.roberta import FAMILY
    >>> FAMILY.head_layout("ForSequenceClassification").prefixes
    ('classifier.dense', 'classifier.out_proj')
"""

from __future__ import annotations

from kbert.models.bert import COMMON_TOKENIZER_FILES, BertFamily
from kbert.models.family import HeadLayout


def two_layer_head(activation: str) -> HeadLayout:
    """``RobertaClassificationHead`` (tanh), ``ElectraClassificationHead`` (GELU), ``MPNetClassificationHead``
    (tanh): dropout → ``classifier.dense`` → activation → dropout → ``classifier.out_proj`` on the first token."""
    return HeadLayout("first_token", "classifier.out_proj", hidden=("classifier.dense", activation))


class RobertaFamily(BertFamily):
    model_type = "roberta"
    weight_prefix = "roberta."
    class_prefix = "Roberta"
    tokenizer_files = ("vocab.json", "merges.txt", *COMMON_TOKENIZER_FILES)
    config_defaults = {"pad_token_id": 1}  # transformers' RobertaConfig; BERT's is 0
    heads = {**BertFamily.heads, "ForSequenceClassification": two_layer_head("tanh")}

    def position_offset(self, config) -> int:
        return config.pad_token_id + 1

    def build_backbone(self, config, *, use_pooler, dtype=None, random_init=True):
        from kbert.modeling.backbone import EncoderBackbone

        return EncoderBackbone.from_encoder_config(config, use_pooler=use_pooler, dtype=dtype,
                                                   positions_pad_id=config.pad_token_id, random_init=random_init)

    def tokenizer(self, folder, config):
        from kbert.tokenizer.roberta_tokenizer import RobertaTokenizer

        return RobertaTokenizer.from_pretrained(folder, max_position_embeddings=config.max_position_embeddings)


FAMILY = RobertaFamily()

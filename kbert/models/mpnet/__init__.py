"""MPNet (e.g. all-mpnet-base-v2): a relative position bias shared across layers (its own layer:
:mod:`kbert.models.mpnet.backbone`), RoBERTa-style positions, no token types, WordPiece with ``<s>``/``</s>``
(:mod:`kbert.models.mpnet.tokenizer`), and ``MPNetClassificationHead`` (``classifier.dense`` → tanh →
``classifier.out_proj`` on ``<s>``).

transformers' ``MPNetEmbeddings`` numbers positions from ``padding_idx + 1`` with ``padding_idx`` fixed at 1,
whatever ``pad_token_id`` says; kbert does the same.

Example:
    >>> from kbert.models.mpnet import FAMILY
    >>> FAMILY.head_layout("ForSequenceClassification").prefixes
    ('classifier.dense', 'classifier.out_proj')
    >>> FAMILY.layer_depth("encoder.relative_attention_bias.weight", num_layers=12)
    13
"""

from __future__ import annotations

from kbert.models.bert import COMMON_TOKENIZER_FILES
from kbert.models.family import Family
from kbert.models.roberta import two_layer_head

PADDING_IDX = 1  # transformers' MPNetEmbeddings.padding_idx


class MPNetFamily(Family):
    model_type = "mpnet"
    weight_prefix = "mpnet."
    class_prefix = "MPNet"
    tokenizer_files = ("vocab.txt", *COMMON_TOKENIZER_FILES)
    # transformers' MPNetConfig defaults where they differ from BERT's.
    config_defaults = {"vocab_size": 30527, "pad_token_id": 1, "relative_attention_num_buckets": 32}
    fixed_config = {"type_vocab_size": 0}
    # The relative bias table is shared by every layer: it trains with the embeddings.
    embedding_prefixes = ("embeddings.", "encoder.relative_attention_bias.")
    heads = {**Family.heads, "ForSequenceClassification": two_layer_head("tanh")}

    def normalised(self, raw, source):
        """Also refuses a relative-bias table smaller than the 32 buckets MPNet always looks up, naming the file."""
        from kbert.errors import UnsupportedModelError

        values = super().normalised(raw, source)
        buckets = values["relative_attention_num_buckets"]
        if not isinstance(buckets, int) or isinstance(buckets, bool) or buckets < 32:
            raise UnsupportedModelError(f"{source}: relative_attention_num_buckets {buckets!r} is below the 32 buckets "
                                        "MPNet looks up")
        return values

    def position_offset(self, config) -> int:
        return PADDING_IDX + 1

    def build_backbone(self, config, *, use_pooler, dtype=None, random_init=True):
        from kbert.modeling.backbone import encoder_arguments
        from kbert.models.mpnet.backbone import MPNetBackbone

        return MPNetBackbone(
            **encoder_arguments(config, dtype=dtype, random_init=random_init),
            relative_attention_num_buckets=config.extra["relative_attention_num_buckets"], pad_token_id=PADDING_IDX,
            use_pooler=use_pooler)

    def backbone_slots(self, backbone):
        from kbert.models.mpnet.weights import backbone_slots

        return backbone_slots(backbone)

    def tokenizer(self, folder, config):
        from kbert.models.mpnet.tokenizer import MPNetTokenizer

        return MPNetTokenizer.from_pretrained(folder, max_position_embeddings=config.max_position_embeddings)


FAMILY = MPNetFamily()

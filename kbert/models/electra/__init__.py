"""ELECTRA (discriminator checkpoints): BERT's encoder and names under ``electra.``, embeddings narrower than the
encoder (``embedding_size``, then ``embeddings_project``), no pooler, and ``ElectraClassificationHead``
(``classifier.dense`` → GELU → ``classifier.out_proj`` on ``[CLS]``).

The discriminator's pre-training head (``discriminator_predictions``) is not loaded: no kbert task uses it.

Example:
    >>> from kbert.models.electra import FAMILY
    >>> FAMILY.head_layout("ForSequenceClassification").hidden
    ('classifier.dense', 'gelu')
    >>> FAMILY.layer_depth("embeddings_project.weight", num_layers=12)
    13
"""

from __future__ import annotations

from kbert.models.bert import COMMON_TOKENIZER_FILES, BertFamily
from kbert.models.roberta import two_layer_head


class ElectraFamily(BertFamily):
    model_type = "electra"
    weight_prefix = "electra."
    class_prefix = "Electra"
    tokenizer_files = ("vocab.txt", *COMMON_TOKENIZER_FILES)
    # transformers' ElectraConfig defaults (electra-small-discriminator's sizes).
    config_defaults = {"vocab_size": 30522, "embedding_size": 128, "hidden_size": 256, "num_attention_heads": 4,
                       "intermediate_size": 1024}
    embedding_prefixes = ("embeddings.", "embeddings_project.")
    heads = {**BertFamily.heads, "ForSequenceClassification": two_layer_head("gelu")}


FAMILY = ElectraFamily()

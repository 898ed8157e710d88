"""DistilBERT: BERT's post-norm layers under other names (``transformer.layer.i.attention.q_lin`` ...), no token
types, ``pre_classifier`` → ReLU → ``classifier`` for sequences, dropout before ``qa_outputs``.

Its ``config.json`` names the sizes ``dim``, ``n_layers``, ``n_heads``, ``hidden_dim`` (the feed-forward width),
``activation``, ``dropout``, ``attention_dropout``; the LayerNorm epsilon is hard-coded (1e-12) in transformers.
``sinusoidal_pos_embds`` checkpoints store the fixed table as position embeddings; it is loaded as it is and
not trained (transformers freezes it too).

Example:
    >>> from kbert.models.distilbert import FAMILY
    >>> normalised = FAMILY.normalised({"dim": 32, "n_layers": 2, "hidden_dim": 37}, "config.json")
    >>> normalised["hidden_size"], normalised["num_hidden_layers"], normalised["intermediate_size"]
    (32, 2, 37)
    >>> FAMILY.head_layout("ForSequenceClassification").prefixes
    ('pre_classifier', 'classifier')
"""

from __future__ import annotations

from kbert.models.bert import COMMON_TOKENIZER_FILES, BertFamily
from kbert.models.family import HeadLayout

CONFIG_KEYS = {"hidden_size": "dim", "num_hidden_layers": "n_layers", "num_attention_heads": "n_heads",
               "intermediate_size": "hidden_dim", "hidden_act": "activation", "hidden_dropout_prob": "dropout",
               "attention_probs_dropout_prob": "attention_dropout"}


class DistilBertFamily(BertFamily):
    model_type = "distilbert"
    weight_prefix = "distilbert."
    class_prefix = "DistilBert"
    tokenizer_files = ("vocab.txt", *COMMON_TOKENIZER_FILES)
    config_keys = CONFIG_KEYS
    # transformers' DistilBertConfig defaults (distilbert-base-uncased's sizes).
    config_defaults = {"vocab_size": 30522, "dim": 768, "n_layers": 6, "n_heads": 12, "hidden_dim": 3072,
                       "activation": "gelu", "dropout": 0.1, "attention_dropout": 0.1, "qa_dropout": 0.1,
                       "seq_classif_dropout": 0.2, "sinusoidal_pos_embds": False, "pad_token_id": 0}
    fixed_config = {"type_vocab_size": 0, "layer_norm_eps": 1e-12}
    layer_prefix = "transformer.layer."
    heads = {"ForSequenceClassification": HeadLayout("first_token", "classifier", hidden=("pre_classifier", "relu"),
                                                     dropout_first=False),
             "ForTokenClassification": HeadLayout("tokens", "classifier"),
             "ForQuestionAnswering": HeadLayout("tokens", "qa_outputs")}

    def build_backbone(self, config, *, use_pooler, dtype=None, random_init=True):
        backbone = super().build_backbone(config, use_pooler=use_pooler, dtype=dtype, random_init=random_init)
        if config.extra.get("sinusoidal_pos_embds"):
            backbone.position_embedding.trainable = False  # a fixed table, as transformers keeps it
        return backbone

    def backbone_slots(self, backbone):
        from kbert.models.bert.weights import encoder_slots
        from kbert.models.distilbert.weights import layer_names

        return encoder_slots(backbone, layer_names)

    def head_dropout(self, config, head):
        """``seq_classif_dropout`` (sequences), ``qa_dropout`` (spans), ``dropout`` (tokens), as transformers."""
        key = {"ForSequenceClassification": "seq_classif_dropout", "ForQuestionAnswering": "qa_dropout"}.get(head)
        return config.extra[key] if key else config.hidden_dropout_prob


FAMILY = DistilBertFamily()

"""ModernBERT (answerdotai/ModernBERT-base/-large and their fine-tunes): a pre-norm encoder with rotary
positions, alternating global and sliding-window attention and GeGLU MLPs (its own layers:
:mod:`kbert.models.modernbert.backbone`), no token types, a byte-level BPE ``tokenizer.json`` with
``[CLS] A [SEP]`` templates (:mod:`kbert.models.modernbert.tokenizer`), and ``ModernBertPredictionHead`` under
every task: ``head.dense`` → ``classifier_activation`` → ``head.norm`` → dropout → ``classifier`` (also for
question answering, whose two outputs are the start and end logits). Sequence classification pools ``[CLS]`` or
the mean of the tokens (``classifier_pooling``).

The head is the shared :class:`~kbert.models.family.HeadLayout` with two options ModernBERT needs (a LayerNorm after
the hidden Dense, a Dense without bias) and ``"mean"`` features, so every task builds, saves and loads it as any
other family's; its pooling, biases and epsilon come from the config (:meth:`ModernBertFamily.head_layout`).

Example:
    >>> from kbert.models.modernbert import FAMILY
    >>> FAMILY.head_layout("ForQuestionAnswering").prefixes
    ('head.dense', 'head.norm', 'classifier')
    >>> FAMILY.checkpoint_name("layers.0.attn.Wqkv.weight"), FAMILY.checkpoint_name("head.norm.weight")
    ('model.layers.0.attn.Wqkv.weight', 'head.norm.weight')
"""

from __future__ import annotations

from kbert.models.family import Family, HeadLayout

# EncoderConfig field -> ModernBertConfig key
CONFIG_KEYS = {"hidden_act": "hidden_activation", "layer_norm_eps": "norm_eps", "hidden_dropout_prob": "mlp_dropout",
               "attention_probs_dropout_prob": "attention_dropout"}
# transformers' ModernBertConfig defaults (ModernBERT-base's sizes).
CONFIG_DEFAULTS = {"vocab_size": 50368, "hidden_size": 768, "intermediate_size": 1152, "num_hidden_layers": 22,
                   "num_attention_heads": 12, "hidden_activation": "gelu", "max_position_embeddings": 8192,
                   "initializer_range": 0.02, "norm_eps": 1e-5, "norm_bias": False, "pad_token_id": 50283,
                   "global_rope_theta": 160000.0, "attention_bias": False, "attention_dropout": 0.0,
                   "global_attn_every_n_layers": 3, "local_attention": 128, "local_rope_theta": 10000.0,
                   "embedding_dropout": 0.0, "mlp_bias": False, "mlp_dropout": 0.0, "classifier_pooling": "cls",
                   "classifier_dropout": 0.0, "classifier_bias": False, "classifier_activation": "gelu"}


def prediction_head(features: str, output: str = "classifier", *, epsilon: float = 1e-5, norm_bias: bool = False,
                    bias: bool = False, activation: str = "gelu") -> HeadLayout:
    """``ModernBertPredictionHead`` then dropout and the output Dense."""
    return HeadLayout(features, output, hidden=("head.dense", activation), dropout_first=False, hidden_bias=bias,
                      norm=("head.norm", epsilon, norm_bias))


class ModernBertFamily(Family):
    model_type = "modernbert"
    weight_prefix = "model."
    class_prefix = "ModernBert"
    tokenizer_files = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
    config_keys = CONFIG_KEYS
    config_defaults = CONFIG_DEFAULTS
    fixed_config = {"type_vocab_size": 0}
    layer_prefix = "layers."
    heads = {"ForSequenceClassification": prediction_head("first_token"),
             "ForTokenClassification": prediction_head("tokens"),
             "ForQuestionAnswering": prediction_head("tokens")}

    def normalised(self, raw, source):
        """Also refuses what kbert does not compute (another pooling, RoPE scaling), naming the file."""
        from kbert.errors import UnsupportedModelError

        values = super().normalised(raw, source)
        if values["classifier_pooling"] not in ("cls", "mean"):
            raise UnsupportedModelError(f"{source}: classifier_pooling {values['classifier_pooling']!r} is not "
                                        "supported (only 'cls' and 'mean')")
        if values.get("rope_scaling"):
            raise UnsupportedModelError(f"{source}: rope_scaling {values['rope_scaling']!r} is not supported")
        for key in ("global_attn_every_n_layers", "local_attention"):
            value = values[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UnsupportedModelError(f"{source}: {key} must be a positive integer, got {value!r}")
        return values

    def head_layout(self, head, config=None):
        layout = self.heads[head]
        if config is None:
            return layout
        extra = config.extra
        features = layout.features
        if head == "ForSequenceClassification":
            features = "mean" if extra["classifier_pooling"] == "mean" else "first_token"
        return prediction_head(features, epsilon=config.layer_norm_eps, norm_bias=bool(extra["norm_bias"]),
                               bias=bool(extra["classifier_bias"]), activation=extra["classifier_activation"])

    def is_head_tensor(self, canonical):
        """Task heads and the masked-LM head (``head.``, ``decoder.``)."""
        return canonical.startswith(("head.", "decoder.", "classifier."))

    def build_backbone(self, config, *, use_pooler, dtype=None, random_init=True):
        from kbert.modeling.backbone import encoder_arguments
        from kbert.models.modernbert.backbone import ModernBertBackbone

        extra = config.extra
        return ModernBertBackbone(
            **encoder_arguments(config, dtype=dtype, random_init=random_init),
            embedding_dropout=extra["embedding_dropout"],
            global_rope_theta=extra["global_rope_theta"], local_rope_theta=extra["local_rope_theta"],
            global_attn_every_n_layers=extra["global_attn_every_n_layers"], local_attention=extra["local_attention"],
            norm_bias=bool(extra["norm_bias"]), attention_bias=bool(extra["attention_bias"]),
            mlp_bias=bool(extra["mlp_bias"]))

    def backbone_slots(self, backbone):
        from kbert.models.modernbert.weights import backbone_slots

        return backbone_slots(backbone)

    def tokenizer(self, folder, config):
        from kbert.models.modernbert.tokenizer import ModernBertTokenizer

        return ModernBertTokenizer.from_pretrained(folder, max_position_embeddings=config.max_position_embeddings)


FAMILY = ModernBertFamily()

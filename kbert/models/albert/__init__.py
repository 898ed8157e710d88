"""ALBERT (albert-base-v2 ...): BERT's post-norm layer with one set of weights applied at every depth, embeddings
narrower than the encoder (``embedding_size``, then ``encoder.embedding_hidden_mapping_in``), a tanh pooler saved
as ``albert.pooler``, BERT's heads (dropout ``classifier_dropout_prob``) and a SentencePiece tokenizer
(``spiece.model``, lower-cased, accents stripped, ``[CLS] A [SEP] B [SEP]``).

Only the layout every released ALBERT uses is supported: one layer group (``num_hidden_groups`` 1) of one layer
(``inner_group_num`` 1); other values are refused when ``config.json`` is read. The shared layer is loaded once
and saved once, under ``encoder.albert_layer_groups.0.albert_layers.0.``. kbert's canonical name of the pooler is
``pooler.dense.*`` (as every other family's); it is written back as ``albert.pooler.*``.

Layer-wise learning-rate decay counts weights, not applications: the shared layer is the only encoder layer
(depth 1, the rate of a top layer) and the embeddings with their projection sit below it (depth 2), whatever
``num_hidden_layers`` says.

Example:
    >>> from kbert.models.albert import FAMILY
    >>> FAMILY.canonical_name("albert.pooler.weight"), FAMILY.checkpoint_name("pooler.dense.weight")
    ('pooler.dense.weight', 'albert.pooler.weight')
    >>> FAMILY.layer_depth("encoder.albert_layer_groups.0.albert_layers.0.ffn.weight", num_layers=12)
    1
"""

from __future__ import annotations

from kbert.models.bert import COMMON_TOKENIZER_FILES, BertFamily
from kbert.models.family import POOLER_HEAD, SPAN_HEAD, TOKEN_HEAD

SHARED_LAYER = "encoder.albert_layer_groups.0.albert_layers.0."
_POOLER = {"pooler.weight": "pooler.dense.weight", "pooler.bias": "pooler.dense.bias"}  # ALBERT's -> canonical


class AlbertFamily(BertFamily):
    model_type = "albert"
    weight_prefix = "albert."
    class_prefix = "Albert"
    tokenizer_files = ("spiece.model", *COMMON_TOKENIZER_FILES)
    # transformers' AlbertConfig defaults where they differ from BERT's (albert-xxlarge's sizes).
    config_defaults = {"vocab_size": 30000, "embedding_size": 128, "hidden_size": 4096, "num_attention_heads": 64,
                       "intermediate_size": 16384, "hidden_act": "gelu_new", "hidden_dropout_prob": 0.0,
                       "attention_probs_dropout_prob": 0.0, "classifier_dropout_prob": 0.1, "num_hidden_groups": 1,
                       "inner_group_num": 1}
    layer_prefix = SHARED_LAYER
    embedding_prefixes = ("embeddings.", "encoder.embedding_hidden_mapping_in.")
    heads = {"ForSequenceClassification": POOLER_HEAD, "ForTokenClassification": TOKEN_HEAD,
             "ForQuestionAnswering": SPAN_HEAD}

    def normalised(self, raw, source):
        """Also refuses layer groups other than one group of one layer, naming the file."""
        from kbert.errors import UnsupportedModelError

        values = super().normalised(raw, source)
        for key in ("num_hidden_groups", "inner_group_num"):
            if values[key] != 1:
                raise UnsupportedModelError(f"{source}: {key} {values[key]!r} is not supported; kbert loads ALBERT "
                                            "with one layer group of one layer (num_hidden_groups 1, "
                                            "inner_group_num 1)")
        return values

    def build_backbone(self, config, *, use_pooler, dtype=None, random_init=True):
        from kbert.modeling.backbone import EncoderBackbone

        return EncoderBackbone.from_encoder_config(config, use_pooler=use_pooler, dtype=dtype, random_init=random_init,
                                                   project_embeddings=True, share_layers=True)

    def backbone_slots(self, backbone):
        from kbert.models.albert.weights import backbone_slots

        return backbone_slots(backbone)

    def canonical_name(self, name):
        name = super().canonical_name(name)
        return _POOLER.get(name, name)

    def checkpoint_name(self, canonical):
        pooler = {v: k for k, v in _POOLER.items()}.get(canonical)
        return self.weight_prefix + pooler if pooler else super().checkpoint_name(canonical)

    def is_head_tensor(self, canonical):
        """Also the pre-training heads of ``AlbertForPreTraining`` / ``AlbertForMaskedLM``."""
        return super().is_head_tensor(canonical) or canonical.startswith(("predictions.", "sop_classifier."))

    def head_dropout(self, config, head):
        """As transformers' ``AlbertFor*``: ``classifier_dropout_prob`` for sequences, the same (else
        ``hidden_dropout_prob`` when it is null) for tokens; the QA head has none."""
        dropout = config.extra.get("classifier_dropout_prob")
        return config.hidden_dropout_prob if dropout is None and head == "ForTokenClassification" else dropout

    def layer_depth(self, canonical, num_layers):
        """One layer of weights (see the module docstring): the shared layer 1, the embeddings 2, else ``None``."""
        if canonical.startswith(self.embedding_prefixes):
            return 2
        return 1 if canonical.startswith(SHARED_LAYER) else None

    def tokenizer(self, folder, config):
        from kbert.tokenizer.sentencepiece import SentencePieceTokenizer

        return SentencePieceTokenizer.from_pretrained(
            folder, model_file="spiece.model", template="token_types", cls_token="[CLS]", sep_token="[SEP]",
            pad_token="<pad>", unk_token="<unk>", mask_token="[MASK]", lowercase=True, keep_accents=False,
            replace_quotes=True, strip_right=False, max_position_embeddings=config.max_position_embeddings)


FAMILY = AlbertFamily()

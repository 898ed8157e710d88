"""DeBERTa-v2 and DeBERTa-v3 (``model_type`` ``deberta-v2``: microsoft/deberta-v3-base, mdeberta-v3-base and their
fine-tunes): disentangled attention (its own backbone: :mod:`kbert.models.deberta_v2.backbone`), weights under
``deberta.``, a SentencePiece tokenizer (``spm.model``, ``[CLS] A [SEP] B [SEP]``, ``[PAD]`` 0, token types), and
``DebertaV2ForSequenceClassification``'s ``ContextPooler``: the first token → ``pooler.dense`` →
``pooler_hidden_act`` → dropout → ``classifier``. The pooler belongs to the head: it is saved without the
``deberta.`` prefix, as transformers writes it, and the backbone has none.

Head dropout as transformers: ``cls_dropout`` (else ``hidden_dropout_prob``) after the pooler; the pooler's own
dropout before ``pooler.dense`` (``pooler_dropout``) is 0 in every released config and left out.

Example:
    >>> from kbert.models.deberta_v2 import FAMILY
    >>> FAMILY.head_layout("ForSequenceClassification").prefixes
    ('pooler.dense', 'classifier')
    >>> FAMILY.checkpoint_name("pooler.dense.weight"), FAMILY.checkpoint_name("encoder.rel_embeddings.weight")
    ('pooler.dense.weight', 'deberta.encoder.rel_embeddings.weight')
"""

from __future__ import annotations

import dataclasses

from kbert.models.bert import COMMON_TOKENIZER_FILES
from kbert.models.family import SPAN_HEAD, TOKEN_HEAD, Family, HeadLayout


class DebertaV2Family(Family):
    model_type = "deberta-v2"
    weight_prefix = "deberta."
    class_prefix = "DebertaV2"
    tokenizer_files = ("spm.model", "added_tokens.json", *COMMON_TOKENIZER_FILES)
    # transformers' DebertaV2Config defaults where they differ from BERT's (deberta-v2-xxlarge's sizes), and what
    # its modules read with getattr defaults.
    config_defaults = {"vocab_size": 128100, "hidden_size": 1536, "num_hidden_layers": 24, "num_attention_heads": 24,
                       "intermediate_size": 6144, "type_vocab_size": 0, "layer_norm_eps": 1e-7,
                       "relative_attention": False, "max_relative_positions": -1, "position_buckets": -1,
                       "position_biased_input": True, "pos_att_type": None, "share_att_key": False,
                       "norm_rel_ebd": "none", "pooler_dropout": 0, "pooler_hidden_act": "gelu"}
    embedding_prefixes = ("embeddings.", "encoder.rel_embeddings.", "encoder.LayerNorm.")
    heads = {"ForSequenceClassification": HeadLayout("first_token", "classifier", hidden=("pooler.dense", "gelu"),
                                                     dropout_first=False),
             "ForTokenClassification": TOKEN_HEAD, "ForQuestionAnswering": SPAN_HEAD}

    def normalised(self, raw, source):
        """Also reads ``pos_att_type`` written as ``"p2c|c2p"`` and refuses what the backbone does not build."""
        from kbert.errors import UnsupportedModelError

        values = super().normalised(raw, source)
        kinds = values["pos_att_type"]
        if isinstance(kinds, str):
            kinds = [x.strip() for x in kinds.lower().split("|")]
        values["pos_att_type"] = list(kinds or [])
        if set(values["pos_att_type"]) - {"c2p", "p2c"}:
            raise UnsupportedModelError(f"{source}: pos_att_type {kinds!r} is not supported (only 'c2p', 'p2c')")
        hidden = values.get("hidden_size", 768)
        refused = {"conv_kernel_size": (values.get("conv_kernel_size") or 0) > 0,
                   "embedding_size": values.get("embedding_size") not in (None, hidden),
                   "attention_head_size": values.get("attention_head_size") not in (
                       None, hidden // max(values.get("num_attention_heads", 12), 1)),
                   "pooler_hidden_size": values.get("pooler_hidden_size") not in (None, hidden)}
        for key, bad in refused.items():
            if bad:
                raise UnsupportedModelError(f"{source}: {key} {values[key]!r} is not supported; kbert loads DeBERTa "
                                            "without the convolution layer, with embeddings, heads and pooler of "
                                            "the hidden size")
        return values

    def build_backbone(self, config, *, use_pooler, dtype=None, random_init=True):
        """A :class:`~kbert.models.deberta_v2.backbone.DebertaV2Backbone` (``use_pooler`` is moot: the pooler is
        the classification head's)."""
        from kbert.modeling.backbone import encoder_arguments
        from kbert.models.deberta_v2.backbone import DebertaV2Backbone

        extra = config.extra
        return DebertaV2Backbone(
            **encoder_arguments(config, dtype=dtype, random_init=random_init),
            attention_dropout=config.attention_probs_dropout_prob, num_segments=config.type_vocab_size,
            position_biased_input=bool(extra["position_biased_input"]),
            relative_attention=bool(extra["relative_attention"]), position_buckets=int(extra["position_buckets"]),
            max_relative_positions=int(extra["max_relative_positions"]), pos_att_type=extra["pos_att_type"],
            share_att_key=bool(extra["share_att_key"]), norm_rel_ebd=extra["norm_rel_ebd"])

    def backbone_slots(self, backbone):
        from kbert.models.deberta_v2.weights import backbone_slots

        return backbone_slots(backbone)

    def is_head_tensor(self, canonical):
        """Also the ContextPooler and the masked-LM heads of ``DebertaV2ForMaskedLM``."""
        return super().is_head_tensor(canonical) or canonical.startswith(("pooler.", "lm_predictions.",
                                                                          "mask_predictions."))

    def head_layout(self, head, config=None):
        """The ContextPooler's activation is the config's ``pooler_hidden_act`` (gelu when no config is given)."""
        layout = self.heads[head]
        if config is None or layout.hidden is None:
            return layout
        return dataclasses.replace(layout, hidden=(layout.hidden[0], config.extra.get("pooler_hidden_act", "gelu")))

    def head_dropout(self, config, head):
        """``cls_dropout`` (else ``hidden_dropout_prob``) for sequences, ``hidden_dropout_prob`` for tokens; the QA
        head has none."""
        if head == "ForSequenceClassification" and config.extra.get("cls_dropout") is not None:
            return config.extra["cls_dropout"]
        return config.hidden_dropout_prob

    def tokenizer(self, folder, config):
        from kbert.tokenizer.sentencepiece import SentencePieceTokenizer

        return SentencePieceTokenizer.from_pretrained(
            folder, model_file="spm.model", template="token_types", cls_token="[CLS]", sep_token="[SEP]",
            pad_token="[PAD]", unk_token="[UNK]", mask_token="[MASK]", strip_left=True, strip_right=True,
            append_mask=True, added_tokens="deberta", max_position_embeddings=config.max_position_embeddings)


FAMILY = DebertaV2Family()

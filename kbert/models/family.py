"""What a model family is: the contract between a Hugging Face family's package and the rest of kbert.

Tasks, training, pipelines, export and the command line never name a family; they ask the checkpoint's
:class:`Family` (``checkpoint.family``) for what differs:

* reading ``config.json`` (:attr:`Family.config_keys` renames the family's keys to kbert's normalised
  :class:`~kbert.checkpoint.config.EncoderConfig`, and back when a checkpoint is saved;
  :attr:`Family.config_defaults` are transformers' defaults where they differ from BERT's);
* the backbone and its Hugging Face weight names (:meth:`Family.build_backbone`, :meth:`Family.backbone_slots`,
  :attr:`Family.weight_prefix`);
* the tokenizer (:meth:`Family.tokenizer`, :attr:`Family.tokenizer_files`);
* task heads (:meth:`Family.head_layout`: which features, which Dense layers under which names);
* what training needs (:meth:`Family.layer_depth` for layer-wise learning rates; weight decay follows
  transformers' Trainer rule on the Hugging Face names, which needs nothing from the family).

A family is a package ``kbert.models.<name>`` whose ``FAMILY`` is an instance of a subclass, registered by
one line in :data:`kbert.models.FAMILY_PACKAGES`. Nothing here imports TensorFlow.

Example:
    >>> from kbert.models import family_of
    >>> bert = family_of("bert")
    >>> bert.architecture("ForQuestionAnswering"), bert.canonical_name("bert.encoder.layer.0.output.LayerNorm.gamma")
    ('BertForQuestionAnswering', 'encoder.layer.0.output.LayerNorm.weight')
    >>> bert.head_layout("ForSequenceClassification").prefixes
    ('classifier',)
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, ClassVar


@dataclasses.dataclass(frozen=True)
class HeadLayout:
    """A task head as a family's ``*For*`` class lays it out.

    ``features``: what the head reads: ``"pooled"`` (the backbone's pooler output), ``"first_token"`` (the
    hidden state of ``[CLS]``/``<s>``), ``"mean"`` (the mean of the non-padding hidden states: ModernBERT's
    ``classifier_pooling="mean"``) or ``"tokens"`` (every hidden state). ``hidden``: an optional
    ``(hf_prefix, activation)`` Dense of the hidden size before the output (RoBERTa's ``classifier.dense``
    with tanh, DistilBERT's ``pre_classifier`` with ReLU, ELECTRA's with GELU). ``output``: the prefix of the
    Dense that gives the logits. ``dropout_first``: dropout before the hidden Dense as well as after it
    (RoBERTa, ELECTRA), or only after it (DistilBERT). ``dropout``: whether the head has dropout at all
    (``BertForQuestionAnswering`` has none). ``hidden_bias``: whether the hidden Dense has a bias. ``norm``: an
    optional ``(hf_prefix, epsilon, center)`` LayerNorm after the hidden Dense's activation (ModernBERT's
    ``head.norm``; ``center``: whether it has a bias).
    """

    features: str = "tokens"
    output: str = "classifier"
    hidden: tuple[str, str] | None = None
    dropout_first: bool = True
    dropout: bool = True
    hidden_bias: bool = True
    norm: tuple[str, float, bool] | None = None

    @property
    def prefixes(self) -> tuple[str, ...]:
        """Hugging Face prefixes of the head's layers, in order (the last gives the logits)."""
        return ((self.hidden[0],) if self.hidden else ()) + ((self.norm[0],) if self.norm else ()) + (self.output,)


TOKEN_HEAD = HeadLayout("tokens", "classifier")
SPAN_HEAD = HeadLayout("tokens", "qa_outputs", dropout=False)
POOLER_HEAD = HeadLayout("pooled", "classifier")


class Family:
    """Base class of a family package's ``FAMILY`` (see the module docstring). Defaults are BERT's."""

    model_type: ClassVar[str]
    weight_prefix: ClassVar[str]  # the encoder's tensor prefix in ``*For*`` checkpoints ("bert.")
    class_prefix: ClassVar[str]  # the start of its ``architectures`` names ("Bert")
    tokenizer_files: ClassVar[tuple[str, ...]]  # copied into a saved checkpoint
    config_keys: ClassVar[dict[str, str]] = {}  # EncoderConfig field -> this family's config.json key
    config_defaults: ClassVar[dict[str, Any]] = {}  # transformers' config defaults where they differ from BERT's
    fixed_config: ClassVar[dict[str, Any]] = {}  # fields the family's config.json never has (values it hard-codes)
    layer_prefix: ClassVar[str] = "encoder.layer."  # weights of encoder layer i: "<layer_prefix>i."
    embedding_prefixes: ClassVar[tuple[str, ...]] = ("embeddings.",)  # weights below the first layer
    heads: ClassVar[dict[str, HeadLayout]] = {"ForSequenceClassification": POOLER_HEAD,
                                              "ForTokenClassification": TOKEN_HEAD,
                                              "ForQuestionAnswering": SPAN_HEAD}

    # --- config.json ---------------------------------------------------------------------------
    def normalised(self, raw: dict[str, Any], source: str) -> dict[str, Any]:
        """``raw`` with transformers' defaults filled in and the family's keys renamed to kbert's; a family
        checks here what it does not support (raising :class:`~kbert.errors.UnsupportedModelError`)."""
        raw = {**self.config_defaults, **raw}
        renamed = {_rename(key, {v: k for k, v in self.config_keys.items()}): value for key, value in raw.items()}
        return {**renamed, **self.fixed_config}

    def hf_config(self, normalised: dict[str, Any]) -> dict[str, Any]:
        """The inverse of :meth:`normalised`: the family's own ``config.json`` keys, without its fixed fields."""
        return {_rename(key, self.config_keys): value for key, value in normalised.items()
                if key not in self.fixed_config}

    def position_offset(self, config) -> int:
        """Position id of the first token (BERT: 0; RoBERTa: ``pad_token_id + 1``)."""
        return 0

    # --- backbone and weights ------------------------------------------------------------------
    def build_backbone(self, config, *, use_pooler: bool, dtype=None, random_init: bool = True):
        """A Keras backbone with inputs ``token_ids``, ``segment_ids``, ``padding_mask`` and outputs
        ``sequence_output`` (and ``pooled_output`` with ``use_pooler``); ``random_init=False``: weights a
        checkpoint will overwrite may start at zero."""
        from kbert.modeling.backbone import EncoderBackbone

        return EncoderBackbone.from_encoder_config(config, use_pooler=use_pooler, dtype=dtype,
                                                   positions_pad_id=None, random_init=random_init)

    def backbone_slots(self, backbone) -> list:
        """:class:`~kbert.models.weights.WeightSlot` s of every backbone variable, canonical Hugging Face names."""
        raise NotImplementedError

    def canonical_name(self, name: str) -> str:
        """A checkpoint's tensor name without the encoder prefix of ``*For*`` models, TF1-era LayerNorm names fixed."""
        if name.startswith(self.weight_prefix):
            name = name[len(self.weight_prefix):]
        return re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name))

    def checkpoint_name(self, canonical: str) -> str:
        """The name to write in a saved ``*For*`` checkpoint: encoder weights get :attr:`weight_prefix`."""
        is_head = any(canonical.startswith(p + ".") for layout in self.heads.values() for p in layout.prefixes)
        return canonical if is_head else self.weight_prefix + canonical

    def is_head_tensor(self, canonical: str) -> bool:
        """Tensors of task or pre-training heads, which the backbone does not load."""
        return canonical.startswith(_HEAD_PREFIXES)

    # --- tokenizer -----------------------------------------------------------------------------
    def tokenizer(self, folder, config):
        """The folder's tokenizer (see :class:`kbert.tokenizer.protocol.Tokenizer`)."""
        raise NotImplementedError

    # --- task heads ----------------------------------------------------------------------------
    def architecture(self, head: str) -> str:
        """The ``architectures`` name of a head suffix (``"ForTokenClassification"``) in this family."""
        return self.class_prefix + head

    def head_layout(self, head: str, config=None) -> HeadLayout:
        """How this family's ``*<head>`` model lays out its head (``head``: ``"ForSequenceClassification"`` ...);
        ``config`` (the checkpoint's :class:`~kbert.checkpoint.config.EncoderConfig`), for families whose head
        depends on it (DeBERTa's ``pooler_hidden_act``; ModernBERT's pooling, biases and epsilon); without it, the
        :attr:`heads` entry."""
        return self.heads[head]

    def head_dropout(self, config, head: str) -> float:
        """The dropout rate of a head, as transformers picks it: ``classifier_dropout`` when the config sets it
        (0.0 included), else ``hidden_dropout_prob``."""
        dropout = config.extra.get("classifier_dropout")
        return config.hidden_dropout_prob if dropout is None else dropout

    # --- training ------------------------------------------------------------------------------
    def layer_depth(self, canonical: str, num_layers: int) -> int | None:
        """How far below the head a weight sits, for layer-wise learning-rate decay: encoder layer ``i`` is
        ``num_layers - i`` deep, the embeddings ``num_layers + 1``; ``None`` for the pooler and heads."""
        if canonical.startswith(self.embedding_prefixes):
            return num_layers + 1
        if canonical.startswith(self.layer_prefix):
            return num_layers - int(canonical[len(self.layer_prefix):].split(".")[0])
        return None

    def __repr__(self) -> str:
        return f"<family {self.model_type}>"


# Task heads, and pre-training heads (masked LM, ELECTRA's discriminator) that the backbone never loads.
_HEAD_PREFIXES = ("classifier.", "qa_outputs.", "pre_classifier.", "cls.", "lm_head.", "discriminator_predictions.",
                  "generator_predictions.", "generator_lm_head.", "vocab_transform.", "vocab_layer_norm.",
                  "vocab_projector.")


def _rename(key: str, mapping: dict[str, str]) -> str:
    return mapping.get(key, key)

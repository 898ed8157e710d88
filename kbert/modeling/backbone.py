"""The post-norm Transformer encoder of BERT, RoBERTa, DistilBERT and ELECTRA as a keras-hub ``Backbone``
that honours every Hugging Face config field.

Same layer names and inputs/outputs as ``keras_hub.models.BertBackbone`` (so keras-hub tasks and
tools work on it), plus what keras-hub hard-codes: the activation (HF ``"gelu"`` is exact erf,
keras-hub uses tanh), ``layer_norm_epsilon``, and an optional pooler (most NER / QA checkpoints
have none). The families differ only in options: RoBERTa numbers positions from the padding id
(``positions_pad_id``, :mod:`kbert.modeling.positions`); DistilBERT has no token types
(``num_segments=0``); ELECTRA's embeddings are narrower than the encoder (``embedding_dim``, then
``embeddings_project``); ALBERT always projects them (``project_embeddings``) and applies one layer at every
depth (``share_layers``). Which Hugging Face names the layers carry is each family's
(``kbert.models.<family>``).

Example:
    >>> import numpy as np
    >>> from kbert.modeling.backbone import EncoderBackbone
    >>> backbone = EncoderBackbone(vocabulary_size=100, num_layers=2, num_heads=4, hidden_dim=32,
    ...                         intermediate_dim=37, max_sequence_length=64)
    >>> out = backbone({"token_ids": np.ones((1, 5), "int32"), "segment_ids": np.zeros((1, 5), "int32"),
    ...                 "padding_mask": np.ones((1, 5), "int32")})
    >>> tuple(out["sequence_output"].shape), tuple(out["pooled_output"].shape)
    ((1, 5, 32), (1, 32))
"""

from __future__ import annotations

import keras
from keras.layers import ReversibleEmbedding
from keras_hub.layers import PositionEmbedding, TransformerEncoder
from keras_hub.models import Backbone

from kbert.modeling.activations import get_activation
from kbert.modeling.positions import PaddingAwarePositionEmbedding


def hf_initializer(stddev: float = 0.02) -> keras.initializers.Initializer:
    """New weights as Hugging Face's ``_init_weights`` draws them: normal(0, ``initializer_range``), not truncated.

    A truncated normal at 2 sd (Keras's and keras-hub's habit) has a 12 % smaller spread, so a new head
    would start differently from the one ``transformers`` gives the same checkpoint.
    """
    return keras.initializers.RandomNormal(stddev=stddev)


class KbertBackbone(Backbone):
    """What kbert's backbones share: the inputs every task feeds (``token_ids``, ``segment_ids``, ``padding_mask``,
    int32 ``(B, T)``), the optional tanh pooler on token 0, the outputs, and ``get_config`` over
    :attr:`CONFIG_KEYS`. A subclass makes its layers, then calls :meth:`finish` with its sequence output."""

    CONFIG_KEYS: tuple[str, ...] = ()

    @staticmethod
    def new_inputs() -> dict:
        return {name: keras.Input(shape=(None,), dtype="int32", name=name)
                for name in ("token_ids", "segment_ids", "padding_mask")}

    @staticmethod
    def new_pooler(hidden_dim: int, initializer_range: float, dtype, use_pooler: bool):
        """The tanh Dense on token 0 (``pooler.dense``); ``None`` without a pooler."""
        return keras.layers.Dense(hidden_dim, kernel_initializer=hf_initializer(initializer_range), activation="tanh",
                                  dtype=dtype, name="pooled_dense") if use_pooler else None

    def finish(self, inputs: dict, sequence_output, settings: dict, *, dtype, **kwargs) -> None:
        """Build the functional model (``pooled_output`` too when there is a pooler) and keep ``settings``'
        :attr:`CONFIG_KEYS` (the constructor's arguments) for ``get_config``."""
        outputs = {"sequence_output": sequence_output}
        if self.pooled_dense is not None:
            outputs["pooled_output"] = self.pooled_dense(sequence_output[:, 0, :])  # (B, H)
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)
        for key in self.CONFIG_KEYS:
            setattr(self, key, settings[key])

    def get_config(self):
        config = super().get_config()
        config.update({key: getattr(self, key) for key in self.CONFIG_KEYS})
        return config


@keras.saving.register_keras_serializable(package="kbert")
class EncoderBackbone(KbertBackbone):
    """A BERT-style (post-norm) encoder with Hugging Face's numerics.

    Args:
        vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim: the architecture.
        hidden_act: Hugging Face activation name (``"gelu"``, ``"gelu_new"``, ``"relu"`` ...).
        layer_norm_epsilon: ``layer_norm_eps`` of the checkpoint.
        dropout: hidden and attention dropout during training.
        max_sequence_length: ``max_position_embeddings``.
        num_segments: ``type_vocab_size``; 0: no segment embedding (``segment_ids`` are accepted and unused,
            so every family's model takes the same inputs).
        embedding_dim: width of the embeddings (ELECTRA's ``embedding_size``); when it differs from
            ``hidden_dim`` a Dense ``embeddings_project`` maps them to the encoder's width.
        project_embeddings: ``True``: the ``embeddings_project`` Dense even when the widths are equal (ALBERT's
            ``embedding_hidden_mapping_in`` always exists); ``None``: only when they differ.
        share_layers: one encoder layer applied ``num_layers`` times (ALBERT's single layer group);
            ``transformer_layers`` then holds that one layer.
        use_pooler: add the tanh Dense on ``[CLS]`` that produces ``pooled_output``.
        initializer_range: stddev of the normal initialisation of new weights (:func:`hf_initializer`).
        positions_pad_id: ``None`` for BERT's positions ``0..T-1``; RoBERTa's ``pad_token_id``: positions
            counted from ``pad_token_id + 1`` over the non-padding ids, as transformers does.
        weights_initializer: how the embeddings and the encoder's kernels start; default
            :func:`hf_initializer`. Not part of the config. :meth:`from_encoder_config` passes ``Zeros`` when a
            checkpoint will overwrite every one of them: building and loading MiniLM took 0.43 s with the
            draw of its 22.7M random numbers and 0.29 s without (measured 2026-12-06, quiet 2-core CPU).

    Inputs are ``token_ids``, ``segment_ids`` and ``padding_mask`` (int32, ``(B, T)``; masks as int
    so that ``MirroredStrategy`` can all-reduce them); outputs ``sequence_output`` ``(B, T, H)`` and,
    with a pooler, ``pooled_output`` ``(B, H)``.
    """

    CONFIG_KEYS = ("vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim", "hidden_act",
                   "layer_norm_epsilon", "dropout", "max_sequence_length", "num_segments", "use_pooler",
                   "initializer_range", "positions_pad_id", "embedding_dim", "project_embeddings", "share_layers")

    def __init__(self, vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim, *,
                 hidden_act="gelu", layer_norm_epsilon=1e-12, dropout=0.1, max_sequence_length=512,
                 num_segments=2, use_pooler=True, initializer_range=0.02, positions_pad_id=None, dtype=None,
                 weights_initializer=None, embedding_dim=None, project_embeddings=None, share_layers=False,
                 **kwargs):
        def weights():  # a new initializer per layer, as Keras expects of seeded ones
            return weights_initializer or hf_initializer(initializer_range)

        width = embedding_dim or hidden_dim
        # === Layers (names as keras_hub.models.BertBackbone) ===
        self.token_embedding = ReversibleEmbedding(
            input_dim=vocabulary_size, output_dim=width, embeddings_initializer=weights(),
            dtype=dtype, name="token_embedding")
        if positions_pad_id is None:
            self.position_embedding = PositionEmbedding(
                initializer=weights(), sequence_length=max_sequence_length, dtype=dtype,
                name="position_embedding")
        else:
            self.position_embedding = PaddingAwarePositionEmbedding(
                sequence_length=max_sequence_length, hidden_dim=width, pad_token_id=positions_pad_id,
                initializer=weights(), dtype=dtype, name="position_embedding")
        self.segment_embedding = keras.layers.Embedding(
            input_dim=num_segments, output_dim=width, embeddings_initializer=weights(),
            dtype=dtype, name="segment_embedding") if num_segments else None
        self.embeddings_add = keras.layers.Add(dtype=dtype, name="embeddings_add")
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            axis=-1, epsilon=layer_norm_epsilon, dtype=dtype, name="embeddings_layer_norm")
        self.embeddings_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="embeddings_dropout")
        self.embeddings_project = keras.layers.Dense(
            hidden_dim, kernel_initializer=weights(), dtype=dtype,
            name="embeddings_project") if project_embeddings or width != hidden_dim else None
        self.transformer_layers = [
            TransformerEncoder(
                num_heads=num_heads, intermediate_dim=intermediate_dim, activation=get_activation(hidden_act),
                dropout=dropout, layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=weights(), dtype=dtype, name=f"transformer_layer_{i}")
            for i in range(1 if share_layers else num_layers)
        ]
        self.pooled_dense = self.new_pooler(hidden_dim, initializer_range, dtype, use_pooler)

        # === Functional model ===
        inputs = self.new_inputs()
        token_ids, segment_ids, padding_mask = inputs["token_ids"], inputs["segment_ids"], inputs["padding_mask"]
        tokens = self.token_embedding(token_ids)  # (B, T, H)
        positions = self.position_embedding(tokens if positions_pad_id is None else token_ids)
        parts = (tokens, positions) + ((self.segment_embedding(segment_ids),) if self.segment_embedding else ())
        x = self.embeddings_dropout(self.embeddings_layer_norm(self.embeddings_add(parts)))
        if self.embeddings_project is not None:
            x = self.embeddings_project(x)
        for i in range(num_layers):
            x = self.transformer_layers[0 if share_layers else i](x, padding_mask=padding_mask)  # (B, T, H)
        self.finish(inputs, x, locals(), dtype=dtype, **kwargs)

    @classmethod
    def from_encoder_config(cls, config, *, use_pooler: bool = True, dtype=None, positions_pad_id: int | None = None,
                            random_init: bool = True, **options) -> "EncoderBackbone":
        """Build from a :class:`kbert.checkpoint.config.EncoderConfig`, randomly initialised; with
        ``random_init=False`` the embeddings and encoder kernels start at zero (for a caller that loads all of
        them next; the pooler stays random, as a checkpoint may lack it). ``positions_pad_id`` and ``options``
        (``project_embeddings``, ``share_layers``): see the class."""
        return cls(**encoder_arguments(config, dtype=dtype, random_init=random_init),
                   num_segments=config.type_vocab_size, use_pooler=use_pooler, positions_pad_id=positions_pad_id,
                   embedding_dim=config.embedding_size, **options)


def encoder_arguments(config, *, dtype=None, random_init: bool = True) -> dict:
    """The backbone arguments every family reads alike from a :class:`kbert.checkpoint.config.EncoderConfig`: the
    sizes, activation, layer-norm epsilon, dropout, position count, initialiser (zeros with ``random_init=False``)
    and dtype."""
    return dict(vocabulary_size=config.vocab_size, num_layers=config.num_hidden_layers,
                num_heads=config.num_attention_heads, hidden_dim=config.hidden_size,
                intermediate_dim=config.intermediate_size, hidden_act=config.hidden_act,
                layer_norm_epsilon=config.layer_norm_eps, dropout=config.hidden_dropout_prob,
                max_sequence_length=config.max_position_embeddings,
                initializer_range=config.extra.get("initializer_range", 0.02), dtype=dtype,
                weights_initializer=None if random_init else keras.initializers.Zeros())

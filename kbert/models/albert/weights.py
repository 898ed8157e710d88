"""ALBERT's Hugging Face weight names over :class:`~kbert.modeling.backbone.EncoderBackbone` with ``share_layers``:
BERT's embeddings, ``encoder.embedding_hidden_mapping_in``, the one shared layer's parts, the pooler.

Example:
    >>> from kbert.models.albert.weights import layer_names
    >>> layer_names(0)["output"]
    'encoder.albert_layer_groups.0.albert_layers.0.attention.dense'
    >>> layer_names(0)["output_norm"]
    'encoder.albert_layer_groups.0.albert_layers.0.full_layer_layer_norm'
"""

from __future__ import annotations

import dataclasses

from kbert.models.bert.weights import encoder_slots
from kbert.models.weights import WeightSlot

_PROJECTION = ("embeddings_project.", "encoder.embedding_hidden_mapping_in.")


def layer_names(i: int) -> dict[str, str]:
    """Hugging Face prefixes of the shared layer's parts (``i`` is always 0: the backbone holds one layer)."""
    p = f"encoder.albert_layer_groups.{i}.albert_layers.0"
    return {"query": f"{p}.attention.query", "key": f"{p}.attention.key", "value": f"{p}.attention.value",
            "output": f"{p}.attention.dense", "attention_norm": f"{p}.attention.LayerNorm",
            "intermediate": f"{p}.ffn", "ffn_output": f"{p}.ffn_output", "output_norm": f"{p}.full_layer_layer_norm"}


def backbone_slots(backbone) -> list[WeightSlot]:
    """Slots of every variable, canonical names (the pooler as ``pooler.dense``, see :mod:`kbert.models.albert`)."""
    return [dataclasses.replace(s, hf_name=s.hf_name.replace(*_PROJECTION)) if s.hf_name.startswith(_PROJECTION[0])
            else s for s in encoder_slots(backbone, layer_names)]

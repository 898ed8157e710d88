"""BERT's Hugging Face weight names over :class:`~kbert.modeling.backbone.EncoderBackbone` (RoBERTa and ELECTRA
use the same names).

Example:
    >>> from kbert.checkpoint import load_checkpoint
    >>> from kbert.models.bert.weights import encoder_slots
    >>> slots = encoder_slots(load_checkpoint("tests/fixtures/checkpoints/tiny-uncased-cls").build_backbone())
    >>> slots[0].hf_name, slots[-1].hf_name
    ('embeddings.word_embeddings.weight', 'pooler.dense.bias')
"""

from __future__ import annotations

from kbert.models.weights import WeightSlot, dense_slots, layer_norm_slots, linear_out, slot


def embedding_slots(backbone) -> list[WeightSlot]:
    slots = [slot("embeddings.word_embeddings.weight", backbone.token_embedding.embeddings),
             slot("embeddings.position_embeddings.weight", backbone.position_embedding.position_embeddings)]
    if backbone.segment_embedding is not None:
        slots.append(slot("embeddings.token_type_embeddings.weight", backbone.segment_embedding.embeddings))
    return slots + layer_norm_slots("embeddings.LayerNorm", backbone.embeddings_layer_norm)


def layer_names(i: int) -> dict[str, str]:
    """Hugging Face prefixes of encoder layer ``i``'s parts, BERT's names."""
    p = f"encoder.layer.{i}"
    return {"query": f"{p}.attention.self.query", "key": f"{p}.attention.self.key",
            "value": f"{p}.attention.self.value", "output": f"{p}.attention.output.dense",
            "attention_norm": f"{p}.attention.output.LayerNorm", "intermediate": f"{p}.intermediate.dense",
            "ffn_output": f"{p}.output.dense", "output_norm": f"{p}.output.LayerNorm"}


def encoder_slots(backbone, names=layer_names) -> list[WeightSlot]:
    """Slots of every variable of an :class:`~kbert.modeling.backbone.EncoderBackbone`: BERT's embedding and
    pooler names, and ``names(i)`` (a function like :func:`layer_names`) for the parts of layer ``i``."""
    slots = embedding_slots(backbone)
    for i, block in enumerate(backbone.transformer_layers):
        p, attention = names(i), block._self_attention_layer
        slots += [
            *dense_slots(p["query"], attention.query_dense),
            *dense_slots(p["key"], attention.key_dense),
            *dense_slots(p["value"], attention.value_dense),
            *dense_slots(p["output"], attention.output_dense, kind=linear_out),
            *layer_norm_slots(p["attention_norm"], block._self_attention_layer_norm),
            *dense_slots(p["intermediate"], block._feedforward_intermediate_dense),
            *dense_slots(p["ffn_output"], block._feedforward_output_dense),
            *layer_norm_slots(p["output_norm"], block._feedforward_layer_norm),
        ]
    if backbone.embeddings_project is not None:
        slots += dense_slots("embeddings_project", backbone.embeddings_project)
    if backbone.pooled_dense is not None:
        slots += dense_slots("pooler.dense", backbone.pooled_dense)
    return slots

"""Hugging Face ``MPNetModel`` weight names ↔ the variables of :class:`~kbert.models.mpnet.backbone.MPNetBackbone`.

Names are canonical (no ``mpnet.`` prefix). Every kernel is a Keras ``Dense`` ``(in, out)``: the conversion from
PyTorch's ``(out, in)`` is a transpose; embeddings, the relative bias table and LayerNorms are copied as they are.

Example:
    >>> from kbert.models.mpnet.backbone import MPNetBackbone
    >>> backbone = MPNetBackbone(vocabulary_size=100, num_layers=1, num_heads=4, hidden_dim=32,
    ...                          intermediate_dim=37, max_sequence_length=66)
    >>> [s.hf_name for s in backbone_slots(backbone)][4:6]
    ['encoder.relative_attention_bias.weight', 'encoder.layer.0.attention.attn.q.weight']
"""

from __future__ import annotations

from kbert.models.weights import WeightSlot, dense_slots, layer_norm_slots, slot


def backbone_slots(backbone) -> list[WeightSlot]:
    """Slots of every variable of an :class:`~kbert.models.mpnet.backbone.MPNetBackbone`."""
    slots = [
        slot("embeddings.word_embeddings.weight", backbone.token_embedding.embeddings),
        slot("embeddings.position_embeddings.weight", backbone.position_embedding.position_embeddings),
        *layer_norm_slots("embeddings.LayerNorm", backbone.embeddings_layer_norm),
        slot("encoder.relative_attention_bias.weight", backbone.relative_attention_bias.embeddings),
    ]
    for i, block in enumerate(backbone.transformer_layers):
        p = f"encoder.layer.{i}"
        slots += [
            *dense_slots(f"{p}.attention.attn.q", block.q_dense),
            *dense_slots(f"{p}.attention.attn.k", block.k_dense),
            *dense_slots(f"{p}.attention.attn.v", block.v_dense),
            *dense_slots(f"{p}.attention.attn.o", block.o_dense),
            *layer_norm_slots(f"{p}.attention.LayerNorm", block.attention_layer_norm),
            *dense_slots(f"{p}.intermediate.dense", block.intermediate_dense),
            *dense_slots(f"{p}.output.dense", block.output_dense),
            *layer_norm_slots(f"{p}.output.LayerNorm", block.output_layer_norm),
        ]
    if backbone.pooled_dense is not None:
        slots += dense_slots("pooler.dense", backbone.pooled_dense)
    return slots

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

from kbert.checkpoint.hf_names import WeightSlot, _dense, _layer_norm, _slot


def backbone_slots(backbone) -> list[WeightSlot]:
    """Slots of every variable of an :class:`~kbert.models.mpnet.backbone.MPNetBackbone`."""
    slots = [
        _slot("embeddings.word_embeddings.weight", backbone.token_embedding.embeddings),
        _slot("embeddings.position_embeddings.weight", backbone.position_embedding.position_embeddings),
        *_layer_norm("embeddings.LayerNorm", backbone.embeddings_layer_norm),
        _slot("encoder.relative_attention_bias.weight", backbone.relative_attention_bias.embeddings),
    ]
    for i, block in enumerate(backbone.transformer_layers):
        p = f"encoder.layer.{i}"
        slots += [
            *_dense(f"{p}.attention.attn.q", block.q_dense),
            *_dense(f"{p}.attention.attn.k", block.k_dense),
            *_dense(f"{p}.attention.attn.v", block.v_dense),
            *_dense(f"{p}.attention.attn.o", block.o_dense),
            *_layer_norm(f"{p}.attention.LayerNorm", block.attention_layer_norm),
            *_dense(f"{p}.intermediate.dense", block.intermediate_dense),
            *_dense(f"{p}.output.dense", block.output_dense),
            *_layer_norm(f"{p}.output.LayerNorm", block.output_layer_norm),
        ]
    if backbone.pooled_dense is not None:
        slots += _dense("pooler.dense", backbone.pooled_dense)
    return slots

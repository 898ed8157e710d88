"""Hugging Face ``DebertaV2Model`` weight names ↔ the variables of
:class:`~kbert.models.deberta_v2.backbone.DebertaV2Backbone`.

Names are canonical (no ``deberta.`` prefix). Kernels are Keras ``Dense`` ``(in, out)``, transposed from PyTorch's
``(out, in)``; embedding tables and LayerNorms are copied as they are. Only the tensors the config creates are
listed (absolute positions, token types, ``pos_key_proj``/``pos_query_proj``, ``encoder.LayerNorm``).

Example:
    >>> from kbert.models.deberta_v2.backbone import DebertaV2Backbone
    >>> backbone = DebertaV2Backbone(vocabulary_size=100, num_layers=1, num_heads=4, hidden_dim=32,
    ...                              intermediate_dim=37, position_buckets=8)
    >>> [s.hf_name for s in backbone_slots(backbone)][3:6]
    ['encoder.rel_embeddings.weight', 'encoder.LayerNorm.weight', 'encoder.LayerNorm.bias']
"""

from __future__ import annotations

from kbert.models.weights import WeightSlot, dense_slots, layer_norm_slots, slot


def backbone_slots(backbone) -> list[WeightSlot]:
    """Slots of every variable of a :class:`~kbert.models.deberta_v2.backbone.DebertaV2Backbone`."""
    slots = [slot("embeddings.word_embeddings.weight", backbone.token_embedding.embeddings)]
    if backbone.position_embedding is not None:
        slots.append(slot("embeddings.position_embeddings.weight", backbone.position_embedding.position_embeddings))
    if backbone.segment_embedding is not None:
        slots.append(slot("embeddings.token_type_embeddings.weight", backbone.segment_embedding.embeddings))
    slots += layer_norm_slots("embeddings.LayerNorm", backbone.embeddings_layer_norm)
    relative = backbone.relative_embeddings
    if relative is not None:
        slots.append(slot("encoder.rel_embeddings.weight", relative.embeddings))
        if relative.norm is not None:
            slots += layer_norm_slots("encoder.LayerNorm", relative.norm)
    for i, block in enumerate(backbone.transformer_layers):
        p = f"encoder.layer.{i}"
        slots += [*dense_slots(f"{p}.attention.self.query_proj", block.query_dense),
                  *dense_slots(f"{p}.attention.self.key_proj", block.key_dense),
                  *dense_slots(f"{p}.attention.self.value_proj", block.value_dense)]
        if block.pos_key_dense is not None:
            slots += dense_slots(f"{p}.attention.self.pos_key_proj", block.pos_key_dense)
        if block.pos_query_dense is not None:
            slots += dense_slots(f"{p}.attention.self.pos_query_proj", block.pos_query_dense)
        slots += [*dense_slots(f"{p}.attention.output.dense", block.attention_output_dense),
                  *layer_norm_slots(f"{p}.attention.output.LayerNorm", block.attention_layer_norm),
                  *dense_slots(f"{p}.intermediate.dense", block.intermediate_dense),
                  *dense_slots(f"{p}.output.dense", block.output_dense),
                  *layer_norm_slots(f"{p}.output.LayerNorm", block.output_layer_norm)]
    return slots

"""Hugging Face ``ModernBertModel`` weight names ↔ the variables of
:class:`~kbert.models.modernbert.backbone.ModernBertBackbone`.

Names are canonical (no ``model.`` prefix). Kernels are Keras ``Dense`` ``(in, out)`` (a transpose of PyTorch's
``(out, in)``); ``Wqkv`` keeps its fused ``[q | k | v]`` rows and ``mlp.Wi`` its ``[input | gate]`` rows. Biases and
LayerNorm offsets appear only where the config gives them (``attention_bias``, ``mlp_bias``, ``norm_bias``); layer 0
has no ``attn_norm``.
"""

from __future__ import annotations

from kbert.models.weights import WeightSlot, dense_slots, layer_norm_slots, slot


def backbone_slots(backbone) -> list[WeightSlot]:
    """Slots of every variable of a :class:`~kbert.models.modernbert.backbone.ModernBertBackbone`."""
    slots = [slot("embeddings.tok_embeddings.weight", backbone.token_embedding.embeddings),
             *layer_norm_slots("embeddings.norm", backbone.embeddings_layer_norm)]
    for i, layer in enumerate(backbone.transformer_layers):
        p = f"layers.{i}"
        if layer.attn_norm is not None:
            slots += layer_norm_slots(f"{p}.attn_norm", layer.attn_norm)
        slots += [*dense_slots(f"{p}.attn.Wqkv", layer.wqkv), *dense_slots(f"{p}.attn.Wo", layer.attn_wo),
                  *layer_norm_slots(f"{p}.mlp_norm", layer.mlp_norm), *dense_slots(f"{p}.mlp.Wi", layer.wi),
                  *dense_slots(f"{p}.mlp.Wo", layer.mlp_wo)]
    return slots + layer_norm_slots("final_norm", backbone.final_layer_norm)

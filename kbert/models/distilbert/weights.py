"""DistilBERT's Hugging Face weight names over :class:`~kbert.modeling.backbone.EncoderBackbone`.

Example:
    >>> from kbert.models.distilbert.weights import layer_names
    >>> layer_names(0)["query"]
    'transformer.layer.0.attention.q_lin'
"""

from __future__ import annotations


def layer_names(i: int) -> dict[str, str]:
    """Hugging Face prefixes of DistilBERT layer ``i``'s parts (the keys of BERT's :func:`~kbert.models.bert.weights.layer_names`)."""
    p = f"transformer.layer.{i}"
    return {"query": f"{p}.attention.q_lin", "key": f"{p}.attention.k_lin", "value": f"{p}.attention.v_lin",
            "output": f"{p}.attention.out_lin", "attention_norm": f"{p}.sa_layer_norm",
            "intermediate": f"{p}.ffn.lin1", "ffn_output": f"{p}.ffn.lin2", "output_norm": f"{p}.output_layer_norm"}

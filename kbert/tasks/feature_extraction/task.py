"""The feature-extraction task class: the encoder's last hidden states, or one pooled embedding per text.

Default output is Hugging Face's ``feature-extraction`` pipeline shape, ``[1][tokens][hidden]`` per
input (special tokens included). ``pooling="mean" | "cls" | "pooled"`` returns one vector per input
instead (``"mean"`` + ``normalize=True`` is how all-MiniLM-L6-v2 / sentence-transformers embed).

Example:
    >>> import numpy as np
    >>> from kbert.tasks.feature_extraction.task import pool
    >>> pool(np.array([[1.0, 1.0], [3.0, 5.0]]), None, "mean", normalize=False).tolist()
    [2.0, 3.0]
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kbert.errors import InputError
from kbert.tasks.base import ExampleOutput, Task

POOLINGS = ("mean", "cls", "pooled")


def pool(hidden: np.ndarray, pooled: np.ndarray | None, pooling: str, normalize: bool) -> np.ndarray:
    """One vector from one example's ``(T, H)`` hidden states (padding already removed)."""
    if pooling == "mean":
        vector = hidden.mean(axis=0)
    elif pooling == "cls":
        vector = hidden[0]
    else:
        vector = pooled
    if normalize:
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
    return vector


class FeatureExtraction(Task):
    """Last hidden states (``[1][T][H]`` per input) or pooled sentence embeddings."""

    name = "feature-extraction"
    token_level_outputs = ("last_hidden_state",)
    call_parameters = ("pooling", "normalize", "return_tensors")

    def build_model(self, dropout: float | None = None) -> keras.Model:
        backbone = self.checkpoint.build_backbone()
        encoded = backbone(backbone.input)  # nested: the backbone stays one layer of the task model
        outputs = {"last_hidden_state": encoded["sequence_output"]}
        if "pooled_output" in encoded:
            outputs["pooled_output"] = encoded["pooled_output"]
        return keras.Model(backbone.input, outputs, name="feature_extractor")

    def check_parameters(self, params):
        params = self._checked_call(super().check_parameters(params))
        if params["pooling"] == "pooled" and not self.checkpoint.has_pooler:
            raise InputError(f"{self.name}: pooling='pooled' needs pooler weights, which {self.checkpoint.path} lacks")
        return params

    @classmethod
    def _checked_call(cls, params):
        pooling = params.get("pooling")
        if pooling is not None and pooling not in POOLINGS:
            raise InputError(f"{cls.name}: pooling must be one of {list(POOLINGS)} or None, got {pooling!r}")
        return {"pooling": pooling, "normalize": bool(params.get("normalize", False)),
                "return_tensors": bool(params.get("return_tensors", False))}

    def postprocess(self, output: ExampleOutput, pooling=None, normalize=False, return_tensors=False):
        return self._result(output.outputs["last_hidden_state"], output.outputs.get("pooled_output"), pooling,
                            normalize, return_tensors)

    @staticmethod
    def _result(hidden, pooled, pooling, normalize, return_tensors):
        """One example's result from its ``(T, H)`` hidden states (padding removed)."""
        if pooling is not None:
            vector = pool(hidden, pooled, pooling, normalize)
            return vector if return_tensors else vector.tolist()
        return hidden[None] if return_tensors else hidden[None].tolist()  # (1, T, H) as HF

    def serving_outputs(self, outputs, inputs):
        hidden = outputs["last_hidden_state"]  # (B, T, H)
        mask = tf.cast(inputs["padding_mask"], hidden.dtype)[:, :, None]  # (B, T, 1)
        mean = tf.reduce_sum(hidden * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        return {"embedding": mean, "normalized_embedding": tf.math.l2_normalize(mean, axis=-1),
                "last_hidden_state": hidden, "mask": tf.cast(inputs["padding_mask"], tf.int32)}

    @classmethod
    def answers_from_serving(cls, texts, outputs, metadata):
        """``{'text', 'embedding'}``: the mean-pooled vector (the export's ``embedding``)."""
        return [{"text": t, "embedding": vector} for t, vector in zip(texts, outputs["embedding"])]

    serving_call_parameters = call_parameters

    @classmethod
    def check_serving_parameters(cls, params, metadata):
        """All the pipeline's parameters but ``pooling="pooled"`` (the export has no pooler output)."""
        params = cls._checked_call(super().check_serving_parameters(params, metadata))
        if params["pooling"] == "pooled":
            raise InputError(f"{cls.name} export: pooling='pooled' needs the pooler output, which it does not serve; "
                             f"give 'mean' or 'cls'")
        return params

    @classmethod
    def pipeline_outputs_from_serving(cls, examples, outputs, metadata, params):
        """The pipeline's result per text from the served hidden states of its tokens (default ``(1, T, H)``)."""
        results = []
        for hidden, mask in zip(outputs["last_hidden_state"], outputs["mask"]):
            hidden = np.asarray(hidden, np.float32)[np.asarray(mask) > 0]
            results.append(cls._result(hidden, None, params["pooling"], params["normalize"], params["return_tensors"]))
        return results

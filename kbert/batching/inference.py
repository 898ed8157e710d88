"""One traced inference pass over ``(features, labels)`` batches: per-epoch evaluation and ``kbert evaluate``.

Example:
    >>> import numpy as np
    >>> from kbert.checkpoint import load_checkpoint
    >>> from kbert.tasks import get_task
    >>> from kbert.batching.dataset import make_dataset
    >>> from kbert.batching.inference import predict
    >>> checkpoint = load_checkpoint("tests/fixtures/checkpoints/tiny-uncased-cls")
    >>> data = make_dataset(checkpoint.tokenizer, ["good", "bad movie", "great"], None, np.array([1, 0, 1]), batch_size=2)
    >>> logits, labels = predict(get_task("text-classification")(checkpoint).build_model(), data.dataset)
    >>> logits.shape, labels.tolist()
    ((3, 3), [1, 0, 1])
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kbert.progress import progress
from kbert.tokenizer.tracing import own_function


def inference_logits(model, output: str = "logits"):
    """``features -> outputs[output]`` of ``model`` in inference mode, as one ``tf.function`` for every batch shape.

    Called eagerly, a Keras model costs ~0.1 s of Python per batch; traced once, evaluating after every
    epoch stays cheap. The function is kept on the model, so later epochs reuse the trace.
    """
    attribute = f"_kbert_inference_{output}"
    forward = getattr(model, attribute, None)
    if forward is None:
        spec = tf.TensorSpec([None, None], tf.int32)

        def call(token_ids, segment_ids, padding_mask):
            out = model({"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask},
                        training=False)
            return out[output] if isinstance(out, dict) else out

        traced = own_function(call, input_signature=[spec, spec, spec])

        def forward(features):
            return traced(*(tf.cast(features[k], tf.int32) for k in ("token_ids", "segment_ids", "padding_mask")))

        setattr(model, attribute, forward)
    return forward


def predict(model, dataset, output: str = "logits") -> tuple[np.ndarray, np.ndarray]:
    """``output`` (logits) and labels of every batch of ``dataset`` (``(features, labels)`` pairs), in dataset order."""
    logits, labels = predict_rows(model, dataset, output)
    return np.concatenate(logits), np.concatenate(labels)


def predict_rows(model, dataset, output: str = "logits") -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``output`` and labels of every batch of ``dataset`` as lists of per-batch arrays (rows may differ in length)."""
    forward = inference_logits(model, output)
    logits, labels = [], []
    batches = int(dataset.cardinality())
    for features, label in progress(dataset, total=batches if batches >= 0 else None):
        logits.append(np.asarray(forward(features)))
        labels.append(np.asarray(label))
    return logits, labels

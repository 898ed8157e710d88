"""TF Serving warmup requests: the ``assets.extra/tf_serving_warmup_requests`` file of every export.

TF Serving replays these records when it loads a version, before the version is marked AVAILABLE, so
the first users do not pay for the graph's first runs (kernel set-up, memory pools, the tokenizer's
tables). The file is a TFRecord file of ``tensorflow.serving.PredictionLog`` protos, each holding one
``PredictRequest`` (``model_spec.signature_name`` set). Every signature gets three requests, one per
input shape that matters: a short text, a text long enough to be cut at ``max_length`` (in the last
input: the pair's second text, the question-answering context), and a batch of four mixed texts
(accents, CJK, emoji). No empty strings: a request that fails stops TF Serving from loading the version.

Example:
    >>> from kbert.serving.warmup import warmup_inputs
    >>> [{name: [t[:12] for t in texts] for name, texts in request.items()}
    ...  for request in warmup_inputs(["text", "text_pair"], max_length=8)][:2]
    [{'text': ['Hello world!'], 'text_pair': ['Hello world!']}, {'text': ['Hello world!'], 'text_pair': ['hello hello ']}]
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence

WARMUP_FILE = pathlib.Path("assets.extra") / "tf_serving_warmup_requests"  # the name TF Serving looks for
SHORT = "Hello world!"
BATCH = ("I love Paris", "The movie was not good, but the actors were great!", "Café déjà vu, 北京欢迎你",
         "Best day ever 😀🎉")


def warmup_inputs(input_names: Sequence[str], max_length: int) -> list[dict[str, list[str]]]:
    """The inputs of the warmup requests of one signature: short, long (``max_length`` words: at least as
    many tokens) in the last input, and a batch of ``len(BATCH)``."""
    names = list(input_names)
    long_text = " ".join(["hello"] * max_length)
    return [{name: [SHORT] for name in names},
            {**{name: [SHORT] for name in names[:-1]}, names[-1]: [long_text]},
            {name: list(BATCH) for name in names}]


def warmup_requests(signatures: Mapping[str, Sequence[str]], *, max_length: int, model_name: str = "") -> list:
    """One ``PredictionLog`` per request of :func:`warmup_inputs` for each ``signature name -> input names``."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    logs = []
    for signature_name, input_names in signatures.items():
        for inputs in warmup_inputs(input_names, max_length):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature_name
            for name, texts in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(texts, dtype=tf.string))
            logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def write_warmup_requests(version_dir: str | os.PathLike, signatures: Mapping[str, Sequence[str]], *,
                          max_length: int, model_name: str = "") -> pathlib.Path:
    """Write ``version_dir/assets.extra/tf_serving_warmup_requests`` and return its path."""
    import tensorflow as tf

    path = pathlib.Path(version_dir) / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in warmup_requests(signatures, max_length=max_length, model_name=model_name):
            writer.write(log.SerializeToString())
    return path

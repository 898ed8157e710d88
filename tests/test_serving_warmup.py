"""TF Serving warmup requests of an export: official PredictionLog records that the SavedModel answers."""

import json

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

import kbert
from conftest import CHECKPOINTS
from kbert.export import export_saved_model
from kbert.serving.warmup import BATCH, WARMUP_FILE


def read_warmup(version):
    """The file as TF Serving reads it: a TFRecord file of serialized PredictionLog protos."""
    return [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(str(version / WARMUP_FILE))]


def token_count(tokenizer, text):
    return int(tokenizer.encode(tf.constant([text]), max_length=100_000).token_ids.row_lengths()[0])


@pytest.mark.parametrize("checkpoint, options, inputs", [
    ("tiny-uncased-cls", {}, ["text"]),
    ("tiny-relu-pair", {"text_pair": True}, ["text", "text_pair"]),
    ("tiny-uncased-qa", {}, ["question", "context"]),
])
def test_warmup_requests_are_answered_as_direct_calls(tmp_path, checkpoint, options, inputs):
    version = export_saved_model(CHECKPOINTS / checkpoint, tmp_path / "m", **options)
    logs = read_warmup(version)
    assert [log.WhichOneof("log_type") for log in logs] == ["predict_log"] * 3
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    assert sorted(signature.structured_input_signature[1]) == sorted(inputs)
    max_length = json.loads((version / "assets.extra" / "kbert.json").read_text())["max_length"]
    tokenizer = kbert.load_checkpoint(CHECKPOINTS / checkpoint).tokenizer

    sent = []
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "m" and request.model_spec.signature_name == "serving_default"
        assert sorted(request.inputs) == sorted(inputs)
        texts = {k: [s.decode() for s in tf.make_ndarray(request.inputs[k]).tolist()] for k in inputs}
        assert len({len(v) for v in texts.values()}) == 1
        from_proto = signature(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
        direct = signature(**{k: tf.constant(v) for k, v in texts.items()})
        assert sorted(from_proto) == sorted(direct)
        for key in direct:
            np.testing.assert_array_equal(from_proto[key].numpy(), direct[key].numpy())
        sent.append(texts)

    assert [len(t[inputs[0]]) for t in sent] == [1, 1, len(BATCH)]  # short, long, a batch
    long_text = sent[1][inputs[-1]][0]
    assert token_count(tokenizer, long_text) >= max_length  # the last input is cut at max_length
    assert all(token_count(tokenizer, t[name][0]) < 10 for t in sent[:1] for name in inputs)
    assert sent[2][inputs[0]] == list(BATCH) and any(ord(c) > 0x4E00 for c in "".join(BATCH))  # CJK, emoji
    if inputs[0] == "text":  # classifiers: the warmup answers are the pipeline's
        pipe = kbert.pipeline("text-classification", model=CHECKPOINTS / checkpoint)
        for texts in sent:
            got = signature(**{k: tf.constant(v) for k, v in texts.items()})
            rows = [dict(zip(texts, row)) for row in zip(*texts.values())]
            want = pipe([r if len(r) > 1 else r["text"] for r in rows])
            assert [s.decode() for s in got["label"].numpy()] == [w["label"] for w in want]
            np.testing.assert_allclose(got["score"].numpy(), [w["score"] for w in want], atol=1e-5)

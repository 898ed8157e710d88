"""SavedModel export: raw-string signature, served without kbert (only tensorflow + tensorflow_text)."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import kbert
from conftest import CHECKPOINTS, EXPECTED
from fixtures.minilm_heads import assemble_minilm_head
from kbert.export import export_saved_model

# Runs in a fresh interpreter that imports nothing but TensorFlow and tensorflow-text, as TF Serving
# (which links the tensorflow-text ops but has no Python) would see the model.
SERVE = textwrap.dedent("""
    import json, sys
    import tensorflow as tf, tensorflow_text  # noqa: F401
    assert not any(m.split(".")[0] in ("kbert", "keras_hub") for m in sys.modules), "not a bare TF process"
    request = json.loads(sys.argv[2])
    fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
    out = fn(**{k: tf.constant(v, tf.string) for k, v in request.items()})
    def plain(x):
        return [plain(i) for i in x] if isinstance(x, list) else x.decode() if isinstance(x, bytes) else x
    print(json.dumps({k: plain(v.numpy().tolist()) for k, v in out.items()}))
""")


def serve(version_dir, request):
    result = subprocess.run([sys.executable, "-c", SERVE, str(version_dir), json.dumps(request)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


TEXTS = ["I love Paris", "The movie was not good, but the actors were great!", "", "Café 😀 中国人 " * 30]


def test_classifier_export_serves_the_pipeline_outputs(tmp_path):
    version = export_saved_model(CHECKPOINTS / "tiny-uncased-cls", tmp_path / "sentiment")
    assert version == tmp_path / "sentiment" / "1"
    got = serve(version, {"text": TEXTS})
    want = kbert.pipeline("text-classification", model=CHECKPOINTS / "tiny-uncased-cls")(TEXTS, top_k=None)
    labels = ["negative", "neutral", "positive"]
    for i, ranked in enumerate(want):
        assert got["label"][i] == ranked[0]["label"]
        assert got["score"][i] == pytest.approx(ranked[0]["score"], abs=1e-5)
        by_label = {d["label"]: d["score"] for d in ranked}
        np.testing.assert_allclose(got["scores"][i], [by_label[l] for l in labels], atol=1e-5)
    assert np.asarray(got["logits"]).shape == (len(TEXTS), 3)
    metadata = json.loads((version / "assets.extra" / "kbert.json").read_text())
    assert metadata["task"] == "text-classification" and metadata["text_pair"] is False


def test_pair_export_takes_text_pair(tmp_path):
    version = export_saved_model(CHECKPOINTS / "tiny-relu-pair", tmp_path / "nli", text_pair=True)
    pairs = [("A man is playing.", "Someone plays."), ("It rains.", "The sun is out in London today.")]
    got = serve(version, {"text": [a for a, _ in pairs], "text_pair": [b for _, b in pairs]})
    pipe = kbert.pipeline("text-classification", model=CHECKPOINTS / "tiny-relu-pair")
    want = pipe([{"text": a, "text_pair": b} for a, b in pairs])
    assert got["label"] == [w["label"] for w in want]
    np.testing.assert_allclose(got["score"], [w["score"] for w in want], atol=1e-5)


def test_embedding_export_and_empty_batch(tmp_path, minilm_path):
    version = export_saved_model("minilm", tmp_path / "embed")
    got = serve(version, {"text": ["I love Paris", "Hello world!"]})
    want = kbert.pipeline("feature-extraction")(["I love Paris", "Hello world!"], pooling="mean")
    np.testing.assert_allclose(got["embedding"], want, atol=1e-4)
    assert np.asarray(got["last_hidden_state"]).shape == (2, 5, 384)
    empty = serve(version, {"text": []})
    assert empty["embedding"] == [] and empty["mask"] == []


def test_versions_increase_and_failed_exports_leave_nothing(tmp_path, monkeypatch):
    base = tmp_path / "m"
    (base / "7").mkdir(parents=True)  # an existing version, as TF Serving lays them out
    assert export_saved_model(CHECKPOINTS / "tiny-regression", base).name == "8"

    def crash(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(CHECKPOINTS / "tiny-regression", base)
    assert sorted(p.name for p in base.iterdir()) == ["7", "8"]  # no half-written version, no temp folder


def test_export_of_a_missing_model_writes_nothing(tmp_path):
    with pytest.raises(kbert.errors.CheckpointNotFoundError, match="no-such-model: no such checkpoint folder"):
        export_saved_model(tmp_path / "no-such-model", tmp_path / "out")
    assert not (tmp_path / "out").exists()


TOKEN_CASES = json.loads((EXPECTED / "token_pipelines.json").read_text())["cases"]


@pytest.mark.parametrize("name", ["tiny-cased-token-cls", "minilm-ner-head"])
def test_token_classifier_export_groups_entities_in_the_graph(tmp_path, name, minilm_path):
    """Per-token labels/scores/offsets and the in-graph "simple" groups equal the pipeline's and HF's."""
    folder = CHECKPOINTS / name
    if name == "minilm-ner-head":
        folder = assemble_minilm_head(folder, minilm_path, tmp_path / "ckpt")
    version = export_saved_model(folder, tmp_path / "ner")  # task picked from BertForTokenClassification
    assert json.loads((version / "assets.extra" / "kbert.json").read_text())["task"] == "token-classification"
    simple = {c["inputs"]: c["output"] for c in TOKEN_CASES if c["checkpoint"] == name and isinstance(c["inputs"], str)
              and c["kwargs"] == {"aggregation_strategy": "simple"}}
    texts = list(simple)
    got = serve(version, {"text": texts})
    pipe = kbert.pipeline("ner", model=folder)
    tokens = pipe(texts, ignore_labels=[])
    for b, text in enumerate(texts):
        want = simple[text]  # transformers' own output
        count = got["entity_count"][b]
        assert count == len(want), text
        for k, entity in enumerate(want):
            assert got["entity_group"][b][k] == entity["entity_group"]
            assert got["entity_word"][b][k] == entity["word"]
            assert (got["entity_start"][b][k], got["entity_end"][b][k]) == (entity["start"], entity["end"])
            assert got["entity_score"][b][k] == pytest.approx(entity["score"], abs=1e-4)
        assert got["entity_group"][b][count:] == [""] * (len(got["entity_group"][b]) - count)
        assert sum(got["mask"][b]) == len(tokens[b])  # every non-special token, nothing else
        for entity in tokens[b]:
            i = entity["index"]
            assert got["mask"][b][i] == 1 and got["entity_label"][b][i] == entity["entity"]
            assert (got["start"][b][i], got["end"][b][i]) == (entity["start"], entity["end"])
            assert got["score"][b][i] == pytest.approx(entity["score"], abs=1e-5)


QA_INPUTS = {"question": ["Where does Sinan live?", "Who lives in Boston?", "What is it?", "Où vit Zoë ?"],
             "context": ["Sinan lives in California but Matt lives in Boston.",
                         "Sinan lives in California but Matt lives in Boston. " * 12,  # several windows
                         "Café 😀 中国人 naïve résumé", "Zoë vit à Montréal, au Québec."]}


@pytest.mark.parametrize("name", ["tiny-uncased-qa", "kbert-trained-tiny-qa"])
def test_question_answering_export_answers_raw_strings_as_the_pipeline(tmp_path, name):
    """Windows, the model, span decoding and the no-answer rule in the graph: the pipeline's answers."""
    version = export_saved_model(CHECKPOINTS / name, tmp_path / "qa")
    got = serve(version, QA_INPUTS)
    pipe = kbert.pipeline("question-answering", model=CHECKPOINTS / name, max_length=64)
    impossible = name == "kbert-trained-tiny-qa"  # trained with version_2_with_negative
    best = pipe(**QA_INPUTS, handle_impossible_answer=impossible)
    ranked = pipe(**QA_INPUTS, top_k=5, handle_impossible_answer=impossible)
    for b, want in enumerate(best):
        assert (got["answer"][b], got["start"][b], got["end"][b]) == (want["answer"], want["start"], want["end"])
        assert got["score"][b] == pytest.approx(want["score"], rel=1e-4)
        want_ranked = [a for a in (ranked[b] if isinstance(ranked[b], list) else [ranked[b]])
                       if a["score"] > 0 or a["answer"] == ""]
        assert got["count"][b] == len(want_ranked)
        assert got["top_k_answer"][b][:len(want_ranked)] == [a["answer"] for a in want_ranked]
    metadata = json.loads((version / "assets.extra" / "kbert.json").read_text())
    assert metadata["task"] == "question-answering" and metadata["inputs"] == ["question", "context"]

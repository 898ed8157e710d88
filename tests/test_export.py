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
# (which links the tensorflow-text ops but has no Python) would see the model. It reads a list of requests
# on stdin and prints a list of outputs, or {"error": message} where the graph refuses the request.
SERVE = textwrap.dedent("""
    import json, sys
    import tensorflow as tf, tensorflow_text  # noqa: F401
    assert not any(m.split(".")[0] in ("kbert", "keras_hub") for m in sys.modules), "not a bare TF process"
    fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
    def plain(x):
        return [plain(i) for i in x] if isinstance(x, list) else x.decode() if isinstance(x, bytes) else x
    def answer(request):
        try:
            out = fn(**{k: tf.constant(v, tf.string, shape=[len(v)]) for k, v in request.items()})
        except tf.errors.InvalidArgumentError as err:
            return {"error": err.message}
        return {k: plain(v.numpy().tolist()) for k, v in out.items()}
    print(json.dumps([answer(request) for request in json.loads(sys.stdin.read())]))
""")


def serve_many(version_dir, requests: list[dict]) -> list[dict]:
    """Outputs of ``requests`` (dicts of string lists), all served by one bare TensorFlow process."""
    result = subprocess.run([sys.executable, "-c", SERVE, str(version_dir)], input=json.dumps(requests),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def serve(version_dir, request):
    [outputs] = serve_many(version_dir, [request])
    assert "error" not in outputs, outputs["error"]
    return outputs


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
        assert_entities(got, b, simple[text])  # transformers' own output
        assert_tokens(got, b, tokens[b])


EXPORTED_ENTITIES = 64  # the export returns at most this many groups per text (README: Limitations)


def assert_entities(got: dict, b: int, want: list[dict]):
    """Row ``b`` of a token-classification export's ``entity_*`` outputs holds the groups ``want`` (the first
    :data:`EXPORTED_ENTITIES` of them), then padding."""
    want = want[:EXPORTED_ENTITIES]
    count = got["entity_count"][b]
    assert count == len(want), want
    for k, entity in enumerate(want):
        assert got["entity_group"][b][k] == entity["entity_group"]
        assert got["entity_word"][b][k] == entity["word"]
        assert (got["entity_start"][b][k], got["entity_end"][b][k]) == (entity["start"], entity["end"])
        assert got["entity_score"][b][k] == pytest.approx(entity["score"], abs=1e-4)
    assert got["entity_group"][b][count:] == [""] * (len(got["entity_group"][b]) - count)


def assert_tokens(got: dict, b: int, tokens: list[dict]):
    """Row ``b`` of a token-classification export's per-token outputs is the pipeline's ``ignore_labels=[]``."""
    assert sum(got["mask"][b]) == len(tokens)  # every non-special token, nothing else
    for entity in tokens:
        i = entity["index"]
        assert got["mask"][b][i] == 1 and got["entity_label"][b][i] == entity["entity"]
        assert (got["start"][b][i], got["end"][b][i]) == (entity["start"], entity["end"])
        assert got["score"][b][i] == pytest.approx(entity["score"], abs=1e-5)


QA_INPUTS = {"question": ["Where does Sinan live?", "Who lives in Boston?", "What is it?", "Où vit Zoë ?", "where?",
                          "Where is Boston?", "Which city?"],
             "context": ["Sinan lives in California but Matt lives in Boston.",
                         "Sinan lives in California but Matt lives in Boston. " * 12,  # several windows
                         "Café 😀 中国人 naïve résumé", "Zoë vit à Montréal, au Québec.",
                         # pipe(top_k=3) is not pipe(top_k=5)[:3] here: "Boston" merges more spans with more candidates
                         "Sinan lives in California but Matt lives in Boston.",
                         "Boston is big, boston is old and BOSTON is cold.",  # one answer text, three times
                         "Matt likes Boston. Sinan likes boston. " * 8]}  # several windows, each with both


@pytest.mark.parametrize("name", ["tiny-uncased-qa", "kbert-trained-tiny-qa"])
def test_question_answering_export_answers_raw_strings_as_the_pipeline(tmp_path, name):
    """Windows, the model, span decoding and the no-answer rule in the graph: the pipeline's answers."""
    version = export_saved_model(CHECKPOINTS / name, tmp_path / "qa")
    got = serve(version, QA_INPUTS)
    pipe = kbert.pipeline("question-answering", model=CHECKPOINTS / name, max_length=64)
    assert_answers(got, pipe, QA_INPUTS, impossible=name == "kbert-trained-tiny-qa")  # version_2_with_negative
    metadata = json.loads((version / "assets.extra" / "kbert.json").read_text())
    assert metadata["task"] == "question-answering" and metadata["inputs"] == ["question", "context"]


def assert_answers(got: dict, pipe, inputs: dict, *, impossible: bool):
    """A question-answering export's outputs ``got`` for ``inputs`` are ``pipe``'s answers.

    ``answer``/``start``/``end``/``score`` are the default call's; :func:`exported_ranked_answers` for every
    ``top_k`` from 1 to 5 are ``pipe(..., top_k=top_k)``'s. Answers scoring 0 are left out
    (:mod:`kbert.tasks.question_answering.answers_graph`), so a question the pipeline gives no positive answer
    gets ``""``, -1, -1, 0 and a count of 0.
    """
    def positive(results):  # per question, its answers with a score > 0 (the null answer's is > 0)
        results = [results] if len(inputs["question"]) == 1 else results
        return [[a for a in (r if isinstance(r, list) else [r]) if a["score"] > 0] for r in results]

    best = positive(pipe(**inputs, handle_impossible_answer=impossible))
    for b, want in enumerate(best):
        what = f"question {b}: {inputs['question'][b]!r} on {inputs['context'][b][:40]!r}"
        want = want[0] if want else {"answer": "", "start": -1, "end": -1, "score": 0.0}
        assert (got["answer"][b], got["start"][b], got["end"][b]) == (want["answer"], want["start"], want["end"]), what
        assert got["score"][b] == pytest.approx(want["score"], rel=1e-4), what
    for top_k in range(1, 6):
        ranked = positive(pipe(**inputs, top_k=top_k, handle_impossible_answer=impossible))
        for b, want in enumerate(ranked):
            what = f"top_k={top_k}, question {b}: {inputs['question'][b]!r} on {inputs['context'][b][:40]!r}"
            answers = exported_ranked_answers(got, b, top_k)
            assert [(a["answer"], a["start"], a["end"]) for a in answers] == \
                [(a["answer"], a["start"], a["end"]) for a in want], what
            # float32 logits of windows padded and batched otherwise than the pipeline's: ~1e-6 relative apart
            np.testing.assert_allclose([a["score"] for a in answers], [a["score"] for a in want], rtol=1e-5,
                                       err_msg=what)
    assert len(got["answer"]) == len(best)


def exported_ranked_answers(got: dict, b: int, top_k: int) -> list[dict]:
    """Question ``b``'s answers for ``top_k`` in an export's outputs: row ``top_k - 1`` of its ``top_k_*``."""
    row, keys = top_k - 1, ("score", "start", "end", "answer")
    assert all(got[f"top_k_{k}"][b][row][got["count"][b][row]:] == [default] * (5 - got["count"][b][row])
               for k, default in zip(keys, (0.0, -1, -1, "")))  # padding
    return [{k: got[f"top_k_{k}"][b][row][j] for k in keys} for j in range(got["count"][b][row])]

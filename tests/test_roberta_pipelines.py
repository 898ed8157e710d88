"""Every task on RoBERTa checkpoints as on BERT: pipelines (transformers' outputs verbatim), training, export.

Pipeline references are transformers 4.57's own calls on the tiny ``RobertaFor*`` fixtures
(tests/fixtures/make_roberta_fixtures.py): byte-level words (``" San Francisco"``), the subword
heuristic of non-word-aware tokenizers, and pre-tokenizer words for ``align_to_words``.
"""

import json

import numpy as np
import pytest

import kbert
from conftest import CHECKPOINTS, EXPECTED
from kbert.checkpoint.safetensors_io import read_safetensors
from kbert.checkpoint.weights_files import load_state_dict
from kbert.export import export_saved_model
from test_export import serve

CALLS = json.loads((EXPECTED / "roberta_pipelines.json").read_text())["calls"]


def same(ours, theirs, path="output"):
    """Equal structure, strings and ints; floats to 1e-4 relative (float32 vs PyTorch)."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and sorted(ours) == sorted(theirs), f"{path}: {ours!r:.200} vs {theirs!r:.200}"
        for key in theirs:
            same(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), f"{path}: {ours!r:.300} vs {theirs!r:.300}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            same(a, b, f"{path}[{i}]")
    elif isinstance(theirs, float):
        assert ours == pytest.approx(theirs, rel=1e-4, abs=1e-6), path
    else:
        assert ours == theirs, f"{path}: {ours!r} vs {theirs!r}"


@pytest.fixture(scope="module")
def pipelines():
    cache = {}

    def get(task, name):
        if (task, name) not in cache:
            cache[task, name] = kbert.pipeline(task, model=CHECKPOINTS / name)
        return cache[task, name]

    return get


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c['task']}-{json.dumps(c['kwargs'], sort_keys=True)}")
def test_pipeline_outputs_equal_transformers(call, pipelines):
    ours = pipelines(call["task"], call["checkpoint"])(call["inputs"], **call["kwargs"])
    same(json.loads(json.dumps(ours)), call["output"])


def test_byte_level_entity_words_keep_their_leading_space(pipelines):
    """transformers decodes RoBERTa groups with the byte-level decoder: " Istanbul", not "Istanbul"."""
    [call] = [c for c in CALLS if c["task"] == "token-classification" and c["kwargs"] == {"aggregation_strategy": "first"}]
    words = [e["word"] for entities in call["output"] for e in entities]
    assert any(w.startswith(" ") for w in words)  # the fixture shows what is being tested
    ours = pipelines("token-classification", "tiny-roberta-ner")(call["inputs"], aggregation_strategy="first")
    assert [e["word"] for entities in ours for e in entities] == words


def _train_files(tmp_path):
    cls = tmp_path / "cls.tsv"
    cls.write_text("text\tlabel\n" + "".join(f"the movie was {w}\t{l}\n" for w, l in
                                             [("great", "positive"), ("bad", "negative"), ("fine", "neutral")] * 6))
    ner = tmp_path / "ner.conll"
    ner.write_text("".join(f"Sinan\tB-PER\nlives\tO\nin\tO\n{city}\tB-LOC\n\n" for city in ("Paris", "Rome", "Oslo") * 4))
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"id": str(i), "question": "Where does Sinan live?",
                                      "context": f"Sinan lives in {city}.",
                                      "answers": {"text": [city], "answer_start": [15]}}) + "\n"
                          for i, city in enumerate(["Paris", "Rome", "Oslo"] * 4)))
    return {"text-classification": (cls, "tiny-roberta-cls"), "token-classification": (ner, "tiny-roberta-ner"),
            "question-answering": (qa, "tiny-roberta-qa")}


@pytest.mark.parametrize("task", ["text-classification", "token-classification", "question-answering"])
def test_training_a_roberta_checkpoint_writes_what_transformers_writes(task, tmp_path):
    data, name = _train_files(tmp_path)[task]
    options = {"doc_stride": 8} if task == "question-answering" else {}
    result = kbert.train(task=task, train=str(data), eval=str(data), model=str(CHECKPOINTS / name),
                         output=str(tmp_path / "run"), epochs=1, batch_size=4, max_length=32, verbose=0, **options)
    ours = read_safetensors(result.output / "model.safetensors")
    theirs = load_state_dict(CHECKPOINTS / name)
    theirs.pop("roberta.embeddings.position_ids", None)
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    changed = [k for k in theirs if not np.array_equal(ours[k], theirs[k])]
    assert len(changed) > len(theirs) // 2  # it trained
    config = json.loads((result.output / "config.json").read_text())
    assert config["model_type"] == "roberta" and config["architectures"][0].startswith("RobertaFor")
    assert np.isfinite(result.metrics["loss"])


@pytest.mark.parametrize("task,name", [("text-classification", "tiny-roberta-cls"),
                                       ("token-classification", "tiny-roberta-ner"),
                                       ("question-answering", "tiny-roberta-qa")])
def test_raw_string_export_of_roberta_equals_the_pipeline(task, name, tmp_path):
    """Byte-level BPE, the model and the task's decoding in a SavedModel served by bare TensorFlow."""
    version = export_saved_model(CHECKPOINTS / name, tmp_path / "served")
    pipe = kbert.pipeline(task, model=CHECKPOINTS / name)
    if task == "question-answering":
        inputs = {"question": ["Where does Sinan live?", "Who won the match?"],
                  "context": ["Sinan lives in California but Matt lives in Boston.",
                              "The team won the match today and all the people were happy. " * 8]}
        got = serve(version, inputs)
        for b, want in enumerate(pipe(**inputs)):
            assert (got["answer"][b], got["start"][b], got["end"][b]) == (want["answer"], want["start"], want["end"])
            assert got["score"][b] == pytest.approx(want["score"], rel=1e-4)
        return
    texts = ["Sinan went from Istanbul to San Francisco.", "  Hello   world!\n", "Café naïve 😀 中国人 it's"]
    got = serve(version, {"text": texts})
    if task == "text-classification":
        for b, want in enumerate(pipe(texts)):
            assert got["label"][b] == want["label"] and got["score"][b] == pytest.approx(want["score"], abs=1e-5)
        return
    for b, want in enumerate(pipe(texts, aggregation_strategy="simple")):
        count = got["entity_count"][b]
        assert [(got["entity_group"][b][k], got["entity_word"][b][k], got["entity_start"][b][k],
                 got["entity_end"][b][k]) for k in range(count)] == \
            [(e["entity_group"], e["word"], e["start"], e["end"]) for e in want]

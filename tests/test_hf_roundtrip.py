"""A kbert-trained folder is a Hugging Face checkpoint: transformers loads it unchanged, same logits.

The reference numbers come from transformers itself, run on the checked-in kbert-written checkpoint
by tests/fixtures/make_trained_fixture.py; a live re-check runs when the reference env is present.
"""

import json
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf

import kbert
from conftest import CHECKPOINTS, EXPECTED, ROOT
from kbert.checkpoint.safetensors_io import read_safetensors
from kbert.checkpoint.save import save_hf_checkpoint

FOLDER = CHECKPOINTS / "kbert-trained-tiny"
REFERENCE = json.loads((EXPECTED / "kbert_trained.json").read_text())
REFERENCE_PYTHON = ROOT / ".venv-ref" / "bin" / "python"


def kbert_logits(folder, texts, pairs=None):
    task = kbert.tasks.get_task("text-classification")(kbert.load_checkpoint(folder))
    model = task.build_model()
    tokenizer = task.checkpoint.tokenizer
    inputs = tokenizer.encode(tf.constant(texts), None if pairs is None else tf.constant(pairs)).padded()
    out = model({k: inputs[k] for k in ("token_ids", "segment_ids", "padding_mask")}, training=False)
    return np.asarray(out["logits"])


def test_transformers_loaded_every_weight_and_nothing_else():
    info = REFERENCE["loading_info"]
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == []
    assert REFERENCE["model_class"] == "BertForSequenceClassification"
    assert REFERENCE["id2label"] == {"0": "negative", "1": "positive"}


def test_kbert_and_transformers_agree_on_the_kbert_written_checkpoint():
    np.testing.assert_allclose(kbert_logits(FOLDER, REFERENCE["texts"]), REFERENCE["logits"], atol=1e-4)
    pairs = REFERENCE["pairs"]
    np.testing.assert_allclose(kbert_logits(FOLDER, [a for a, _ in pairs], [b for _, b in pairs]),
                               REFERENCE["pair_logits"], atol=1e-4)


def test_saving_a_loaded_checkpoint_reproduces_its_tensors(tmp_path):
    task = kbert.tasks.get_task("text-classification")(kbert.load_checkpoint(FOLDER))
    save_hf_checkpoint(task, task.build_model(), tmp_path)
    before, after = read_safetensors(FOLDER / "model.safetensors"), read_safetensors(tmp_path / "model.safetensors")
    assert set(before) == set(after)
    for name in before:
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "negative", "1": "positive"}


@pytest.mark.skipif(not REFERENCE_PYTHON.exists(), reason="reference env (.venv-ref) absent: run `make reference-env`")
def test_live_transformers_on_a_fresh_training_run(tmp_path):
    """Train now, then let transformers (in its own process) load the result and compare logits."""
    data = tmp_path / "train.tsv"
    data.write_text("text\tlabel\n" + "".join(f"the movie was {w}\t{l}\n" for w, l in
                                              [("great", "positive"), ("bad", "negative"), ("happy", "positive"),
                                               ("boring", "negative")] * 8))
    kbert.train(train=str(data), output=str(tmp_path / "run"), model=str(CHECKPOINTS / "tiny-uncased-qa"),
                epochs=1, batch_size=8, max_length=16, verbose=0)
    script = ("import json, sys, torch; from transformers import AutoModelForSequenceClassification as M, "
              "AutoTokenizer as T; m = M.from_pretrained(sys.argv[1]).eval(); t = T.from_pretrained(sys.argv[1]);"
              "print(json.dumps(m(**t(json.loads(sys.argv[2]), padding=True, return_tensors='pt')).logits.tolist()))")
    texts = ["the movie was great", "boring", ""]
    done = subprocess.run([str(REFERENCE_PYTHON), "-c", script, str(tmp_path / "run"), json.dumps(texts)],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(kbert_logits(tmp_path / "run", texts), theirs, atol=1e-4)


NER_FOLDER = CHECKPOINTS / "kbert-trained-tiny-ner"
NER_REFERENCE = json.loads((EXPECTED / "kbert_trained_ner.json").read_text())


def test_a_kbert_trained_token_classifier_loads_in_transformers_with_the_same_logits():
    info = NER_REFERENCE["loading_info"]
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == []
    assert NER_REFERENCE["model_class"] == "BertForTokenClassification"
    assert NER_REFERENCE["id2label"] == {"0": "B-NEG", "1": "B-POS", "2": "O"}
    task = kbert.tasks.get_task("token-classification")(kbert.load_checkpoint(NER_FOLDER))
    inputs = task.checkpoint.tokenizer.encode(tf.constant(NER_REFERENCE["texts"])).padded()
    logits = np.asarray(task.build_model()({k: inputs[k] for k in ("token_ids", "segment_ids", "padding_mask")},
                                           training=False)["logits"])
    mask = np.asarray(NER_REFERENCE["attention_mask"], bool)
    assert mask.tolist() == np.asarray(inputs["padding_mask"], bool).tolist()
    np.testing.assert_allclose(logits[mask], np.asarray(NER_REFERENCE["logits"])[mask], atol=1e-4)


QA_FOLDER = CHECKPOINTS / "kbert-trained-tiny-qa"
QA_REFERENCE = json.loads((EXPECTED / "kbert_trained_qa.json").read_text())


def test_a_kbert_trained_qa_folder_is_a_bert_for_question_answering():
    info = QA_REFERENCE["loading_info"]
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == []
    assert QA_REFERENCE["model_class"] == "BertForQuestionAnswering"
    pairs = QA_REFERENCE["pairs"]
    task = kbert.tasks.get_task("question-answering")(kbert.load_checkpoint(QA_FOLDER))
    encoding = task.checkpoint.tokenizer.encode(tf.constant([q for q, _ in pairs]), tf.constant([c for _, c in pairs]))
    inputs = encoding.padded()
    logits = np.asarray(task.build_model()({k: inputs[k] for k in ("token_ids", "segment_ids", "padding_mask")},
                                           training=False)["logits"])
    real = np.array(QA_REFERENCE["attention_mask"], bool)
    np.testing.assert_allclose(logits[..., 0][real], np.array(QA_REFERENCE["start_logits"])[real], atol=1e-4)
    np.testing.assert_allclose(logits[..., 1][real], np.array(QA_REFERENCE["end_logits"])[real], atol=1e-4)
    qa = kbert.pipeline("question-answering", model=QA_FOLDER)
    ours = qa(question=[q for q, _ in pairs], context=[c for _, c in pairs], handle_impossible_answer=True)
    for a, b in zip(ours, QA_REFERENCE["pipeline"]):
        assert (a["answer"], a["start"], a["end"]) == (b["answer"], b["start"], b["end"])
        assert a["score"] == pytest.approx(b["score"], rel=1e-4)

"""RoBERTa checkpoints: HF numerics (positions from the padding id, one token type), every head, saving.

References are transformers' own outputs on tiny random ``RobertaFor*`` checkpoints
(tests/fixtures/make_roberta_fixtures.py): hidden states and logits within 1e-4, and kbert-written
folders holding exactly the tensors (names, shapes) transformers writes for the same architecture.
"""

import json

import numpy as np
import pytest

import kbert
from conftest import CHECKPOINTS, EXPECTED, REFERENCE_PYTHON, assert_logits_close, transformers_logits
from kbert.checkpoint.safetensors_io import read_safetensors
from kbert.checkpoint.save import save_hf_checkpoint
from kbert.checkpoint.weights_files import load_state_dict
from kbert.tasks import get_task

META = json.loads((EXPECTED / "roberta_models.json").read_text())["models"]
ARRAYS = np.load(EXPECTED / "roberta_models.npz")
TASKS = {"tiny-roberta-cls": "text-classification", "tiny-roberta-ner": "token-classification",
         "tiny-roberta-qa": "question-answering"}
ARCHITECTURES = {"tiny-roberta-cls": "RobertaForSequenceClassification",
                 "tiny-roberta-ner": "RobertaForTokenClassification",
                 "tiny-roberta-qa": "RobertaForQuestionAnswering"}
CASES = [(name, batch) for name, meta in META.items() for batch in meta["batches"]]


def _inputs(keys):
    ids = ARRAYS[keys["input_ids"]].astype("int32")
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids),
            "padding_mask": ARRAYS[keys["attention_mask"]].astype("int32")}


@pytest.fixture(scope="module")
def models():
    out = {}
    for name, task_name in TASKS.items():
        task = get_task(task_name)(kbert.load_checkpoint(CHECKPOINTS / name))
        out[name] = (task, task.build_model())
    return out


def test_the_config_is_read_as_roberta():
    config = kbert.load_checkpoint(CHECKPOINTS / "tiny-roberta-cls").config
    assert (config.model_type, config.pad_token_id, config.position_offset, config.max_tokens) == ("roberta", 1, 2, 256)
    assert config.type_vocab_size == 1 and config.layer_norm_eps == pytest.approx(1e-5)


@pytest.mark.parametrize("name,batch", CASES)
def test_hidden_states_and_logits_match_transformers(name, batch, models):
    keys = META[name]["batches"][batch]
    inputs = _inputs(keys)
    task, model = models[name]
    mask = inputs["padding_mask"].astype(bool)
    backbone = task.checkpoint.build_backbone(use_pooler=False)
    hidden = np.asarray(backbone(inputs)["sequence_output"])
    assert np.abs(hidden - ARRAYS[keys["last_hidden_state"]])[mask].max() < 1e-4
    logits, want = np.asarray(model(inputs)["logits"]), ARRAYS[keys["logits"]]
    diff = np.abs(logits - want)[mask] if logits.ndim == 3 else np.abs(logits - want)
    assert diff.max() < 1e-4, f"{name}/{batch}: logits differ by {diff.max()}"


def test_positions_skip_a_padding_id_inside_the_text():
    """transformers numbers positions over the non-<pad> ids, so a literal <pad> shifts what follows."""
    backbone = kbert.load_checkpoint(CHECKPOINTS / "tiny-roberta-cls").build_backbone(use_pooler=False)
    layer = backbone.position_embedding
    ids = np.array([[0, 50, 1, 51, 2, 1, 1]], "int32")
    assert layer.position_ids(ids).numpy().tolist() == [[2, 3, 1, 4, 5, 1, 1]]


@pytest.mark.parametrize("name", list(TASKS))
def test_saving_reproduces_the_transformers_written_tensors(name, models, tmp_path):
    task, model = models[name]
    save_hf_checkpoint(task, model, tmp_path)
    theirs = load_state_dict(CHECKPOINTS / name)  # safetensors or pytorch_model.bin, as transformers wrote it
    theirs.pop("roberta.embeddings.position_ids", None)
    ours = read_safetensors(tmp_path / "model.safetensors")
    assert sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        np.testing.assert_allclose(ours[key], value, atol=0, rtol=0, err_msg=key)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "roberta" and config["architectures"] == [ARCHITECTURES[name]]
    assert {"vocab.json", "merges.txt", "tokenizer_config.json"} <= {p.name for p in tmp_path.iterdir()}


def test_a_new_head_on_a_roberta_backbone_gets_the_two_layer_classifier():
    """Training a classifier from a checkpoint without one (here the QA checkpoint) builds RoBERTa's head."""
    task = get_task("text-classification")(kbert.load_checkpoint(CHECKPOINTS / "tiny-roberta-qa"),
                                           id2label={0: "neg", 1: "pos"})
    model = task.build_model()
    names = sorted(slot.hf_name for slot in task.head_slots(model))
    assert names == ["classifier.dense.bias", "classifier.dense.weight", "classifier.out_proj.bias",
                     "classifier.out_proj.weight"]
    assert all(layer.name != "pooled_dense" for layer in model.layers)


@pytest.mark.skipif(not REFERENCE_PYTHON.exists(), reason="reference env (.venv-ref) absent: run `make reference-env`")
@pytest.mark.parametrize("name", list(TASKS))
def test_live_transformers_loads_a_kbert_written_roberta_folder(name, models, tmp_path):
    task, model = models[name]
    save_hf_checkpoint(task, model, tmp_path)
    keys = META[name]["batches"]["single"]
    info, theirs = transformers_logits(tmp_path, ARCHITECTURES[name], EXPECTED / "roberta_models.npz", keys)
    assert all(not v for v in info.values()), info
    assert_logits_close(theirs, ARRAYS[keys["logits"]], ARRAYS[keys["attention_mask"]])

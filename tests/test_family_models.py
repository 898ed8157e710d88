"""DistilBERT, ELECTRA and MPNet checkpoints: transformers' numerics for every head, saving, sentence embeddings.

References are transformers' own outputs on tiny random ``DistilBertFor*``, ``ElectraFor*`` and ``MPNetFor*``
checkpoints and sentence-transformers' vectors of an all-mpnet-base-v2-style folder
(tests/fixtures/make_family_fixtures.py): hidden states and logits within 1e-4, kbert-written folders holding
exactly the tensors (names, shapes, values) transformers writes for the same architecture.
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
from test_sentence_embedding import assert_same_vectors

SPEC = json.loads((EXPECTED / "families_models.json").read_text())
META = SPEC["models"]
ARRAYS = np.load(EXPECTED / "families_models.npz")
TASKS = {"cls": "text-classification", "ner": "token-classification", "qa": "question-answering"}
FAMILIES = ["distilbert", "electra", "mpnet"]
NAMES = list(META)
CASES = [(name, batch) for name, meta in META.items() for batch in meta["batches"]]


def model_inputs(keys):
    """The padded batch as kbert's models take it; segment ids are zeros where the tokenizer gives none."""
    ids = ARRAYS[keys["input_ids"]].astype("int32")
    segments = ARRAYS[keys["token_type_ids"]].astype("int32") if "token_type_ids" in keys else np.zeros_like(ids)
    return {"token_ids": ids, "segment_ids": segments, "padding_mask": ARRAYS[keys["attention_mask"]].astype("int32")}


@pytest.fixture(scope="module")
def models():
    """name -> (task, model), each built once, when a test first needs it."""
    cache = {}

    def get(name):
        if name not in cache:
            task = get_task(TASKS[META[name]["head"]])(kbert.load_checkpoint(CHECKPOINTS / name))
            cache[name] = (task, task.build_model())
        return cache[name]

    return get


def test_the_fixtures_cover_every_family_and_head():
    assert sorted({(m["family"], m["head"]) for m in META.values()}) == \
        sorted((f, h) for f in FAMILIES for h in TASKS)
    assert {m["family"] for m in META.values() if "token_type_ids" in m["batches"]["single"]} == {"electra"}


@pytest.mark.parametrize("name", NAMES)
def test_the_config_is_read_as_its_family(name):
    config = kbert.load_checkpoint(CHECKPOINTS / name).config
    assert (config.model_type, config.max_tokens) == (META[name]["model_type"], 256)
    assert config.model_type == META[name]["family"]


@pytest.mark.parametrize("name,batch", CASES)
def test_hidden_states_and_logits_match_transformers(name, batch, models):
    keys = META[name]["batches"][batch]
    inputs = model_inputs(keys)
    task, model = models(name)
    mask = inputs["padding_mask"].astype(bool)
    backbone = task.checkpoint.build_backbone(use_pooler=False)
    hidden = np.asarray(backbone(inputs)["sequence_output"])
    diff = np.abs(hidden - ARRAYS[keys["last_hidden_state"]])[mask]
    assert diff.max() < 1e-4, f"{name}/{batch}: hidden states differ by {diff.max()}"
    logits, want = np.asarray(model(inputs)["logits"]), ARRAYS[keys["logits"]]
    diff = np.abs(logits - want)[mask] if logits.ndim == 3 else np.abs(logits - want)
    assert diff.max() < 1e-4, f"{name}/{batch}: logits differ by {diff.max()}"


@pytest.mark.parametrize("name", NAMES)
def test_saving_reproduces_the_transformers_written_tensors(name, models, tmp_path):
    task, model = models(name)
    save_hf_checkpoint(task, model, tmp_path)
    theirs = load_state_dict(CHECKPOINTS / name)  # safetensors or pytorch_model.bin, as transformers wrote it
    ours = read_safetensors(tmp_path / "model.safetensors")
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    for key, value in theirs.items():
        np.testing.assert_array_equal(ours[key], value, err_msg=key)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == META[name]["family"] and config["architectures"] == [META[name]["class"]]
    assert {"vocab.txt", "tokenizer_config.json"} <= {p.name for p in tmp_path.iterdir()}


@pytest.mark.skipif(not REFERENCE_PYTHON.exists(), reason="reference env (.venv-ref) absent: run `make reference-env`")
@pytest.mark.parametrize("name", [f"tiny-{family}-{head}" for family in FAMILIES for head in TASKS])
def test_live_transformers_loads_a_kbert_written_folder(name, models, tmp_path):
    task, model = models(name)
    save_hf_checkpoint(task, model, tmp_path)
    keys = META[name]["batches"]["single"]
    info, theirs = transformers_logits(tmp_path, META[name]["class"], EXPECTED / "families_models.npz", keys)
    assert all(not v for v in info.values()), info
    assert_logits_close(theirs, ARRAYS[keys["logits"]], ARRAYS[keys["attention_mask"]])


@pytest.mark.parametrize("name", list(SPEC["sentence"]))
def test_mpnet_sentence_embeddings_match_sentence_transformers(name):
    spec = SPEC["sentence"][name]
    pipe = kbert.pipeline("sentence-embedding", model=CHECKPOINTS / name)
    assert pipe.task.max_seq_length == spec["max_seq_length"] == 128
    assert_same_vectors(pipe(spec["texts"], return_tensors=True), ARRAYS[spec["vectors"]], tol=1e-4)


def test_an_mpnet_config_with_too_few_buckets_is_refused_naming_the_file():
    from kbert.checkpoint.config import EncoderConfig
    from kbert.errors import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match=r"^my/config.json: relative_attention_num_buckets 16 is below"):
        EncoderConfig.from_dict({"model_type": "mpnet", "vocab_size": 10, "hidden_size": 8, "num_attention_heads": 2,
                                 "relative_attention_num_buckets": 16}, source="my/config.json")

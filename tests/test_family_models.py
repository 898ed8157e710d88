"""DistilBERT, ELECTRA, MPNet, XLM-RoBERTa and ALBERT checkpoints: transformers' numerics for every head, saving,
sentence embeddings.

References are transformers' own outputs on tiny random ``DistilBertFor*``, ``ElectraFor*``, ``MPNetFor*``,
``XLMRobertaFor*`` and ``AlbertFor*`` checkpoints (the SentencePiece families on multilingual text too) and
sentence-transformers' vectors of all-mpnet-base-v2-, multilingual-e5- and bge-m3-style folders
(tests/fixtures/make_family_fixtures.py): hidden states and logits within 1e-4, kbert-written folders holding
exactly the tensors (names, shapes, values) transformers writes for the same architecture (ALBERT's shared layer
group once).
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
FAMILIES = ["distilbert", "electra", "mpnet", "xlm-roberta", "albert", "deberta-v2", "modernbert"]
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
    assert {m["family"] for m in META.values() if "token_type_ids" in m["batches"]["single"]} == {"electra", "albert",
                                                                                             "deberta-v2"}
    assert {m["family"] for m in META.values() if "multilingual" in m["batches"]} == {"xlm-roberta", "albert", "deberta-v2"}


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
    tokenizer_files = {p.name for p in (CHECKPOINTS / name).iterdir()} - {"config.json", "model.safetensors",
                                                                          "pytorch_model.bin"}
    assert "tokenizer_config.json" in tokenizer_files  # and vocab.txt, sentencepiece.bpe.model, spiece.model ...
    assert tokenizer_files <= {p.name for p in tmp_path.iterdir()}


# The SentencePiece families on one head each, for time (each run starts torch): the saving test above already
# compares every head's tensors with transformers'; these confirm transformers computes the same logits from them.
LIVE = [f"tiny-{family}-{head}" for family in FAMILIES[:3] for head in TASKS] + ["tiny-xlm-roberta-qa",
                                                                                 "tiny-albert-cls",
                                                                                 "tiny-deberta-v2-cls",
                                                                                 "tiny-deberta-v2-types"]
LIVE += ["tiny-modernbert-qa", "tiny-modernbert-mean"]  # ModernBERT-base's settings; mean pooling and every bias


@pytest.mark.skipif(not REFERENCE_PYTHON.exists(), reason="reference env (.venv-ref) absent: run `make reference-env`")
@pytest.mark.parametrize("name", LIVE)
def test_live_transformers_loads_a_kbert_written_folder(name, models, tmp_path):
    task, model = models(name)
    save_hf_checkpoint(task, model, tmp_path)
    keys = META[name]["batches"]["single"]
    info, theirs = transformers_logits(tmp_path, META[name]["class"], EXPECTED / "families_models.npz", keys)
    assert all(not v for v in info.values()), info
    assert_logits_close(theirs, ARRAYS[keys["logits"]], ARRAYS[keys["attention_mask"]])


@pytest.mark.parametrize("name", list(SPEC["sentence"]))
def test_sentence_embeddings_match_sentence_transformers(name):
    """all-mpnet-base-v2-style and multilingual-e5-style (mean pooling) and bge-m3-style (``<s>``) folders."""
    spec = SPEC["sentence"][name]
    pipe = kbert.pipeline("sentence-embedding", model=CHECKPOINTS / name)
    assert pipe.task.max_seq_length == spec["max_seq_length"] == max(spec["tokens"])
    assert_same_vectors(pipe(spec["texts"], return_tensors=True), ARRAYS[spec["vectors"]], tol=1e-4)


def test_an_mpnet_config_with_too_few_buckets_is_refused_naming_the_file():
    from kbert.checkpoint.config import EncoderConfig
    from kbert.errors import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match=r"^my/config.json: relative_attention_num_buckets 16 is below"):
        EncoderConfig.from_dict({"model_type": "mpnet", "vocab_size": 10, "hidden_size": 8, "num_attention_heads": 2,
                                 "relative_attention_num_buckets": 16}, source="my/config.json")


def test_albert_shares_one_layer_saved_once(models):
    """One encoder layer applied num_hidden_layers times; its weights appear once, under layer group 0."""
    task, model = models("tiny-albert-cls")
    backbone = task.checkpoint.build_backbone()
    assert task.config.num_hidden_layers == 2 and len(backbone.transformer_layers) == 1
    names = [s.hf_name for s in task.checkpoint.family.backbone_slots(backbone)]
    assert len(names) == len(set(names)) == 25  # 3 embeddings + LayerNorm (2), mapping (2), one layer (16), pooler (2)
    assert {n.split(".albert_layers.")[0] for n in names if ".albert_layers." in n} == {"encoder.albert_layer_groups.0"}
    assert {"encoder.embedding_hidden_mapping_in.weight", "pooler.dense.weight"} <= set(names)


@pytest.mark.parametrize("key", ["num_hidden_groups", "inner_group_num"])
def test_an_albert_config_with_other_layer_groups_is_refused_naming_the_file(key):
    from kbert.checkpoint.config import EncoderConfig
    from kbert.errors import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match=rf"^my/config.json: {key} 2 is not supported; .*one layer group"):
        EncoderConfig.from_dict({"model_type": "albert", "vocab_size": 10, "hidden_size": 8, "num_attention_heads": 2,
                                 key: 2}, source="my/config.json")


def test_albert_maps_embeddings_of_the_hidden_width_too(tmp_path):
    """``embedding_hidden_mapping_in`` exists whatever the widths (ELECTRA has no projection when they are equal)."""
    from kbert.checkpoint.config import EncoderConfig

    sizes = {"vocab_size": 10, "hidden_size": 8, "embedding_size": 8, "num_attention_heads": 2, "intermediate_size": 4,
             "num_hidden_layers": 3}
    for model_type, mapped in (("albert", True), ("electra", False)):
        config = EncoderConfig.from_dict({"model_type": model_type, **sizes})
        backbone = config.family.build_backbone(config, use_pooler=False)
        assert (backbone.embeddings_project is not None) == mapped
        assert len(backbone.transformer_layers) == (1 if mapped else 3)


def test_albert_layer_wise_learning_rates_count_the_shared_layer_once():
    from types import SimpleNamespace

    from kbert.models import family_of
    from kbert.training.optimizer import layer_learning_rate_scales

    names = ["embeddings.word_embeddings.weight", "encoder.embedding_hidden_mapping_in.weight",
             "encoder.albert_layer_groups.0.albert_layers.0.ffn.weight", "pooler.dense.weight", "classifier.weight"]
    slots = [SimpleNamespace(hf_name=n, variable=n) for n in names]
    assert layer_learning_rate_scales(slots, 0.5, num_layers=12, family=family_of("albert")) == \
        [(names[0], 0.25), (names[1], 0.25), (names[2], 0.5)]

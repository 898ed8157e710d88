"""Bad checkpoints fail early with a KbertError that names the folder, file or tensor at fault."""

import json
import re
import pathlib
import shutil

import pytest
import tensorflow as tf

import kbert
from kbert.models import supported_model_types
from conftest import CHECKPOINTS
from kbert.checkpoint.config import EncoderConfig
from kbert.checkpoint.resolve import resolve_model
from kbert.errors import (CheckpointNotFoundError, CorruptCheckpointError, NotAnEncoderCheckpointError,
                          UnsupportedModelError)

TINY = CHECKPOINTS / "tiny-uncased-cls"
CONFIG_FOLDERS = sorted(p.parent for p in CHECKPOINTS.glob("*/config.json"))


def copy_fixture(tmp_path, name="tiny-uncased-cls", **config_changes):
    """A writable copy of a fixture checkpoint, with ``config.json`` keys changed (None deletes)."""
    folder = tmp_path / name
    shutil.copytree(CHECKPOINTS / name, folder)
    if config_changes:
        config = json.loads((folder / "config.json").read_text())
        for key, value in config_changes.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        (folder / "config.json").write_text(json.dumps(config))
    return folder


def write_config(tmp_path, **changes):
    """A folder holding only tiny-uncased-cls's config.json with ``changes`` (config is read first)."""
    config = json.loads((TINY / "config.json").read_text())
    config.update(changes)
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


# --- the folder itself ---------------------------------------------------------------------------
def test_missing_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(CheckpointNotFoundError, match=rf"{missing}: no such checkpoint folder"):
        kbert.load_checkpoint(missing)


def test_file_instead_of_folder(tmp_path):
    path = tmp_path / "model.safetensors"
    shutil.copy(TINY / "model.safetensors", path)
    with pytest.raises(CheckpointNotFoundError, match=rf"{path}: is a file; a checkpoint is a folder"):
        kbert.load_checkpoint(path)


def test_folder_without_config(tmp_path):
    shutil.copy(TINY / "model.safetensors", tmp_path / "model.safetensors")
    with pytest.raises(CheckpointNotFoundError, match=rf"{tmp_path}: no config.json"):
        kbert.load_checkpoint(tmp_path)


def test_config_that_is_not_json(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert",')
    with pytest.raises(NotAnEncoderCheckpointError, match=rf"{tmp_path / 'config.json'}: not valid JSON"):
        kbert.load_checkpoint(tmp_path)


def test_folder_without_weights(tmp_path):
    write_config(tmp_path)
    with pytest.raises(CheckpointNotFoundError,
                       match=rf"{tmp_path}: no weights file found; looked for model.safetensors"):
        kbert.load_checkpoint(tmp_path)


def test_not_a_model_type_at_all(tmp_path):
    (tmp_path / "config.json").write_text('["bert"]')
    with pytest.raises(NotAnEncoderCheckpointError, match=r"config.json: expected a JSON object, got list"):
        kbert.load_checkpoint(tmp_path)


# --- config.json values --------------------------------------------------------------------------
@pytest.mark.parametrize("changes, error, message", [
    ({"model_type": "gpt2"}, UnsupportedModelError,
     re.escape(f"model_type 'gpt2' is not supported; kbert loads {list(supported_model_types())}")),
    ({"model_type": None}, NotAnEncoderCheckpointError, r"no 'model_type'"),
    ({"position_embedding_type": "relative_key"}, UnsupportedModelError,
     r"position_embedding_type 'relative_key' is not supported \(only 'absolute'\)"),
    ({"hidden_act": "bogus"}, UnsupportedModelError, r"hidden_act 'bogus' is not supported; kbert knows \["),
    ({"hidden_size": 30}, NotAnEncoderCheckpointError, r"hidden_size 30 is not a multiple of num_attention_heads 4"),
    ({"id2label": {"0": "a", "2": "b"}}, NotAnEncoderCheckpointError, r"id2label ids must be 0..1, got \[0, 2\]"),
    ({"id2label": {"zero": "a"}}, NotAnEncoderCheckpointError, r"id2label keys must be integers, got \['zero'\]"),
    ({"id2label": {}}, NotAnEncoderCheckpointError, r"id2label must be a non-empty object, got \{\}"),
    ({"num_hidden_layers": 0}, NotAnEncoderCheckpointError, r"num_hidden_layers must be a positive integer, got 0"),
    ({"vocab_size": "548"}, NotAnEncoderCheckpointError, r"vocab_size must be a positive integer, got '548'"),
    ({"vocab_size": True}, NotAnEncoderCheckpointError, r"vocab_size must be a positive integer, got True"),
    ({"is_decoder": True}, UnsupportedModelError, r"decoder / cross-attention"),
    ({"problem_type": "ranking"}, UnsupportedModelError, r"problem_type 'ranking' is not one of"),
])
def test_bad_config_values(tmp_path, changes, error, message):
    config = json.loads((TINY / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(error, match=message) as info:
        kbert.load_checkpoint(tmp_path)
    assert str(tmp_path / "config.json") in str(info.value)  # the message names the file


def test_from_dict_names_its_source():
    with pytest.raises(UnsupportedModelError, match=r"^my/config.json: model_type 'gpt2'"):
        EncoderConfig.from_dict({"model_type": "gpt2", "vocab_size": 10}, source="my/config.json")
    with pytest.raises(NotAnEncoderCheckpointError, match=r"^config.json: no 'vocab_size'"):
        EncoderConfig.from_dict({"model_type": "bert"})


@pytest.mark.parametrize("folder", CONFIG_FOLDERS, ids=lambda p: p.name)
def test_config_to_dict_round_trips(folder):
    raw = json.loads((folder / "config.json").read_text())
    config = EncoderConfig.from_folder(folder)
    out = config.to_dict()
    again = EncoderConfig.from_dict(out)
    assert again == config and again.to_dict() == out and again.extra == config.extra
    # Everything config.json said is written back unchanged (to_dict may add defaults, never drop).
    assert {k: out.get(k) for k in raw} == raw


def test_num_labels_only_config_round_trips():
    config = EncoderConfig.from_dict({"model_type": "bert", "vocab_size": 10, "num_labels": 2})
    assert config.id2label == {0: "LABEL_0", 1: "LABEL_1"}
    out = config.to_dict()
    assert out["id2label"] == {"0": "LABEL_0", "1": "LABEL_1"} and out["label2id"] == {"LABEL_0": 0, "LABEL_1": 1}
    assert EncoderConfig.from_dict(out) == config and "problem_type" not in out


# --- weights -------------------------------------------------------------------------------------
@pytest.mark.parametrize("keep_bytes, message", [
    (4, r"not a valid safetensors file \(.*(header too small|HeaderTooSmall)"),
    (100, r"not a valid safetensors file \(.*(invalid header length|InvalidHeaderLength)"),
    (-1000, r"not a valid safetensors file \(.*(not fully covered|MetadataIncompleteBuffer)"),
])
def test_truncated_safetensors_names_the_file(tmp_path, keep_bytes, message):
    folder = copy_fixture(tmp_path)
    path = folder / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[:keep_bytes])
    with pytest.raises(CorruptCheckpointError, match=message) as info:
        kbert.load_checkpoint(folder)
    assert str(info.value).startswith(f"{path}: ")


def test_missing_shard_names_it(tmp_path):
    folder = copy_fixture(tmp_path, "tiny-uncased-cls-sharded")
    (folder / "model-00002-of-00003.safetensors").unlink()
    with pytest.raises(CheckpointNotFoundError,
                       match=r"model.safetensors.index.json: names 3 shard file\(s\), but "
                             r"'model-00002-of-00003.safetensors' is not in"):
        kbert.load_checkpoint(folder)


def test_word_embedding_rows_must_match_vocab_size(tmp_path):
    folder = copy_fixture(tmp_path, vocab_size=600)
    with pytest.raises(CorruptCheckpointError,
                       match=rf"{folder}: word embeddings have 548 rows but config.json says vocab_size=600"):
        kbert.load_checkpoint(folder)


def test_wrong_weight_shape_names_the_tensor(tmp_path):
    folder = copy_fixture(tmp_path, intermediate_size=40)
    ckpt = kbert.load_checkpoint(folder)  # shapes are checked against the model, when it is built
    with pytest.raises(CorruptCheckpointError,
                       match=r"tensor 'encoder.layer.0.intermediate.dense.weight' has shape \[37, 32\], which does "
                             r"not fit the config \(a variable of shape \[32, 40\]\)") as info:
        ckpt.build_backbone()
    assert str(info.value).startswith(f"{folder}: ")


def test_missing_weights_are_listed(tmp_path):
    folder = copy_fixture(tmp_path, num_hidden_layers=3)
    with pytest.raises(CorruptCheckpointError, match=r"weights the config needs are missing, e.g. \['encoder.layer.2"):
        kbert.load_checkpoint(folder).build_backbone()


def test_classifier_rows_must_match_the_labels(tmp_path):
    folder = copy_fixture(tmp_path, id2label={"0": "negative", "1": "positive"},
                          label2id={"negative": 0, "positive": 1})
    with pytest.raises(CorruptCheckpointError,
                       match=r"the classifier head has 3 outputs but 2 labels are configured "
                             r"\['negative', 'positive'\]"):
        kbert.pipeline("text-classification", model=folder)


def test_text_classification_needs_labels():
    folder = CHECKPOINTS / "tiny-uncased-qa"  # a QA config: no id2label, no num_labels
    assert kbert.load_checkpoint(folder).config.id2label is None
    with pytest.raises(CorruptCheckpointError, match=rf"{folder}: text-classification needs labels"):
        kbert.pipeline("text-classification", model=folder)


# --- resolving model names -----------------------------------------------------------------------
def answering(monkeypatch):
    """The Hub's address takes connections (no socket is opened: tests never touch the network)."""
    monkeypatch.setattr("kbert.checkpoint.resolve._unreachable", lambda endpoint: None)


class FakeHub:
    """huggingface_hub's list_repo_files / snapshot_download over a local folder: a download copies the
    files matching allow_patterns into a fresh cache folder, so a missing pattern shows as a missing file."""

    def __init__(self, monkeypatch, folder, cache):
        import huggingface_hub

        self.folder, self.cache, self.calls = pathlib.Path(folder), pathlib.Path(cache), []
        monkeypatch.setattr(huggingface_hub, "list_repo_files", lambda repo_id, **kw: self.files())
        monkeypatch.setattr(huggingface_hub, "snapshot_download", self.snapshot_download)
        answering(monkeypatch)

    def files(self):
        return sorted(str(p.relative_to(self.folder)) for p in self.folder.rglob("*") if p.is_file())

    def snapshot_download(self, repo_id, allow_patterns=None, **kwargs):
        import fnmatch
        import shutil

        self.calls.append((repo_id, list(allow_patterns or [])))
        out = self.cache / repo_id.replace("/", "--")
        for name in self.files():
            if any(fnmatch.fnmatch(name, pattern) for pattern in allow_patterns or ["*"]):
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.folder / name, out / name)
        return str(out)


def test_hf_scheme_downloads_only_what_kbert_reads(monkeypatch, tmp_path):
    hub = FakeHub(monkeypatch, TINY, tmp_path)
    folder = resolve_model("hf://org/name")
    [(repo_id, patterns)] = hub.calls
    assert repo_id == "org/name"
    assert "config.json" in patterns and "model.safetensors" in patterns and "vocab.txt" in patterns
    assert not any(p.endswith(".bin") or "*.bin" in p or p in ("*", "*.*") for p in patterns), patterns
    assert kbert.load_checkpoint(folder).config.vocab_size == 548


def test_hf_scheme_fetches_a_roberta_repository_with_bin_weights(monkeypatch, tmp_path):
    """A RoBERTa repo layout (vocab.json + merges.txt, pytorch_model.bin only) arrives complete and loads."""
    source = CHECKPOINTS / "tiny-roberta-ner"
    assert (source / "pytorch_model.bin").is_file() and not list(source.glob("*.safetensors"))
    hub = FakeHub(monkeypatch, source, tmp_path)
    folder = resolve_model("hf://org/roberta")
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in source.iterdir())  # all of it
    [(_, patterns)] = hub.calls
    assert "pytorch_model.bin" in patterns and not any("safetensors" in p for p in patterns)
    checkpoint = kbert.load_checkpoint("hf://org/roberta")
    assert checkpoint.config.model_type == "roberta"
    assert checkpoint.tokenizer.encode(tf.constant(["I love Paris"])).token_ids.to_list()[0][0] == 0  # <s>


def test_hf_scheme_fetches_the_sentence_transformers_module_files(monkeypatch, tmp_path, minilm_path):
    """all-MiniLM-L6-v2's layout: without modules.json and 1_Pooling/ the embedding would lose its pooling."""
    FakeHub(monkeypatch, minilm_path, tmp_path)
    folder = resolve_model("hf://sentence-transformers/all-MiniLM-L6-v2")
    for name in ("modules.json", "sentence_bert_config.json", "1_Pooling/config.json", "model.safetensors"):
        assert (folder / name).is_file(), name
    assert not (folder / "README.md").exists()


def test_failed_download_is_checkpoint_not_found(monkeypatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("we are offline")

    monkeypatch.setattr(huggingface_hub, "list_repo_files", offline)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    answering(monkeypatch)
    with pytest.raises(CheckpointNotFoundError, match=r"^hf://org/name: download failed: we are offline"):
        resolve_model("hf://org/name")


def test_hub_like_relative_path_hints_the_hf_scheme(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointNotFoundError,
                       match=r"^org/name: no such checkpoint folder "
                             r"\(for a Hugging Face Hub id, write 'hf://org/name'\)"):
        resolve_model("org/name")
    with pytest.raises(CheckpointNotFoundError, match=r"^\./org/name: no such checkpoint folder$"):
        resolve_model("./org/name")


def test_model_of_the_wrong_type():
    with pytest.raises(CheckpointNotFoundError,
                       match=r"model must be a folder path, 'minilm' or 'hf://org/name', got 42"):
        resolve_model(42)

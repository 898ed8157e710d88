"""kbert.pipeline("sentence-embedding") gives SentenceTransformer(folder).encode(texts) (recorded fixtures), its
SavedModel serves the same vectors from raw strings, and `kbert embed` writes them to a .npy file."""

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kbert
from conftest import CHECKPOINTS, EXPECTED
from kbert.cli import main
from kbert.errors import CorruptCheckpointError, InputError, UnsupportedModelError
from kbert.export import export_saved_model
from kbert.tasks.sentence_embedding.config import SentenceEmbeddingConfig
from kbert.tasks.sentence_embedding.task import SentenceEmbedding

SPEC = json.loads((EXPECTED / "sentence_embeddings.json").read_text())
ARRAYS = np.load(EXPECTED / "sentence_embeddings.npz")
MINILM = SPEC["minilm"]
TOL = 1e-5  # per component, and 1 - cosine
KWARGS = {"normalize_embeddings": "normalize", "prompt_name": "prompt_name", "prompt": "prompt"}  # ST -> kbert


# A fresh interpreter with nothing but TensorFlow and tensorflow-text, as TF Serving sees the model.
SERVE = textwrap.dedent("""
    import json, sys
    import tensorflow as tf, tensorflow_text  # noqa: F401
    assert not any(m.split(".")[0] in ("kbert", "keras_hub") for m in sys.modules), "not a bare TF process"
    fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
    out = fn(text=tf.constant(json.loads(sys.argv[2]), tf.string))
    print(json.dumps({k: v.numpy().tolist() for k, v in out.items()}))
""")


def serve(version_dir, texts):
    done = subprocess.run([sys.executable, "-c", SERVE, str(version_dir), json.dumps(texts)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_same_vectors(got, want, tol=TOL):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= tol
    cosine = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert cosine.min() >= 1 - tol


@pytest.fixture(scope="module")
def embed(minilm_path):
    return kbert.pipeline("sentence-embedding")


def variant_folder(tmp_path, variant):
    """The sentence-transformers folder the fixture script built for ``variant`` (a tiny checkpoint + its files)."""
    folder = tmp_path / variant["name"]
    shutil.copytree(CHECKPOINTS / variant["base"], folder)
    for name, content in variant["files"].items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(content))
    return folder


def test_minilm_matches_sentence_transformers(embed):
    got = embed(MINILM["texts"], return_tensors=True)
    assert got.dtype == np.float32
    assert_same_vectors(got, ARRAYS[MINILM["vectors"]])


def test_minilm_truncates_at_max_seq_length_256(embed):
    assert embed.task.max_seq_length == MINILM["max_seq_length"] == 256 < embed.tokenizer.model_max_length
    params = embed.task.check_parameters({})
    windows = embed.run_windows(embed.task.parse_inputs(MINILM["texts"], params), max_length=embed.task.window_length(params))
    assert [len(w[0].token_ids) for w in windows] == MINILM["tokens"]
    assert max(MINILM["tokens"]) == 256 and sum(t == 256 for t in MINILM["tokens"]) == 2  # two long texts


def test_normalize_false_gives_the_vectors_before_normalize(embed):
    got = embed(MINILM["texts"], normalize=False, return_tensors=True)
    want = ARRAYS[MINILM["vectors"]] * np.array(MINILM["norms_before_normalize"], np.float32)[:, None]
    assert_same_vectors(got, want)
    assert abs(np.linalg.norm(got[0]) - 1) > 1  # really unnormalised


def test_output_shapes_follow_the_input(embed):
    single = embed("I love Paris")
    assert isinstance(single, list) and len(single) == 384 and isinstance(single[0], float)
    listed = embed(["I love Paris", ""])
    assert len(listed) == 2 and all(len(v) == 384 for v in listed)
    np.testing.assert_allclose(listed[0], single, atol=1e-6)
    assert embed("I love Paris", return_tensors=True).shape == (384,)
    assert embed(["I love Paris"], return_tensors=True, batch_size=1).shape == (1, 384)


def test_batch_size_does_not_change_vectors(embed):
    texts = MINILM["texts"][:8]
    np.testing.assert_allclose(embed(texts, batch_size=3, return_tensors=True),
                               embed(texts, batch_size=32, return_tensors=True), atol=1e-5)


@pytest.mark.parametrize("variant", SPEC["variants"], ids=lambda v: v["name"])
def test_pooling_variants_match_sentence_transformers(tmp_path, variant):
    folder = variant_folder(tmp_path, variant)
    pipe = kbert.pipeline("sentence-embedding", model=folder)
    assert pipe.task.max_seq_length == variant["max_seq_length"]
    for call in variant["calls"]:
        kwargs = {KWARGS[k]: v for k, v in call["kwargs"].items()}
        got = pipe(variant["texts"], return_tensors=True, **kwargs)
        assert_same_vectors(got, ARRAYS[call["array"]])
        params = pipe.task.check_parameters(kwargs)
        windows = pipe.run_windows(pipe.task.parse_inputs(variant["texts"], params), max_length=params["max_seq_length"])
        assert [len(w[0].token_ids) for w in windows] == call["tokens"], kwargs


def test_the_variants_read_as_intended(tmp_path):
    by_name = {v["name"]: SentenceEmbeddingConfig.from_folder(variant_folder(tmp_path, v)) for v in SPEC["variants"]}
    assert by_name["tiny-plain"] == SentenceEmbeddingConfig()  # no modules.json: mean, no normalisation
    assert by_name["tiny-cls-legacy"].pooling == ("cls",) and by_name["tiny-cls-legacy"].max_seq_length == 16
    assert by_name["tiny-max-mean-normalize"].pooling == ("max", "mean") and by_name["tiny-max-mean-normalize"].normalize
    assert by_name["tiny-weighted-last-sqrt"].pooling == ("mean_sqrt_len_tokens", "weightedmean", "lasttoken")
    prompted = by_name["tiny-cased-prompts-lower"]
    assert prompted.do_lower_case and prompted.prompt_for() == "Query: " and prompted.prompt_for("passage") == "Passage: "


def test_max_seq_length_can_be_lowered_per_call(embed):
    long_text = MINILM["texts"][11]
    short = embed(long_text, max_seq_length=32, return_tensors=True)
    assert not np.allclose(short, embed(long_text, return_tensors=True), atol=1e-3)
    assert embed.task.window_length(embed.task.check_parameters({"max_seq_length": 32})) == 32


@pytest.mark.parametrize("kwargs, message", [
    ({"normalize": "yes"}, "normalize must be True, False or None"),
    ({"max_seq_length": 2}, "max_seq_length must be an integer from 3 to 512"),
    ({"max_seq_length": 600}, "max_seq_length must be an integer from 3 to 512"),
    ({"prompt_name": "query"}, r"prompt_name 'query' is not one of the model's prompts \[\]"),
    ({"prompt": "a", "prompt_name": "b"}, "give prompt or prompt_name, not both"),
    ({"pooling": "mean"}, r"unknown argument\(s\) \['pooling'\]"),
])
def test_bad_parameters_are_refused(embed, kwargs, message):
    with pytest.raises(InputError, match=message):
        embed("hi", **kwargs)


def test_pairs_are_refused(embed):
    with pytest.raises(InputError, match="does not take text pairs"):
        embed({"text": "a", "text_pair": "b"})


def _st_folder(tmp_path, modules, pooling=None, **extra):
    folder = tmp_path / "st"
    shutil.copytree(CHECKPOINTS / "tiny-uncased-cls", folder)
    (folder / "modules.json").write_text(json.dumps(
        [{"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
         for i, (kind, path) in enumerate(modules)]))
    if pooling is not None:
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    for name, content in extra.items():
        (folder / name).write_text(json.dumps(content))
    return folder


@pytest.mark.parametrize("modules, pooling, extra, error, message", [
    ([("Transformer", ""), ("Pooling", "1_Pooling"), ("Dense", "2_Dense")], {}, {}, UnsupportedModelError,
     r"modules.json: module sentence_transformers.models.Dense is not supported"),
    ([("Transformer", "0_Transformer"), ("Pooling", "1_Pooling")], {}, {}, UnsupportedModelError,
     r"the Transformer is in the sub-folder '0_Transformer'"),
    ([("Transformer", "")], None, {}, UnsupportedModelError, "expected one Pooling module right after the Transformer"),
    ([("Transformer", ""), ("Pooling", "1_Pooling")], None, {}, CorruptCheckpointError,
     r"1_Pooling/config.json: missing"),
    ([("Transformer", ""), ("Pooling", "1_Pooling")], {"pooling_mode": "median"}, {}, UnsupportedModelError,
     r"pooling_mode 'median' is not one of"),
    ([("Transformer", ""), ("Pooling", "1_Pooling")], {}, {"sentence_bert_config.json": {"max_seq_length": "long"}},
     CorruptCheckpointError, r"sentence_bert_config.json: max_seq_length must be an integer"),
    ([("Transformer", ""), ("Pooling", "1_Pooling")], {},
     {"config_sentence_transformers.json": {"prompts": {"q": "x"}, "default_prompt_name": "query"}},
     CorruptCheckpointError, r"default_prompt_name 'query' is not one of the prompts \['q'\]"),
    ([("Transformer", ""), ("Pooling", "1_Pooling")], {"embedding_dimension": 384}, {}, CorruptCheckpointError,
     "declares embedding_dimension 384 but the encoder's hidden_size is 32"),
])
def test_model_folders_kbert_cannot_run_are_refused(tmp_path, modules, pooling, extra, error, message):
    folder = _st_folder(tmp_path, modules, pooling, **extra)
    with pytest.raises(error, match=message):
        kbert.pipeline("sentence-embedding", model=folder)


def test_prompts_with_include_prompt_false_are_refused(tmp_path):
    folder = _st_folder(tmp_path, [("Transformer", ""), ("Pooling", "1_Pooling")], {"include_prompt": False},
                        **{"config_sentence_transformers.json": {"prompts": {"query": "q: "}}})
    pipe = kbert.pipeline("sentence-embedding", model=folder)
    assert len(pipe("hello")) == 32  # without a prompt it runs
    with pytest.raises(InputError, match="include_prompt=false"):
        pipe("hello", prompt_name="query")


def test_saved_model_serves_the_vectors(tmp_path, embed):
    version = export_saved_model("minilm", tmp_path / "embedder", task="sentence-embeddings")
    texts = MINILM["texts"][:3] + MINILM["texts"][11:13]  # the long ones check the 256 truncation in the graph
    got = serve(version, texts)
    assert sorted(got) == ["embedding"]
    assert_same_vectors(got["embedding"], ARRAYS[MINILM["vectors"]][[0, 1, 2, 11, 12]])
    metadata = json.loads((version / "assets.extra" / "kbert.json").read_text())
    assert metadata["task"] == "sentence-embedding" and metadata["max_length"] == 256
    assert metadata["normalize"] is True and metadata["dimension"] == 384
    assert serve(version, [])["embedding"] == []


def test_saved_model_applies_the_default_prompt_and_lower_casing(tmp_path):
    variant = next(v for v in SPEC["variants"] if v["name"] == "tiny-cased-prompts-lower")
    version = export_saved_model(variant_folder(tmp_path, variant), tmp_path / "prompted", task="sentence-embedding")
    got = serve(version, variant["texts"])
    default_call = variant["calls"][0]
    assert default_call["kwargs"] == {}
    assert_same_vectors(got["embedding"], ARRAYS[default_call["array"]])
    metadata = json.loads((version / "assets.extra" / "kbert.json").read_text())
    assert metadata["prompt"] == "Query: " and metadata["max_length"] == 32 and metadata["do_lower_case"] is True
    answers = SentenceEmbedding.answers_from_serving(variant["texts"], got, metadata)  # what recipes print
    assert [a["text"] for a in answers] == variant["texts"] and answers[1]["embedding"] == got["embedding"][1]


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_embed_command_writes_npy(tmp_path, capsys, minilm_path):
    texts = MINILM["texts"][:2] + MINILM["texts"][4:5] + MINILM["texts"][11:12]  # no blank ones: one per line
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")
    code, out, err = run_cli(capsys, "embed", "--input", str(tmp_path / "texts.txt"), "--output",
                             str(tmp_path / "out" / "vectors.npy"))
    assert code == 0, err
    summary = json.loads(out)
    assert summary == {"output": str(tmp_path / "out" / "vectors.npy"), "count": 4, "dimension": 384,
                       "normalized": True, "model": "minilm"}
    assert "it/s" not in err and "chunk" not in err  # no progress bar when stderr is not a terminal
    vectors = np.load(tmp_path / "out" / "vectors.npy")
    assert_same_vectors(vectors, ARRAYS[MINILM["vectors"]][[0, 1, 4, 11]])


def test_embed_command_jsonl_and_no_normalize(tmp_path, capsys):
    variant = next(v for v in SPEC["variants"] if v["name"] == "tiny-max-mean-normalize")
    folder = variant_folder(tmp_path, variant)
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in variant["texts"]))
    code, out, err = run_cli(capsys, "embed", "--model", str(folder), "--input", str(tmp_path / "in.jsonl"),
                             "--output", str(tmp_path / "v.npy"), "--no-normalize", "--batch-size", "2")
    assert code == 0, err
    assert json.loads(out)["normalized"] is False
    vectors = np.load(tmp_path / "v.npy")
    assert vectors.shape == (len(variant["texts"]), 64)
    want = ARRAYS[variant["calls"][0]["array"]]  # normalised by the model
    assert_same_vectors(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), want)
    assert np.abs(np.linalg.norm(vectors, axis=1) - 1).max() > 0.1


@pytest.mark.parametrize("argv, message", [
    (["embed", "--input", "/nowhere.txt", "--output", "v.npy"], "--input /nowhere.txt: no such file"),
    (["embed", "--input", "{texts}", "--output", "v.csv"], "the output must be a .npy file"),
    (["embed", "--input", "{texts}", "--output", "v.npy", "--max-length", "1"], "max_seq_length must be an integer"),
])
def test_embed_errors_are_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "t.txt").write_text("hello\n")
    argv = [a.replace("{texts}", str(tmp_path / "t.txt")) for a in argv]
    code, out, err = run_cli(capsys, *argv[:1], "--model", str(CHECKPOINTS / "tiny-uncased-cls"), *argv[1:])
    assert code == 2 and out == "" and err.startswith("kbert: error: ") and message in err


def test_predict_with_the_task(capsys):
    code, out, _ = run_cli(capsys, "predict", "--task", "sentence-embedding", "--model",
                           str(CHECKPOINTS / "tiny-uncased-cls"), "--max-seq-length", "8", "I love Paris")
    vector = json.loads(out)["result"]
    assert code == 0 and len(vector) == 32
    code, out, _ = run_cli(capsys, "predict", "--task", "sentence-embedding", "--model",
                           str(CHECKPOINTS / "tiny-uncased-cls"), "--normalize", "I love Paris")
    assert code == 0 and np.linalg.norm(json.loads(out)["result"]) == pytest.approx(1, abs=1e-5)

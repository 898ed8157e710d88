"""`kbert export --corpus-index`: a sentence-embedding SavedModel with a second signature, `search`, whose exact
in-graph top k equals search_index's, served by a process with only TensorFlow; serving_default is unchanged."""

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kbert
from conftest import CHECKPOINTS
from kbert.cli import main
from kbert.errors import ExportError, InputError
from kbert.export import export_saved_model
from kbert.semantic_search import search_graph
from kbert.vector_index import VectorIndex
from kbert.semantic_search.indexing import build_index, search_index

DOCUMENTS = ["stocks fell sharply on monday", "the team won the cup final", "oil prices rose again", "rain is expected",
             "a new phone was released", "the film opened in paris", "i love paris in spring", "the bank raised rates",
             "a storm hit the coast", "the striker scored twice", "paris fashion week opens", "gold hit a record high",
             "the election results are in", "a vaccine trial began", "the market rallied", "the coach was sacked",
             "flights were cancelled", "a new museum opened", "tech shares slumped", "the derby ended in a draw"]
QUERIES = ["paris", "football", "Oil Markets", "weather today", ""]

# As TF Serving sees the model: a fresh interpreter with TensorFlow and tensorflow-text only.
SERVE = textwrap.dedent("""
    import json, sys
    import tensorflow as tf, tensorflow_text  # noqa: F401
    assert not any(m.split(".")[0] in ("kbert", "keras_hub", "faiss") for m in sys.modules), "not a bare TF process"
    signatures = tf.saved_model.load(sys.argv[1]).signatures
    texts = json.loads(sys.argv[2])
    out = {"signatures": sorted(signatures)}
    for name in ("serving_default", "search"):
        for key, value in signatures[name](text=tf.constant(texts, tf.string)).items():
            out[f"{name}.{key}"] = {"dtype": value.dtype.name, "shape": value.shape.as_list(),
                                    "value": [[x.decode() if isinstance(x, bytes) else x for x in row]
                                              for row in value.numpy().tolist()]}
    out["empty"] = signatures["search"](text=tf.constant([], tf.string))["ids"].shape.as_list()
    print(json.dumps(out))
""")


def serve(version_dir, texts):
    done = subprocess.run([sys.executable, "-c", SERVE, str(version_dir), json.dumps(texts)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def embedder_folder(tmp_path_factory):
    """A sentence-transformers folder on the tiny checkpoint: mean pooling, Normalize, a query prompt that is not
    the default one (so serving_default embeds texts as they are and search embeds 'query: ' + text)."""
    folder = tmp_path_factory.mktemp("st") / "tiny-st"
    shutil.copytree(CHECKPOINTS / "tiny-uncased-cls", folder)
    modules = [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")]
    files = {"modules.json": [{"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
                              for i, (path, kind) in enumerate(modules)],
             "1_Pooling/config.json": {"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True},
             "sentence_bert_config.json": {"max_seq_length": 32, "do_lower_case": False},
             "config_sentence_transformers.json": {"prompts": {"query": "query: "}, "default_prompt_name": None}}
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(content))
    return folder


@pytest.fixture(scope="module")
def index_folder(embedder_folder):
    corpus = embedder_folder.parent / "news.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"doc-{i}", "text": t}) + "\n" for i, t in enumerate(DOCUMENTS)))
    build_index(embedder_folder, corpus, embedder_folder.parent / "idx")
    return embedder_folder.parent / "idx"


def test_search_signature_equals_search_index(tmp_path, embedder_folder, index_folder):
    version = export_saved_model(embedder_folder, tmp_path / "news", corpus_index=index_folder, top_k=5)
    got = serve(version, QUERIES)
    assert got["signatures"] == ["search", "serving_default"]
    assert (got["search.ids"]["dtype"], got["search.ids"]["shape"]) == ("string", [5, 5])
    assert (got["search.scores"]["dtype"], got["search.scores"]["shape"]) == ("float32", [5, 5])
    assert got["empty"] == [0, 5]
    want = search_index(index_folder, QUERIES, k=5)  # FAISS, queries embedded with the query prompt
    for ids, scores, hits in zip(got["search.ids"]["value"], got["search.scores"]["value"], want):
        assert ids == [hit["id"] for hit in hits]
        np.testing.assert_allclose(scores, [hit["score"] for hit in hits], atol=1e-5)
    # serving_default is the plain embedding signature: no prompt, normalised, nothing else
    assert [k for k in got if k.startswith("serving_default.")] == ["serving_default.embedding"]
    plain = kbert.pipeline("sentence-embedding", model=embedder_folder)(QUERIES, return_tensors=True)
    np.testing.assert_allclose(got["serving_default.embedding"]["value"], plain, atol=1e-5)
    metadata = json.loads((version / "assets.extra" / "kbert.json").read_text())
    assert metadata["task"] == "sentence-embedding" and metadata["prompt"] is None
    assert metadata["search"] == {"documents": 20, "dimension": 32, "metric": "cosine", "top_k": 5,
                                  "index": str(index_folder.resolve()), "model": str(embedder_folder.resolve()),
                                  "corpus": str((embedder_folder.parent / "news.jsonl").resolve())}


def test_export_command_clips_top_k_to_the_corpus(tmp_path, capsys, embedder_folder, index_folder):
    code = main(["export", "--model", str(embedder_folder), "--output", str(tmp_path / "news"),
                 "--corpus-index", str(index_folder), "--top-k", "50"])  # the task defaults to sentence-embedding
    out, err = capsys.readouterr()
    assert code == 0, err
    version = json.loads(out)["saved_model"]
    metadata = json.loads((tmp_path / "news" / "1" / "assets.extra" / "kbert.json").read_text())
    assert version.endswith("1") and metadata["search"]["top_k"] == 20 and metadata["search"]["documents"] == 20


def test_corpus_index_errors(tmp_path, embedder_folder, index_folder, monkeypatch):
    corpus = embedder_folder.parent / "news.jsonl"
    build_index(embedder_folder, corpus, tmp_path / "hnsw", approximate="hnsw")
    with pytest.raises(ExportError, match="hnsw: a hnsw index; the search signature scores every vector, so give an "
                                          "exact index"):
        export_saved_model(embedder_folder, tmp_path / "a", corpus_index=tmp_path / "hnsw")
    with pytest.raises(ExportError, match="top_k is the size of the search signature's answers; give corpus_index= too"):
        export_saved_model(embedder_folder, tmp_path / "a", top_k=3)
    with pytest.raises(ExportError, match="corpus_index needs the sentence-embedding task, not text-classification"):
        export_saved_model(embedder_folder, tmp_path / "a", task="text-classification", corpus_index=index_folder)
    with pytest.raises(InputError, match="top_k must be a positive int, got 0"):
        export_saved_model(embedder_folder, tmp_path / "a", corpus_index=index_folder, top_k=0)
    monkeypatch.setattr(search_graph, "MAX_VECTORS", 10)
    with pytest.raises(ExportError, match="idx: 20 vectors; the search signature holds 1 to 10"):
        export_saved_model(embedder_folder, tmp_path / "a", corpus_index=index_folder)
    other = VectorIndex(16, model={"model": "/models/other"})
    other.add(np.ones((2, 16), np.float32))
    other.save(tmp_path / "other")
    with pytest.raises(ExportError, match=r"other: 16-dimensional vectors \(made by /models/other\) but .*tiny-st "
                                          r"gives 32-dimensional ones"):
        export_saved_model(embedder_folder, tmp_path / "a", corpus_index=tmp_path / "other")
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())  # nothing half-written


def test_export_command_errors_are_one_line(tmp_path, capsys, embedder_folder):
    code = main(["export", "--model", str(embedder_folder), "--output", str(tmp_path / "x"),
                 "--corpus-index", str(tmp_path / "nowhere")])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.startswith("kbert: error: ") and "nowhere: no such index folder" in err

"""kbert.vector_index and kbert.semantic_search: the FAISS vector index (exact = brute force, HNSW and IVF recall,
chunks, save/load), corpus files, building and searching an index with a sentence-embedding model (FAISS and
TensorFlow in one process), and the `kbert index` / `kbert search` commands."""

import io
import json
import sys

import numpy as np
import pytest

from conftest import CHECKPOINTS
from kbert.cli import main
from kbert.errors import DataError, DataWarning, InputError
from kbert.semantic_search.corpus import read_corpus
from kbert.vector_index import IndexMismatchError, IndexNotFoundError, VectorIndex
from kbert.semantic_search.indexing import Embedder, build_index, search_index
from kbert.metrics.ranking import retrieval_metrics

TINY = CHECKPOINTS / "tiny-uncased-cls"  # 32-dimensional mean-pooled vectors, fast


def random_vectors(n, dim=48, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def clustered_vectors(n, dim=32, centers=40, seed=0):
    """Vectors around ``centers`` random points, sorted by their cluster (as a corpus sorted by topic)."""
    rng = np.random.default_rng(seed)
    points = rng.standard_normal((centers, dim)).astype(np.float32)
    return (points[np.sort(rng.integers(0, centers, n))] + rng.standard_normal((n, dim))).astype(np.float32)


def recall(found, top):
    return np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found.positions, top.tolist())])


def brute_force(corpus, queries, k, cosine=True):
    if cosine:
        corpus = corpus / np.linalg.norm(corpus, axis=1, keepdims=True)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    scores = queries @ corpus.T  # (Q, N)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return top, np.take_along_axis(scores, top, axis=1)


# --- the index -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["cosine", "inner_product"])
def test_exact_search_is_brute_force_top_k(metric):
    corpus, queries = random_vectors(2000), random_vectors(40, seed=1)
    index = VectorIndex(48, metric=metric)
    index.add(corpus)
    found = index.search(queries, k=10)
    top, scores = brute_force(corpus, queries, 10, cosine=metric == "cosine")
    assert found.positions == top.tolist()
    assert found.ids == [[str(p) for p in row] for row in top]  # default ids: positions
    np.testing.assert_allclose(found.scores, scores, atol=1e-5)


def test_hnsw_recall_is_high():
    corpus, queries = random_vectors(3000, dim=32), random_vectors(200, dim=32, seed=2)
    index = VectorIndex(32, kind="hnsw")
    for start in range(0, 3000, 700):  # added in chunks
        index.add(corpus[start:start + 700])
    found = index.search(queries, k=10)
    top, _ = brute_force(corpus, queries, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found.positions, top.tolist())])
    assert recall >= 0.95, recall
    assert all(row == sorted(row, reverse=True) for row in found.scores)


def test_ivf_recall_is_high_and_nprobe_matters():
    data = clustered_vectors(4200)
    queries_at = np.random.default_rng(1).permutation(4200)[:200]
    corpus, queries = np.delete(data, queries_at, axis=0), data[queries_at]  # 4000 sorted by cluster, 200 queries
    index = VectorIndex(32, kind="ivf")
    for start in range(0, 4000, 700):  # chunks of one or two clusters each: the lists must come from all of them
        index.add(corpus[start:start + 700])
    assert index.describe()["ivf_lists_used"] is None  # nothing learnt before the first search
    top, _ = brute_force(corpus, queries, 10)
    found = index.search(queries, k=10)  # the default nprobe, 10
    assert index.describe()["ivf_lists_used"] == 63 == round(4000 ** 0.5)
    assert recall(found, top) >= 0.95, recall(found, top)
    assert recall(index.search(queries, k=10, nprobe=1), top) < recall(found, top)
    assert index.search(queries, k=10, nprobe=63).positions == top.tolist()  # every list scanned: exact
    assert all(row == sorted(row, reverse=True) for row in found.scores)


@pytest.mark.parametrize("count, requested, used", [(4000, None, 63), (4000, 20, 20), (4000, 1000, 102), (20, None, 1)])
def test_ivf_lists_are_capped_by_the_training_points(count, requested, used):
    index = VectorIndex(32, kind="ivf", ivf_lists=requested)
    index.add(clustered_vectors(count))
    index.search(clustered_vectors(1, seed=2), k=1)
    assert index.describe()["ivf_lists"] == requested and index.describe()["ivf_lists_used"] == used


def test_chunked_adds_equal_one_add_and_keep_ids_and_documents():
    corpus = random_vectors(300)
    ids = [f"doc-{i}" for i in range(300)]
    docs = [{"text": f"text {i}", "n": i} for i in range(300)]
    whole, chunked = VectorIndex(48), VectorIndex(48)
    whole.add(corpus, ids, docs)
    for start in range(0, 300, 64):
        chunked.add(corpus[start:start + 64], ids[start:start + 64], docs[start:start + 64])
    queries = random_vectors(5, seed=3)
    assert whole.search(queries, 7) == chunked.search(queries, 7)
    assert len(chunked) == 300 and chunked.ids == ids
    assert chunked.document(123) == {"id": "doc-123", "text": "text 123", "n": 123}


def test_k_larger_than_the_index_and_an_empty_index():
    index = VectorIndex(48)
    assert index.search(random_vectors(2), k=3).ids == [[], []]
    index.add(random_vectors(4))
    found = index.search(random_vectors(1)[0], k=10)  # one (dimension,) vector is one query
    assert len(found.ids) == 1 and sorted(found.ids[0]) == ["0", "1", "2", "3"]


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_save_load_round_trip(tmp_path, kind):
    corpus = random_vectors(500)
    index = VectorIndex(48, kind=kind, ef_search=64, model={"model": "minilm"})
    index.add(corpus, [f"d{i}" for i in range(500)], [{"text": f"é {i} 😀"} for i in range(500)])
    queries = random_vectors(10, seed=4)
    before = index.search(queries, 5)
    index.save(tmp_path / "idx")
    loaded = VectorIndex.load(tmp_path / "idx")
    assert (loaded.kind, loaded.metric, loaded.dimension, len(loaded)) == (kind, "cosine", 48, 500)
    assert loaded.model == {"model": "minilm"} and loaded.settings["ef_search"] == 64
    assert loaded.search(queries, 5) == before
    assert loaded.document(499) == {"id": "d499", "text": "é 499 😀"}
    meta = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert meta["count"] == 500 and meta["faiss_version"]
    loaded.add(random_vectors(2, seed=5), ["new1", "new2"], [{"text": "a"}, {"text": "b"}])  # a copy grows
    assert len(loaded) == 502 and loaded.document(501)["id"] == "new2" and loaded.document(0)["id"] == "d0"
    assert len(VectorIndex.load(tmp_path / "idx")) == 500  # the saved folder is unchanged
    loaded.save(tmp_path / "idx")  # replacing an index folder is allowed
    assert len(VectorIndex.load(tmp_path / "idx")) == 502
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folders left


def test_ivf_save_load_keeps_lists_and_nprobe(tmp_path):
    corpus, queries = clustered_vectors(3000), clustered_vectors(50, seed=3)
    index = VectorIndex(32, kind="ivf", ivf_lists=30, nprobe=3)
    index.add(corpus)
    index.save(tmp_path / "idx")
    loaded = VectorIndex.load(tmp_path / "idx")
    meta = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert (meta["kind"], meta["ivf_lists"], meta["ivf_lists_used"], meta["nprobe"]) == ("ivf", 30, 30, 3)
    assert loaded.settings["nprobe"] == 3 and loaded.describe()["ivf_lists_used"] == 30
    assert loaded.search(queries, 10) == index.search(queries, 10) == index.search(queries, 10, nprobe=3)
    assert loaded.search(queries, 10, nprobe=30) == index.search(queries, 10, nprobe=30)
    assert loaded.search(queries, 10, nprobe=30) != loaded.search(queries, 10)  # 3 of 30 lists: some misses
    np.testing.assert_allclose(loaded.vectors(), corpus / np.linalg.norm(corpus, axis=1, keepdims=True), atol=1e-6)


def test_ivf_errors_name_the_problem(tmp_path):
    with pytest.raises(InputError, match="ivf_lists must be a positive int, got 0"):
        VectorIndex(8, kind="ivf", ivf_lists=0)
    with pytest.raises(InputError, match="nprobe must be a positive int, got '5'"):
        VectorIndex(8, kind="ivf", nprobe="5")
    with pytest.raises(InputError, match="idx: an ivf index learns its lists from its vectors; add some"):
        VectorIndex(8, kind="ivf").save(tmp_path / "idx")
    exact = VectorIndex(8)
    exact.add(random_vectors(3, dim=8))
    with pytest.raises(InputError, match="nprobe applies to ivf indexes; this one is exact"):
        exact.search(random_vectors(1, dim=8), nprobe=2)
    ivf = VectorIndex(8, kind="ivf")
    ivf.add(random_vectors(3, dim=8))
    with pytest.raises(InputError, match="nprobe must be a positive int, got 0"):
        ivf.search(random_vectors(1, dim=8), nprobe=0)
    with pytest.raises(InputError, match=r"ivf_lists applies to approximate='ivf' indexes, not to hnsw ones"):
        build_index(TINY, tmp_path / "c.csv", tmp_path / "i", approximate="hnsw", ivf_lists=4)
    with pytest.raises(InputError, match=r"approximate must be one of \['hnsw', 'ivf'\] or None"):
        build_index(TINY, tmp_path / "c.csv", tmp_path / "i", approximate="lsh")


def test_index_errors_name_the_problem(tmp_path):
    with pytest.raises(IndexNotFoundError, match="nowhere: no such index folder"):
        VectorIndex.load(tmp_path / "nowhere")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "index.json").write_text("{}")
    with pytest.raises(IndexNotFoundError, match=r"not a vector index \(missing index.faiss, ids.json"):
        VectorIndex.load(tmp_path / "half")
    index = VectorIndex(48, model={"model": "/models/x"})
    with pytest.raises(IndexMismatchError, match=r"added vectors have shape \(2, 32\); this index holds "
                                                 r"48-dimensional vectors made by /models/x"):
        index.add(random_vectors(2, dim=32))
    index.add(random_vectors(2))
    with pytest.raises(IndexMismatchError, match=r"query vectors have shape \(384,\)"):
        index.search(np.zeros(384, np.float32))
    with pytest.raises(InputError, match="k must be a positive int"):
        index.search(random_vectors(1), k=0)
    with pytest.raises(InputError, match="2 vectors but 1 ids"):
        index.add(random_vectors(2), ids=["a"])
    with pytest.raises(InputError, match="document ids must be strings, got int 7"):
        index.add(random_vectors(1), ids=[7])
    with pytest.raises(InputError, match="NaN or infinite"):
        index.add(np.full((1, 48), np.nan, np.float32))
    with pytest.raises(InputError, match=r"index kind must be one of \['exact', 'hnsw', 'ivf'\], got 'lsh'"):
        VectorIndex(48, kind="lsh")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    with pytest.raises(InputError, match="exists and is not a vector index folder"):
        index.save(tmp_path / "notes")
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me"


# --- corpus files --------------------------------------------------------------------------------------
def test_corpus_csv_tsv_and_jsonl(tmp_path):
    csv_path = tmp_path / "a.csv"
    csv_path.write_text('id,title,body,label\nx1,"Oil, up","Two\nlines",3\n\nx2,Cup final,The team won,2\n')
    docs = list(read_corpus(csv_path, text_columns=["title", "body"]))
    assert [(d.id, d.text, d.metadata, d.where[-5:]) for d in docs] == [
        ("x1", "Oil, up Two\nlines", {"label": "3"}, "csv:2"), ("x2", "Cup final The team won", {"label": "2"}, "csv:5")]
    tsv_path = tmp_path / "a.tsv"
    tsv_path.write_text("text\tlabel\nfirst\t1\nsecond\t2\n")
    assert [(d.id, d.text) for d in read_corpus(tsv_path)] == [("0", "first"), ("1", "second")]  # row numbers
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"doc": 5, "text": "hello", "tags": ["a"]}\n\n{"doc": "b", "text": ""}\n')
    assert [(d.id, d.text, d.metadata) for d in read_corpus(jsonl, id_column="doc")] == [
        ("5", "hello", {"tags": ["a"]}), ("b", "", {})]
    by_index = list(read_corpus(csv_path, text_columns=[1], id_column=0))
    assert [d.text for d in by_index] == ["Oil, up", "Cup final"]


@pytest.mark.parametrize("name, content, options, message", [
    ("c.csv", "title,body\na,b\n", {"text_columns": ["text"]}, r"c.csv:1: no column 'text'; the header has \['title', 'body'\]"),
    ("c.csv", "text\nfine\n", {"text_columns": [3]}, "c.csv:1: column 3 does not exist"),
    ("c.csv", "text,label\nok,1\nbad\n", {}, r"c.csv:3: 1 fields, but the header has 2"),
    ("c.csv", 'text,label\nok,1\n"open,1\n', {}, r"c.csv:3: a quoted field starting on this row is never closed"),
    ("c.csv", "id,text\nA,x\nB,y\nA,z\n", {}, r"c.csv:4: id 'A' repeats the document of .*c.csv:2"),
    ("c.csv", "text\n", {}, "c.csv: no documents"),
    ("c.csv", "", {}, "c.csv: no documents"),
    ("c.jsonl", '{"text": "a"}\n{"body": "b"}\n', {}, r"c.jsonl:2: no key 'text'; the object has \['body'\]"),
    ("c.jsonl", '{"text": 3}\n', {}, "c.jsonl:1: 'text' must be a string, got int"),
    ("c.jsonl", '{"text": "a"}\n[1]\n', {}, "c.jsonl:2: expected a JSON object, got list"),
    ("c.jsonl", '{"text": "a"\n', {}, "c.jsonl:1: not valid JSON"),
    ("c.txt", "a\n", {}, "c.txt: a .txt file could hold any format"),
])
def test_corpus_errors_name_file_and_line(tmp_path, name, content, options, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=message):
        list(read_corpus(tmp_path / name, **options))


def test_corpus_not_utf8_names_the_line(tmp_path):
    (tmp_path / "c.csv").write_bytes(b"text\nfine\nbad \xff byte\n")
    with pytest.raises(DataError, match=r"c.csv:3: not UTF-8"):
        list(read_corpus(tmp_path / "c.csv"))


# --- with a model: TensorFlow and FAISS in one process -------------------------------------------------
TEXTS = ["the cat sat on the mat", "stocks fell on monday", "the team won the cup final", "rain is expected today",
         "a new phone was released", "oil prices rose again", "the film opened in paris", "i love paris in spring"]


@pytest.fixture(scope="module")
def tiny_embedder():
    return Embedder(TINY)


def test_tensorflow_and_faiss_in_one_process(tiny_embedder):
    vectors = tiny_embedder.encode(TEXTS)  # computed by TensorFlow
    assert "tensorflow" in sys.modules and "faiss" in sys.modules
    assert vectors.shape == (8, 32) and vectors.dtype == np.float32
    index = VectorIndex(32, metric="inner_product")
    index.add(vectors, ids=[f"t{i}" for i in range(8)])
    queries = tiny_embedder.encode(["paris", "cup"])
    found = index.search(queries, k=8)
    top, scores = brute_force(vectors, queries, 8, cosine=False)
    assert found.positions == top.tolist()
    np.testing.assert_allclose(found.scores, scores, atol=1e-5)


def test_build_and_search_an_index(tmp_path, tiny_embedder):
    corpus = tmp_path / "news.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"n{i}", "text": t, "source": "s"}) + "\n" for i, t in enumerate(TEXTS)))
    summary = build_index(TINY, corpus, tmp_path / "idx", chunk_size=3)
    assert summary == {"index": str(tmp_path / "idx"), "documents": 8, "dimension": 32, "kind": "exact",
                       "model": str(TINY.resolve())}
    results = search_index(tmp_path / "idx", ["paris", "cup final"], k=3)
    vectors = tiny_embedder.encode(TEXTS)
    top, scores = brute_force(vectors, tiny_embedder.encode(["paris", "cup final"]), 3)  # cosine index
    for hits, want_rows, want_scores in zip(results, top, scores):
        assert [h["id"] for h in hits] == [f"n{i}" for i in want_rows]
        np.testing.assert_allclose([h["score"] for h in hits], want_scores, atol=1e-5)
        assert [h["rank"] for h in hits] == [1, 2, 3] and hits[0]["text"] == TEXTS[want_rows[0]]
        assert hits[0]["source"] == "s"


def test_search_with_a_model_of_another_dimension_fails(tmp_path, minilm_path):
    corpus = tmp_path / "c.csv"
    corpus.write_text("text\n" + "\n".join(TEXTS) + "\n")
    build_index(TINY, corpus, tmp_path / "idx")
    with pytest.raises(IndexMismatchError, match=r"model minilm gives 384-dimensional vectors but the index holds "
                                                 r"32-dimensional ones \(made by .*tiny-uncased-cls\)"):
        search_index(tmp_path / "idx", ["paris"], model="minilm")


def test_search_with_another_model_of_the_same_dimension_warns(tmp_path, tiny_embedder):
    corpus = tmp_path / "c.csv"
    corpus.write_text("text\n" + "\n".join(TEXTS) + "\n")
    build_index(TINY, corpus, tmp_path / "idx")
    with pytest.warns(DataWarning, match="the index was built with .*tiny-uncased-cls, the queries are embedded "
                                         "with .*tiny-regression"):
        search_index(tmp_path / "idx", ["paris"], model=CHECKPOINTS / "tiny-regression")


def test_bad_rows_fail_before_anything_is_embedded(tmp_path, monkeypatch):
    corpus = tmp_path / "c.csv"
    corpus.write_text("text,label\n" + "".join(f"text {i},1\n" for i in range(50)) + "broken\n")
    monkeypatch.setattr(Embedder, "__init__", lambda *a, **k: pytest.fail("embedded before checking the rows"))
    with pytest.raises(DataError, match=r"c.csv:52: 1 fields"):
        build_index(TINY, corpus, tmp_path / "idx")
    assert not (tmp_path / "idx").exists()


# --- the commands --------------------------------------------------------------------------------------
def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_index_and_search_commands(tmp_path, capsys):
    corpus = tmp_path / "articles.csv"
    corpus.write_text("label,title,description\n" + "".join(
        f'{i % 4},"{t.split()[0]}","{t}"\n' for i, t in enumerate(TEXTS)))
    code, out, err = run_cli(capsys, "index", "--model", TINY, "--corpus", corpus, "--output", tmp_path / "idx",
                             "--text-column", "title,description", "--approximate", "hnsw")
    assert code == 0, err
    assert json.loads(out)["documents"] == 8 and json.loads(out)["kind"] == "hnsw"
    assert "chunk" not in err  # no bar when stderr is piped
    code, out, err = run_cli(capsys, "search", "--index", tmp_path / "idx", "-k", "2", "paris", "stocks")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["query"] for line in lines] == ["paris", "stocks"]
    assert all(len(line["results"]) == 2 for line in lines)
    hit = lines[0]["results"][0]
    assert sorted(hit) == ["id", "label", "rank", "score", "text"] and hit["text"].split()[0] == hit["text"].split()[1]
    code, out, err = run_cli(capsys, "search", "--index", tmp_path / "idx", "--table", "-k", "3", "paris")
    table = out.splitlines()
    assert code == 0 and table[0] == "query: paris" and table[1].split() == ["rank", "score", "id", "text"]
    assert len(table) == 5 and table[2].split()[0] == "1"


def test_ivf_index_and_search_commands(tmp_path, capsys, tiny_embedder):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"n{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    code, out, err = run_cli(capsys, "index", "--model", TINY, "--corpus", corpus, "--output", tmp_path / "idx",
                             "--approximate", "ivf", "--ivf-lists", "4")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["kind"], summary["ivf_lists_used"], summary["nprobe"]) == ("ivf", 1, 10)  # 8 documents: 1 list
    code, out, err = run_cli(capsys, "search", "--index", tmp_path / "idx", "-k", "3", "--nprobe", "1", "paris")
    assert code == 0, err
    vectors = tiny_embedder.encode(TEXTS)
    top, _ = brute_force(vectors, tiny_embedder.encode(["paris"]), 3)  # one list: IVF is exact
    assert [hit["id"] for hit in json.loads(out)["results"]] == [f"n{i}" for i in top[0]]


def test_index_command_shows_a_bar_on_a_terminal(tmp_path, capsys, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["index", "--model", str(TINY), "--corpus", str(corpus), "--output", str(tmp_path / "idx")]) == 0
    assert "indexing" in terminal.getvalue() and "/1 [" in terminal.getvalue()  # one chunk of 8 documents
    assert "predicting" not in terminal.getvalue()


@pytest.mark.parametrize("argv, message", [
    (["search", "--index", "{tmp}/nowhere", "paris"], "nowhere: no such index folder"),
    (["search", "--index", "{tmp}/idx", "-k", "0", "paris"], "-k must be a positive integer"),
    (["search", "--index", "{tmp}/exact", "--nprobe", "4", "paris"], "nprobe applies to ivf indexes; this one is exact"),
    (["index", "--model", str(TINY), "--corpus", "{tmp}/c.csv", "--output", "{tmp}/i4", "--ivf-lists", "4"],
     "--ivf-lists applies to --approximate ivf indexes, not to exact ones"),
    (["index", "--model", str(TINY), "--corpus", "{tmp}/c.csv", "--output", "{tmp}/i2", "--text-column", "body"],
     r"c.csv:1: no column 'body'; the header has ['text']"),
    (["index", "--model", str(TINY), "--corpus", "{tmp}/empty.csv", "--output", "{tmp}/i3"], "empty.csv: no documents"),
    (["index", "--model", str(TINY), "--corpus", "{tmp}/c.csv", "--output", "{tmp}/c.csv"],
     "c.csv: exists and is not a vector index folder"),
])
def test_command_errors_are_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "c.csv").write_text("text\nhello\n")
    (tmp_path / "empty.csv").write_text("text\n")
    if "{tmp}/exact" in argv:
        build_index(TINY, tmp_path / "c.csv", tmp_path / "exact")
    code, out, err = run_cli(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert code == 2 and out == "" and err.startswith("kbert: error: ") and message in err, err


# --- real data -----------------------------------------------------------------------------------------
def test_minilm_finds_ag_news_articles_by_their_titles(tmp_path, shared_data, minilm_path):
    """AG News as news search: a title is the query, its description the one relevant article."""
    import csv

    path = shared_data / "ag_news" / "ag_news_part_shared.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:200]
    corpus = tmp_path / "articles.jsonl"
    corpus.write_text("".join(json.dumps({"id": str(i), "text": r["description"]}) + "\n" for i, r in enumerate(rows)))
    build_index("minilm", corpus, tmp_path / "idx")
    titles = [r["title"] for r in rows]
    hits = search_index(tmp_path / "idx", titles, k=10)
    metrics = retrieval_metrics({str(i): [h["id"] for h in h_list] for i, h_list in enumerate(hits)},
                                {str(i): {str(i)} for i in range(len(rows))}, accuracy_at_k=[1, 10],
                                precision_recall_at_k=[10], mrr_at_k=[10], ndcg_at_k=[10], map_at_k=[10])
    assert metrics["accuracy@1"] > 0.7 and metrics["recall@10"] > 0.9, metrics
    assert metrics["mrr@10"] == pytest.approx(metrics["map@10"])  # one relevant document per query

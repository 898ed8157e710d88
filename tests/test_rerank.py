"""Cross-encoder re-ranking (kbert.semantic_search.rerank): scores are the text-classification pipeline's for
(query, document) pairs, search_index re-orders the bi-encoder's best documents by them, and `kbert search
--rerank` prints the same hits."""

import json

import numpy as np
import pytest

import kbert
from conftest import CHECKPOINTS
from kbert.cli import main
from kbert.errors import InputError
from kbert.vector_index import VectorIndex
from kbert.semantic_search.indexing import Embedder, build_index, search_index
from kbert.semantic_search.rerank import Reranker

TINY = CHECKPOINTS / "tiny-uncased-cls"  # labels negative, neutral, positive; also the (mean-pooled) bi-encoder
TEXTS = ["the cat sat on the mat", "stocks fell on monday", "the team won the cup final", "rain is expected today",
         "a new phone was released", "oil prices rose again", "the film opened in paris", "i love paris in spring",
         "the bank raised its rates", "a storm hit the coast", "the striker scored twice", "paris fashion week opens"]
QUERIES = ["paris", "football cup", "oil and stocks"]


@pytest.fixture(scope="module")
def index_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rerank")
    corpus = folder / "news.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"n{i}", "text": t, "source": "s"}) + "\n"
                              for i, t in enumerate(TEXTS)))
    build_index(TINY, corpus, folder / "idx")
    return folder / "idx"


@pytest.fixture(scope="module")
def classifier():
    return kbert.pipeline("text-classification", model=TINY)


@pytest.fixture(scope="module")
def negative():
    """Scores spread over orders of magnitude with this random model (neutral's are all ~1 - 1e-6)."""
    return Reranker(TINY, relevant_label="negative")


def pipeline_scores(classifier, query, texts, label, **options):
    """Independently: the pipeline's probability of ``label`` for each (query, text) pair."""
    ranked = classifier([{"text": query, "text_pair": t} for t in texts], top_k=None, **options)
    return [next(d["score"] for d in labels if d["label"] == label) for labels in ranked]


def test_reranked_order_is_the_cross_encoder_order(index_folder, classifier, negative):
    retrieved = search_index(index_folder, QUERIES, k=6)  # the bi-encoder's best 6
    reranked = search_index(index_folder, QUERIES, k=3, rerank=negative, rerank_depth=6)
    for query, before, after in zip(QUERIES, retrieved, reranked):
        scores = pipeline_scores(classifier, query, [hit["text"] for hit in before], "negative")
        order = np.argsort(-np.asarray(scores), kind="stable")[:3]
        assert [hit["id"] for hit in after] == [before[i]["id"] for i in order]
        np.testing.assert_allclose([hit["score"] for hit in after], [scores[i] for i in order], rtol=1e-4)
        assert [hit["rerank_score"] for hit in after] == [hit["score"] for hit in after]
        assert [hit["retrieval_score"] for hit in after] == [before[i]["score"] for i in order]  # the bi-encoder's
        assert [hit["retrieval_rank"] for hit in after] == [int(i) + 1 for i in order]
        assert [hit["rank"] for hit in after] == [1, 2, 3]
        assert after[0]["text"] == before[order[0]]["text"] and after[0]["source"] == "s"
    assert any([h["id"] for h in after] != [h["id"] for h in before[:3]] for before, after in zip(retrieved, reranked))


def test_reciprocal_rank_fusion_of_the_two_rankings(index_folder, classifier, negative):
    """score = 1/(60 + bi-encoder rank) + 1/(60 + cross-encoder rank), computed here from the two orders."""
    retrieved = search_index(index_folder, QUERIES, k=8)
    fused = search_index(index_folder, QUERIES, k=4, rerank=negative, rerank_depth=8, fusion="rrf")
    moved = 0
    for query, before, after in zip(QUERIES, retrieved, fused):
        scores = pipeline_scores(classifier, query, [hit["text"] for hit in before], "negative")
        cross_rank = {int(i): r for r, i in enumerate(np.argsort(-np.asarray(scores), kind="stable"), start=1)}
        rrf = {i: 1 / (60 + i + 1) + 1 / (60 + cross_rank[i]) for i in range(8)}
        order = sorted(range(8), key=lambda i: (-rrf[i], i))[:4]
        assert [hit["id"] for hit in after] == [before[i]["id"] for i in order]
        np.testing.assert_allclose([hit["score"] for hit in after], [rrf[i] for i in order], rtol=1e-12)
        assert [hit["rerank_rank"] for hit in after] == [cross_rank[i] for i in order]
        np.testing.assert_allclose([hit["rerank_score"] for hit in after], [scores[i] for i in order], rtol=1e-4)
        cross_order = sorted(range(8), key=lambda i: cross_rank[i])[:4]
        moved += order != list(range(4)) and order != cross_order  # neither ranking alone
    assert moved
    with pytest.raises(InputError, match=r"fusion must be one of \['rrf'\] or None, got 'mean'"):
        search_index(index_folder, ["paris"], k=2, rerank=negative, fusion="mean")
    with pytest.raises(InputError, match="fusion goes with rerank"):
        search_index(index_folder, ["paris"], k=2, fusion="rrf")


def test_default_depth_reranks_max_k_50(index_folder, classifier, negative):
    """12 documents < 50: every document is re-scored, so the best 2 are the cross-encoder's best of all."""
    (hits,) = search_index(index_folder, ["paris"], k=2, rerank=negative)
    scores = pipeline_scores(classifier, "paris", TEXTS, "negative")
    assert [hit["id"] for hit in hits] == [f"n{i}" for i in np.argsort(-np.asarray(scores), kind="stable")[:2]]


def test_relevant_label_defaults_and_errors(classifier):
    reranker = Reranker(TINY)  # no relevant_label: the first of relevant, 1, LABEL_1, positive
    assert reranker.label == "positive"
    np.testing.assert_allclose(reranker.score("paris", TEXTS[:4]),
                               pipeline_scores(classifier, "paris", TEXTS[:4], "positive"), rtol=1e-4)
    with pytest.raises(InputError, match=r"tiny-uncased-cls: relevant_label 'relevant' is not one of its labels "
                                         r"\['negative', 'neutral', 'positive'\]"):
        Reranker(TINY, relevant_label="relevant")
    with pytest.raises(InputError, match=r"tiny-relu-pair: cannot tell which of its labels \['entailment', "
                                         r"'not_entailment'\] means relevant .*give it with relevant_label="):
        Reranker(CHECKPOINTS / "tiny-relu-pair")
    assert Reranker(CHECKPOINTS / "tiny-relu-pair", relevant_label="entailment").label == "entailment"


def test_one_label_scores_are_the_sigmoid_of_the_logit():
    model = CHECKPOINTS / "tiny-regression"  # one output, LABEL_0; problem_type regression: the pipeline gives logits
    logits = pipeline_scores(kbert.pipeline("text-classification", model=model), "paris", TEXTS[:5], "LABEL_0",
                             function_to_apply="none")
    scores = Reranker(model).score("paris", TEXTS[:5])
    np.testing.assert_allclose(scores, 1 / (1 + np.exp(-np.asarray(logits))), atol=1e-6)
    assert len(set(np.round(scores, 6))) == 5 and all(0 < s < 1 for s in scores)


def test_rerank_errors(index_folder, negative):
    with pytest.raises(InputError, match=r"rerank_depth must be an int of at least k \(5\), got 3"):
        search_index(index_folder, ["paris"], k=5, rerank=negative, rerank_depth=3)
    with pytest.raises(InputError, match="rerank_depth goes with rerank"):
        search_index(index_folder, ["paris"], k=5, rerank_depth=10)
    index = VectorIndex(32)  # vectors without documents: nothing to re-rank with
    index.add(np.random.default_rng(0).standard_normal((4, 32)).astype(np.float32))
    with pytest.raises(InputError, match="document '.' has no text in the index; re-ranking reads the documents"):
        search_index(index, ["paris"], k=2, embedder=Embedder(TINY), rerank=negative)


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_search_command_reranks(index_folder, capsys, negative):
    code, out, err = run_cli(capsys, "search", "--index", index_folder, "-k", "2", "--rerank", TINY,
                             "--relevant-label", "negative", "--rerank-depth", "5", *QUERIES[:2])
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    want = search_index(index_folder, QUERIES[:2], k=2, rerank=negative, rerank_depth=5)
    assert [line["query"] for line in lines] == QUERIES[:2]
    for line, hits in zip(lines, want):
        assert [h["id"] for h in line["results"]] == [h["id"] for h in hits]
        np.testing.assert_allclose([h["score"] for h in line["results"]], [h["score"] for h in hits], rtol=1e-4)
        assert sorted(line["results"][0]) == ["id", "rank", "rerank_score", "retrieval_rank", "retrieval_score",
                                              "score", "source", "text"]
    code, out, err = run_cli(capsys, "search", "--index", index_folder, "--table", "-k", "3", "--rerank", TINY, "paris")
    table = out.splitlines()
    assert code == 0 and table[1].split() == ["rank", "score", "retrieval", "id", "text"] and len(table) == 5
    code, out, err = run_cli(capsys, "search", "--index", index_folder, "-k", "3", "--rerank", TINY,
                             "--relevant-label", "negative", "--rerank-depth", "8", "--fusion", "rrf", QUERIES[0])
    want = search_index(index_folder, QUERIES[:1], k=3, rerank=negative, rerank_depth=8, fusion="rrf")[0]
    assert code == 0 and [h["id"] for h in json.loads(out)["results"]] == [h["id"] for h in want]


@pytest.mark.parametrize("argv, message", [
    (["--rerank-depth", "5"], "--rerank-depth, --relevant-label and --fusion go with --rerank MODEL"),
    (["--fusion", "rrf"], "--rerank-depth, --relevant-label and --fusion go with --rerank MODEL"),
    (["--rerank", str(TINY), "--relevant-label", "yes"], "relevant_label 'yes' is not one of its labels"),
    (["--rerank", str(TINY), "-k", "4", "--rerank-depth", "2"], "rerank_depth must be an int of at least k (4)"),
])
def test_search_command_rerank_errors_are_one_line(index_folder, capsys, argv, message):
    code, out, err = run_cli(capsys, "search", "--index", index_folder, *argv, "paris")
    assert code == 2 and out == "" and err.startswith("kbert: error: ") and message in err, err

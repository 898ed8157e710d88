"""Retrieval quality: fine-tuning the embedded MiniLM with in-batch negatives, against sentence-transformers' MNRL
run with the same settings, and a cross-encoder re-ranker on top.

Data (real, from ../shared/data; evaluation on queries *and* articles the training never saw):

* ``ag_news``: a title is the query, its description the relevant article. Rows 0-4,599 train, 4,600-5,599
  evaluate (1,000 queries against a corpus of their 1,000 descriptions).
* ``squad``: SQuAD v1.1 question -> its paragraph. Articles 0-29 train (one row per question, so a paragraph
  is the positive of ~5 rows and often appears twice in a batch: duplicate masking matters), articles 30-37
  evaluate (their questions against their paragraphs).

Runs, each from all-MiniLM-L6-v2, 1 epoch, batch 32, lr 5e-5, warm-up 10 %, weight decay 0.01, max 128 tokens,
seed 42, scale 20 (all the settings the two libraries share, set equal):

1. ``untuned``: the model as shipped;
2. ``kbert``: ``kbert.train(task="retrieval")`` (duplicates masked);
3. ``sentence-transformers``: ``SentenceTransformerTrainer`` + ``MultipleNegativesRankingLoss`` in .venv-ref
   (``st_train_retrieval.py``; its default batch sampler, or ``--st-sampler no_duplicates``);
4. ``--rerank``: ``kbert mine-negatives`` with the kbert model on the training rows (3 per row), a cross-encoder
   (``kbert train --task text-classification`` from MiniLM on the relevant / irrelevant pairs) re-scoring the
   kbert bi-encoder's top 20 (``kbert.semantic_search.indexing.search_index(rerank=...)``), ordered by its scores alone
   and by reciprocal rank fusion with the bi-encoder's ranking (``fusion="rrf"``). ``--reuse --rerank`` scores
   the bi-encoder and cross-encoder already trained in ``--work`` again.

Every model is scored by the same code (``kbert evaluate --task retrieval``: sentence-transformers'
InformationRetrievalEvaluator definitions); the sentence-transformers run also reports its own evaluator's MRR@10
as a cross-check. Quality is measured here, never asserted in tests.

    .venv/bin/python benchmarks/bench_retrieval_training.py --dataset ag_news [--rerank] [--train-rows N]

Measured: see the README's "Retrieval quality" table (figures filled in from runs of this script).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import data_dir, run_reference  # noqa: E402

SETTINGS = {"epochs": 1, "batch_size": 32, "learning_rate": 5e-5, "warmup": 0.1, "weight_decay": 0.01,
            "max_length": 128, "seed": 42, "scale": 20.0}
RERANK_DEPTH = 20


def ag_news_rows() -> tuple[list, list]:
    path = data_dir() / "ag_news" / "ag_news_part_shared.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = [(r["title"], r["description"]) for r in csv.DictReader(f)]
    return rows[:4600], rows[4600:]


def squad_rows() -> tuple[list, list]:
    path = data_dir() / "squad_v1.1" / "dev-v1.1-articles-00-37.json"
    articles = json.loads(path.read_text(encoding="utf-8"))["data"]

    def rows(part):
        return [(qa["question"], p["context"]) for a in part for p in a["paragraphs"] for qa in p["qas"]]

    return rows(articles[:30]), rows(articles[30:])


def write_pairs(rows, path: pathlib.Path) -> pathlib.Path:
    path.write_text("".join(json.dumps({"query": q, "positive": p}, ensure_ascii=False) + "\n" for q, p in rows),
                    encoding="utf-8")
    return path


def headline(metrics: dict) -> dict:
    return {k: round(metrics[k], 4) for k in ("mrr@10", "ndcg@10", "recall@1", "recall@10", "recall@100", "map@100")
            if k in metrics}


def rerank_run(model: str, train_file, eval_rows, work: pathlib.Path, minilm: str, *, rows: int | None,
               negatives: int, queries: int | None, miner: str | None = None, epochs: int = 1,
               reuse: bool = False) -> dict:
    """Mine ``negatives`` per row with ``miner`` (default ``model``) on the first ``rows`` training rows, train a
    cross-encoder on them for ``epochs``, re-rank ``model``'s top 20 for the first ``queries`` evaluation queries
    (against the whole evaluation corpus): by the cross-encoder's scores, and by reciprocal rank fusion of the
    two rankings (``fusion="rrf"``). ``reuse``: a cross-encoder already trained in ``work`` is scored again."""
    import kbert
    from kbert.semantic_search.indexing import build_index, search_index
    from kbert.metrics.ranking import retrieval_metrics
    from kbert.semantic_search.negative_mining import mine_hard_negatives, write_mined
    from kbert.semantic_search.rerank import Reranker
    from kbert.tasks.retrieval.pairs import read_pairs
    from kbert.tasks.retrieval.scoring import CUTOFFS

    summary, mined_seconds, cross_seconds = "reused", None, None
    if not (reuse and (work / "cross-encoder" / "model.safetensors").is_file()):
        start = time.time()
        mined, summary = mine_hard_negatives(miner or model, read_pairs(train_file)[:rows], num_negatives=negatives)
        write_mined(mined, work / "mined.jsonl", work / "rerank_pairs.tsv")
        mined_seconds = round(time.time() - start, 1)
        start = time.time()
        kbert.train(train=str(work / "rerank_pairs.tsv"), output=str(work / "cross-encoder"), model=minilm,
                    epochs=epochs, batch_size=32, learning_rate=5e-5, max_length=256, seed=42, verbose=2)
        cross_seconds = round(time.time() - start, 1)
    documents = list(dict.fromkeys(p for _, p in eval_rows))
    corpus = work / "eval_corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": str(i), "text": t}, ensure_ascii=False) + "\n"
                              for i, t in enumerate(documents)), encoding="utf-8")
    build_index(model, corpus, work / "eval_index")
    queries = list(dict.fromkeys(q for q, _ in eval_rows))[:queries]
    position = {t: str(i) for i, t in enumerate(documents)}
    relevant = {}
    for q, p in eval_rows:
        if q in queries:
            relevant.setdefault(q, set()).add(position[p])
    results = {}
    reranker = Reranker(work / "cross-encoder")
    for name, options in (("bi-encoder top 20", {}), ("re-ranked", {"rerank": reranker}),
                          ("re-ranked, reciprocal rank fusion", {"rerank": reranker, "fusion": "rrf"})):
        hits = search_index(work / "eval_index", queries, k=RERANK_DEPTH,
                            **({"rerank_depth": RERANK_DEPTH, **options} if options else {}))
        rankings = {q: [h["id"] for h in found] for q, found in zip(queries, hits)}
        results[name] = headline(retrieval_metrics(rankings, relevant, **CUTOFFS))
        # MRR@10 on each half of the queries: a choice made on one half (which ordering, which cross-encoder
        # recipe) can be checked on the other, where no further unseen data exists (AG News here).
        halves = [queries[:len(queries) // 2], queries[len(queries) // 2:]]
        results[name]["mrr@10 by half"] = [round(retrieval_metrics({q: rankings[q] for q in half},
                                                                   {q: relevant[q] for q in half},
                                                                   **CUTOFFS)["mrr@10"], 4) for half in halves]
        print(json.dumps({name: results[name]}), flush=True)
    return {"mining": summary, "mining_seconds": mined_seconds, "cross_encoder_train_seconds": cross_seconds,
            **results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["ag_news", "squad"], default="ag_news")
    parser.add_argument("--train-rows", type=int, default=None, help="use only the first N training rows")
    parser.add_argument("--eval-rows", type=int, default=None)
    parser.add_argument("--rerank", action="store_true", help="also mine negatives and train a cross-encoder")
    parser.add_argument("--st-sampler", choices=["batch_sampler", "no_duplicates"], default="batch_sampler")
    parser.add_argument("--rerank-rows", type=int, default=None, help="training rows to mine (default: all)")
    parser.add_argument("--rerank-negatives", type=int, default=3, help="mined negatives per row (default 3)")
    parser.add_argument("--rerank-queries", type=int, default=None, help="evaluation queries re-ranked (default: all)")
    parser.add_argument("--rerank-miner", choices=["tuned", "untuned"], default="tuned",
                        help="mine the cross-encoder's negatives with the fine-tuned bi-encoder or the untuned MiniLM")
    parser.add_argument("--rerank-epochs", type=int, default=1)
    parser.add_argument("--skip-st", action="store_true")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the kbert model (and cross-encoder) already trained in --work")
    parser.add_argument("--work", help="folder for the runs (default: a temporary one)")
    args = parser.parse_args()

    import kbert
    from kbert.checkpoint import load_checkpoint

    train_rows, eval_rows = ag_news_rows() if args.dataset == "ag_news" else squad_rows()
    train_rows, eval_rows = train_rows[:args.train_rows], eval_rows[:args.eval_rows]
    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="kbert-retrieval-"))
    work.mkdir(parents=True, exist_ok=True)
    train_file, eval_file = write_pairs(train_rows, work / "train.jsonl"), write_pairs(eval_rows, work / "eval.jsonl")
    minilm = str(load_checkpoint("minilm").path)
    report = {"dataset": args.dataset, "train_rows": len(train_rows), "eval_rows": len(eval_rows),
              "eval_queries": len(set(q for q, _ in eval_rows)), "eval_documents": len(set(p for _, p in eval_rows)),
              "settings": SETTINGS, "runs": {}}

    if not args.reuse:
        report["runs"]["untuned"] = headline(kbert.evaluate(minilm, str(eval_file), task="retrieval", max_length=128))
        print(json.dumps({"untuned": report["runs"]["untuned"]}), flush=True)

    if not (args.reuse and (work / "kbert" / "model.safetensors").is_file()):
        start = time.time()
        kbert.train(task="retrieval", train=str(train_file), output=str(work / "kbert"), model=minilm, verbose=2,
                    **{k: v for k, v in SETTINGS.items()})
        kbert_seconds = time.time() - start
        report["runs"]["kbert"] = {**headline(kbert.evaluate(str(work / "kbert"), str(eval_file))),
                                   "train_seconds": round(kbert_seconds, 1)}
        print(json.dumps({"kbert": report["runs"]["kbert"]}), flush=True)

    if not args.skip_st:
        st = run_reference("st_train_retrieval.py", {
            "model": minilm, "train": train_rows, "eval": eval_rows, "output": str(work / "st"),
            "epochs": SETTINGS["epochs"], "batch_size": SETTINGS["batch_size"],
            "learning_rate": SETTINGS["learning_rate"], "warmup_ratio": SETTINGS["warmup"],
            "weight_decay": SETTINGS["weight_decay"], "max_seq_length": SETTINGS["max_length"],
            "seed": SETTINGS["seed"], "scale": SETTINGS["scale"], "batch_sampler": args.st_sampler})
        report["runs"][f"sentence-transformers ({args.st_sampler})"] = {
            **headline(kbert.evaluate(str(work / "st"), str(eval_file), task="retrieval")),
            "train_seconds": round(st["train_seconds"], 1),
            "own_evaluator_mrr@10": round(st["metrics"]["eval_cosine_mrr@10"], 4)}
        print(json.dumps({"st": report["runs"][f"sentence-transformers ({args.st_sampler})"]}), flush=True)

    if args.rerank:
        report["runs"]["rerank"] = rerank_run(str(work / "kbert"), train_file, eval_rows, work, minilm,
                                              rows=args.rerank_rows, negatives=args.rerank_negatives,
                                              queries=args.rerank_queries, epochs=args.rerank_epochs,
                                              miner=minilm if args.rerank_miner == "untuned" else None,
                                              reuse=args.reuse)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

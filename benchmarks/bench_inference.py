"""Inference throughput: kbert's pipelines vs transformers' PyTorch pipelines, same checkpoint and texts.

text-classification (default): all-MiniLM-L6-v2 + a 3-label head on 1,024 real SST-2 sentences.
--family distilbert (text-classification): a random-weight DistilBertForSequenceClassification with
distilbert-base-uncased's exact shapes (common.distilbert_classifier; written once under the system temp folder by
the reference interpreter), same texts; both sides hold the same weights, so outputs still agree, but mean nothing.
token-classification: all-MiniLM-L6-v2 + the 13-label WNUT-17 head of tests/fixtures (or --model, e.g. a
fine-tuned run) on the 1,009 WNUT-17 dev sentences, aggregation_strategy="simple".
Batch 32, same machine, one process each (the reference runs in .venv-ref: `make reference-env`).
Prints examples/s, the ratio and how often the outputs agree; speed is measured here, never asserted in tests.

    .venv/bin/python benchmarks/bench_inference.py [--task token-classification] [--n N] [--batch-size 32] [--xla]
    .venv/bin/python benchmarks/bench_inference.py --family distilbert    # the DistilBERT row (1,024 SST-2)
    .venv/bin/python benchmarks/bench_inference.py --family deberta-v3    # the DeBERTa-v3-base row (common.py)
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import (  # noqa: E402
    REFERENCE_PYTHON,
    deberta_classifier,
    distilbert_classifier,
    minilm_classifier,
    run_reference,
    sst2_sentences,
    wnut17_sentences,
)

FAMILIES = {"minilm": "all-MiniLM-L6-v2", "distilbert": "DistilBERT (distilbert-base-uncased shapes, random weights)",
            "deberta-v3": "DeBERTa-v3 (deberta-v3-base shapes, random weights)"}
CLASSIFIERS = {"distilbert": distilbert_classifier, "deberta-v3": deberta_classifier}

NER_OPTIONS = {"aggregation_strategy": "simple"}


def time_kbert(task, model_dir, texts, batch_size, xla):
    import kbert

    options = NER_OPTIONS if task == "token-classification" else {}
    pipe = kbert.pipeline(task, model=model_dir, batch_size=batch_size, xla=xla)
    pipe(texts[:64], **options)  # warm-up: trace the forward pass (and, with XLA, compile a few shapes)
    if xla:
        pipe(texts, **options)  # XLA compiles once per (batch, length) shape; measure the steady state
    start = time.perf_counter()
    out = pipe(texts, **options)
    return time.perf_counter() - start, out


def time_transformers(task, model_dir, texts, batch_size, warmup_texts=None, threads=None):
    """The reference's timings and outputs (warm-up call: ``warmup_texts``, default the first 64 texts;
    ``threads``: torch threads, default torch's)."""
    if not REFERENCE_PYTHON.exists():
        sys.exit(f"{REFERENCE_PYTHON} missing: run `make reference-env` first")
    if task == "token-classification":
        return run_reference("hf_inference_token.py", {"model": str(model_dir), "texts": texts,
                                                       "batch_size": batch_size, **NER_OPTIONS})
    return run_reference("hf_inference.py", {"model": str(model_dir), "texts": texts, "batch_size": batch_size,
                                             "warmup_texts": warmup_texts, "threads": threads})


def agreement(task, ours, hf) -> tuple[float, float]:
    """Share of inputs with the same answer, and the largest score difference among those."""
    if task == "token-classification":
        theirs = hf["entities"]
        key = lambda e: (e["entity_group"], e["word"], e["start"], e["end"])  # noqa: E731
        same = [[key(e) for e in a] == [key(e) for e in b] for a, b in zip(ours, theirs)]
        diffs = [abs(x["score"] - y["score"]) for a, b, s in zip(ours, theirs, same) if s for x, y in zip(a, b)]
    else:
        same = [o["label"] == label for o, label in zip(ours, hf["labels"])]
        diffs = [abs(o["score"] - score) for o, score in zip(ours, hf["scores"])]
    return sum(same) / len(same), max(diffs, default=0.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="text-classification", choices=["text-classification", "token-classification"])
    parser.add_argument("--n", type=int, default=None, help="texts (default: 1,024 SST-2 / all 1,009 WNUT-17 dev)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--family", default="minilm", choices=sorted(FAMILIES),
                        help="distilbert: random weights, distilbert-base-uncased's shapes (text-classification)")
    parser.add_argument("--model", type=pathlib.Path, help="checkpoint folder (default: MiniLM + a fixture head)")
    parser.add_argument("--xla", action="store_true", help="also time kbert with XLA")
    args = parser.parse_args()
    ner = args.task == "token-classification"
    if args.family in CLASSIFIERS and (ner or args.model):
        parser.error(f"--family {args.family} is a text-classification row and brings its own checkpoint")
    texts = wnut17_sentences(args.n) if ner else sst2_sentences(args.n or 1024)
    with tempfile.TemporaryDirectory() as tmp:
        if args.family in CLASSIFIERS:
            model_dir = CLASSIFIERS[args.family]()
        else:
            model_dir = args.model or minilm_classifier(pathlib.Path(tmp) / "minilm",
                                                        "minilm-ner-head" if ner else "minilm-sentiment-head")
        hf = time_transformers(args.task, model_dir, texts, args.batch_size)
        rows = [("kbert pipeline", *time_kbert(args.task, model_dir, texts, args.batch_size, xla=False))]
        if args.xla:
            rows.append(("kbert pipeline, XLA", *time_kbert(args.task, model_dir, texts, args.batch_size, xla=True)))
    print(f"{args.task}, {args.model or FAMILIES[args.family]}: {len(texts)} {'WNUT-17 dev' if ner else 'SST-2'} "
          f"sentences, batch {args.batch_size}, "
          f"{os.cpu_count()} CPU cores, torch {hf['torch']} with {hf['threads']} threads")
    print(f"{'':34} {'ex/s':>8} {'vs PyTorch':>11} {'same output':>12} {'max |score diff|':>17}")
    print(f"{'transformers (PyTorch) pipeline':34} {len(texts) / hf['seconds']:8.1f} {1:10.2f}x")
    for name, seconds, out in rows:
        same, diff = agreement(args.task, out, hf)
        print(f"{name:34} {len(texts) / seconds:8.1f} {hf['seconds'] / seconds:10.2f}x {same:11.1%} {diff:17.1e}")
    if ner:  # where the answers differ, show both (expected: near-ties between two labels' scores)
        for text, ours, theirs in zip(texts, rows[0][2], hf["entities"]):
            if [(e["entity_group"], e["start"], e["end"]) for e in ours] != [(e["entity_group"], e["start"], e["end"]) for e in theirs]:
                print(f"differs: {text!r}\n  kbert: {ours}\n  torch: {theirs}")


if __name__ == "__main__":
    main()

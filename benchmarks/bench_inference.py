"""Inference throughput: kbert's text-classification pipeline vs transformers' PyTorch pipeline.

Same checkpoint (all-MiniLM-L6-v2 + a 3-label head), same 1,024 real SST-2 sentences, batch 32, same
machine, one process each (the reference runs in .venv-ref: `make reference-env`). Prints examples/s
and the ratio; speed is measured here, never asserted in tests.

    .venv/bin/python benchmarks/bench_inference.py [--n 1024] [--batch-size 32] [--xla]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import REFERENCE_PYTHON, minilm_classifier, sst2_sentences  # noqa: E402


def time_kbert(model_dir, texts, batch_size, xla):
    import kbert

    pipe = kbert.pipeline("text-classification", model=model_dir, batch_size=batch_size, xla=xla)
    pipe(texts[:64])  # warm-up: trace the forward pass (and, with XLA, compile a few shapes)
    if xla:
        pipe(texts)  # XLA compiles once per (batch, length) shape; measure the steady state
    start = time.perf_counter()
    out = pipe(texts)
    return time.perf_counter() - start, [o["label"] for o in out], [o["score"] for o in out]


def time_transformers(model_dir, texts, batch_size):
    if not REFERENCE_PYTHON.exists():
        sys.exit(f"{REFERENCE_PYTHON} missing: run `make reference-env` first")
    request = json.dumps({"model": str(model_dir), "texts": texts, "batch_size": batch_size})
    done = subprocess.run([str(REFERENCE_PYTHON), str(pathlib.Path(__file__).with_name("hf_inference.py"))],
                          input=request, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--xla", action="store_true", help="also time kbert with XLA")
    args = parser.parse_args()
    texts = sst2_sentences(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = minilm_classifier(pathlib.Path(tmp) / "minilm-classifier")
        hf = time_transformers(model_dir, texts, args.batch_size)
        rows = [("transformers (PyTorch) pipeline", hf["seconds"], hf["labels"], hf["scores"])]
        rows.append(("kbert pipeline", *time_kbert(model_dir, texts, args.batch_size, xla=False)))
        if args.xla:
            rows.append(("kbert pipeline, XLA", *time_kbert(model_dir, texts, args.batch_size, xla=True)))
    print(f"{len(texts)} SST-2 sentences, batch {args.batch_size}, {os.cpu_count()} CPU cores, "
          f"torch {hf['torch']} with {hf['threads']} threads")
    print(f"{'':34} {'ex/s':>8} {'vs PyTorch':>11} {'same label':>11} {'max |score diff|':>17}")
    for name, seconds, labels, scores in rows:
        same = sum(a == b for a, b in zip(labels, hf["labels"])) / len(labels)
        diff = max(abs(a - b) for a, b in zip(scores, hf["scores"]))
        print(f"{name:34} {len(texts) / seconds:8.1f} {hf['seconds'] / seconds:10.2f}x {same:10.1%} {diff:17.1e}")


if __name__ == "__main__":
    main()

"""Fine-tuning quality and speed: kbert vs Hugging Face Trainer (PyTorch) on the same checkpoint and data.

SST-2: the first 4,000 sentences of sst2/train.tsv for one epoch, evaluated on sentences 60,000-60,871 of the
same file (only train.tsv ships in ../shared/data); all-MiniLM-L6-v2 with a new 2-label head; batch 32,
AdamW lr 5e-5, 10 % linear warm-up then linear decay, weight decay 0.01, max length 128, seed 42.
The reference runs in .venv-ref (`make reference-env`) in its own process.
--family distilbert: the same run from a random-weight DistilBertForSequenceClassification with
distilbert-base-uncased's exact shapes (common.distilbert_classifier; both sides start from its weights, head
included): throughput and time compare, accuracy does not (random weights).

    .venv/bin/python benchmarks/bench_training.py [--n 4000] [--seeds 42 43 44] [--jit-compile auto|true|false] [--skip-hf | --skip-kbert]
    .venv/bin/python benchmarks/bench_training.py --skip-hf --n 1000 --precision mixed_bfloat16   # --precision / --xla
    .venv/bin/python benchmarks/bench_training.py --family distilbert    # the DistilBERT row
    .venv/bin/python benchmarks/bench_training.py --family deberta-v3    # the DeBERTa-v3-base row

Mixed precision and XLA on this 2-core CPU: see benchmarks/TRAINING_NOTES.md (expected, measured).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import (EXCLUDED_STEPS, data_dir, deberta_classifier, distilbert_classifier, fit_rates,  # noqa: E402
                    run_reference, step_clock)

HYPER = dict(epochs=1, batch_size=32, learning_rate=5e-5, warmup=0.1, weight_decay=0.01, max_length=128, seed=42)
FAMILIES = {"minilm": "all-MiniLM-L6-v2", "distilbert": "DistilBERT (distilbert-base-uncased shapes, random weights)",
            "deberta-v3": "DeBERTa-v3 (deberta-v3-base shapes, random weights)"}
CLASSIFIERS = {"distilbert": distilbert_classifier, "deberta-v3": deberta_classifier}


def family_model(family: str) -> tuple[str, dict]:
    """The checkpoint folder of a family and kbert.train's extra options for it."""
    if family in CLASSIFIERS:  # their heads name the SST-2 labels 0/1 NEGATIVE/POSITIVE (rows 0/1 on both sides)
        return str(CLASSIFIERS[family]()), {"label_names": {"0": "NEGATIVE", "1": "POSITIVE"}}
    from kbert.checkpoint.resolve import default_model_path

    return str(default_model_path()), {}


def sst2_rows(start, stop):
    lines = (data_dir() / "sst2" / "train.tsv").read_text(encoding="utf-8").split("\n")[1:]
    return [(line.split("\t")[0], int(line.split("\t")[1])) for line in lines[start:stop]]


def run_kbert(n, jit_compile, seed, bucket=True, precision="float32", family="minilm"):
    import kbert

    model, extra = family_model(family)
    clock, record = step_clock()
    sst2 = data_dir() / "sst2" / "train.tsv"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = kbert.train(train=f"{sst2}[:{n}]", eval=f"{sst2}[60000:60872]", output=tmp, model=model,
                             verbose=0, jit_compile=jit_compile, callbacks=(clock,), bucket_by_length=bucket,
                             precision=precision, **extra,
                             **{**HYPER, "seed": seed})
    # every batch holds 32 examples except the last of each length bucket: fit_rates spreads them evenly
    return {"accuracy": result.metrics["accuracy"], "macro_f1": result.metrics["macro_f1"],
            "total_seconds": time.perf_counter() - started, **fit_rates(record, n)}


def run_hf(n, seed, family="minilm"):
    request = {"model": family_model(family)[0], "train": sst2_rows(0, n), "eval": sst2_rows(60000, 60872),
               "num_labels": 2, "epochs": HYPER["epochs"], "batch_size": HYPER["batch_size"],
               "learning_rate": HYPER["learning_rate"], "warmup_ratio": HYPER["warmup"],
               "weight_decay": HYPER["weight_decay"], "max_length": HYPER["max_length"], "seed": seed,
               "warmup_steps_excluded": EXCLUDED_STEPS}
    return run_reference("hf_train.py", request)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--family", default="minilm", choices=sorted(FAMILIES),
                        help="distilbert: random weights, distilbert-base-uncased's shapes (speed only)")
    parser.add_argument("--jit-compile", default="auto", choices=["auto", "true", "false"])
    parser.add_argument("--skip-hf", action="store_true")
    parser.add_argument("--skip-kbert", action="store_true", help="only the reference (e.g. to add seeds)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--no-buckets", action="store_true", help="kbert: random batches instead of length buckets")
    parser.add_argument("--precision", default="float32", choices=["float32", "mixed_float16", "mixed_bfloat16"],
                        help="kbert's --precision")
    args = parser.parse_args()
    if not (data_dir() / "sst2" / "train.tsv").is_file():
        sys.exit("needs ../shared/data/sst2/train.tsv (or $KBERT_DATA)")
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    rows = []
    for seed in args.seeds:
        hf = None if args.skip_hf else run_hf(args.n, seed, args.family)
        ours = None if args.skip_kbert else run_kbert(args.n, jit, seed, bucket=not args.no_buckets,
                                                     precision=args.precision, family=args.family)
        rows.append((seed, hf, ours))
        hf_summary = hf and {k: v for k, v in hf.items() if k != "step_seconds"}
        print(json.dumps({"family": args.family, "seed": seed, "kbert": ours, "hf": hf_summary}))
    print(f"\n{FAMILIES[args.family]}: {args.n} SST-2 sentences, 1 epoch, batch 32, {os.cpu_count()} cores; "
          "accuracy on 872 held-out sentences")
    print(f"{'seed':>5} {'HF acc':>8} {'kbert acc':>10} {'HF ex/s':>9} {'kbert ex/s':>11} {'ratio':>6} "
          f"{'HF fit s':>9} {'kbert fit s':>12}")
    nan = float("nan")
    for seed, hf, ours in rows:
        hf_acc, hf_rate, hf_fit = ((hf["eval_accuracy"], hf["steady_examples_per_second"] or nan, hf["train_seconds"])
                                   if hf else (nan, nan, nan))  # a toy run has no steady rate (None)
        acc, rate, fit = (ours["accuracy"], ours["steady_examples_per_second"], ours["fit_seconds"]) if ours else (nan, nan, nan)
        print(f"{seed:5d} {hf_acc:8.4f} {acc:10.4f} {hf_rate:9.1f} {rate:11.1f} {rate / hf_rate:5.2f}x {hf_fit:9.1f} {fit:12.1f}")
    if not (args.skip_hf or args.skip_kbert):
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        print(f"{'mean':>5} {mean([h['eval_accuracy'] for _, h, _ in rows]):8.4f} "
              f"{mean([o['accuracy'] for _, _, o in rows]):10.4f}")
    if args.family in CLASSIFIERS:
        print("accuracy is not comparable: random weights (the base model's shapes), compare ex/s and fit s")


if __name__ == "__main__":
    main()

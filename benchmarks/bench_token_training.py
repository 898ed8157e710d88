"""NER fine-tuning quality and speed: kbert vs Hugging Face Trainer (PyTorch) on WNUT-17, same checkpoint and data.

all-MiniLM-L6-v2 with a new 13-label BIO head, trained on wnut17train.conll (3,394 sentences), scored on
emerging.dev.conll (1,009 sentences) with seqeval's entity F1 (kbert.tasks.token_classification.entity_metrics, tested against
seqeval): both sides' word-level predictions go through the same scorer. Both sides train without evaluating
and score the model of the last epoch (Trainer's protocol; kbert.train would otherwise keep the best epoch).
The steady rate leaves out the first 5 steps and kbert's epoch-end work (its resume backup; Trainer saves
nothing). 3 epochs, batch 32, AdamW lr 5e-5,
10 % warm-up then linear decay, weight decay 0.01, clipping 1.0, max length 128. The reference is
benchmarks/hf_train_token.py (run_ner.py's alignment: label on the first piece of each word) in .venv-ref.

    .venv/bin/python benchmarks/bench_token_training.py [--seeds 42 43] [--epochs 3] [--skip-hf | --skip-kbert] [--save-hf DIR]
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
from common import EXCLUDED_STEPS, data_dir, fit_rates, run_reference, step_clock  # noqa: E402

HYPER = dict(batch_size=32, learning_rate=5e-5, warmup=0.1, weight_decay=0.01, max_length=128)
TRAIN, EVAL = "wnut17train.conll", "emerging.dev.conll"


def gold():
    from kbert.tasks.token_classification.tagged_files import read_tagged

    return [list(s.tags) for s in read_tagged(data_dir() / "wnut17" / EVAL)]


def run_kbert(seed, epochs, save_to=None, bucket=True):
    import kbert
    from kbert.checkpoint.resolve import default_model_path
    from kbert.training.evaluation import evaluate

    clock, record = step_clock()
    folder = data_dir() / "wnut17"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        output = save_to or tmp
        kbert.train(task="token-classification", train=str(folder / TRAIN), output=str(output),
                    model=str(default_model_path()), verbose=0, callbacks=(clock,), epochs=epochs, seed=seed,
                    bucket_by_length=bucket, **HYPER)
        trained = time.perf_counter() - started
        metrics = evaluate(str(output), str(folder / EVAL), batch_size=HYPER["batch_size"])
        windows = _training_windows(output)
    return {"entity_f1": metrics["entity_f1"], "precision": metrics["precision"], "recall": metrics["recall"],
            "token_accuracy": metrics["token_accuracy"], "eval_loss": metrics["loss"], "train_seconds": trained,
            "windows_per_epoch": windows, **fit_rates(record, windows * epochs)}


def _training_windows(run_folder) -> int:
    """Training sequences per epoch (sentences, plus one per extra window of a long sentence)."""
    from kbert.checkpoint import load_checkpoint
    from kbert.tasks.token_classification.tagged_files import read_tagged
    from kbert.tasks.token_classification.features import make_windows, tokenize_words

    tokenizer = load_checkpoint(run_folder).tokenizer
    sentences = read_tagged(data_dir() / "wnut17" / TRAIN)
    windows = make_windows(tokenize_words(tokenizer, [s.words for s in sentences]), None,
                           max_length=HYPER["max_length"], stride=32, cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id)
    return len(windows.token_ids)


def run_hf(seed, epochs, save_to=None):
    from kbert.tasks.token_classification.entity_metrics import entity_scores

    request = {"seed": seed, "epochs": epochs, "batch_size": HYPER["batch_size"],
               "learning_rate": HYPER["learning_rate"], "warmup_ratio": HYPER["warmup"],
               "weight_decay": HYPER["weight_decay"], "max_length": HYPER["max_length"],
               "warmup_steps_excluded": EXCLUDED_STEPS, "save_to": save_to and str(save_to)}
    out = run_reference("hf_train_token.py", request)
    scores = entity_scores(gold(), out.pop("predictions"))
    return {**out, "entity_f1": scores["f1"], "precision": scores["precision"], "recall": scores["recall"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--skip-hf", action="store_true")
    parser.add_argument("--skip-kbert", action="store_true", help="only the reference (e.g. to add seeds)")
    parser.add_argument("--save-hf", type=pathlib.Path, help="keep the HF fine-tuned model of the first seed here")
    parser.add_argument("--save-kbert", type=pathlib.Path, help="keep kbert's fine-tuned model of the first seed here")
    parser.add_argument("--no-buckets", action="store_true", help="kbert: random batches instead of length buckets")
    args = parser.parse_args()
    if not (data_dir() / "wnut17" / TRAIN).is_file():
        sys.exit("needs ../shared/data/wnut17 (or $KBERT_DATA)")
    rows = []
    for i, seed in enumerate(args.seeds):
        hf = None if args.skip_hf else run_hf(seed, args.epochs, args.save_hf if i == 0 else None)
        ours = None if args.skip_kbert else run_kbert(seed, args.epochs, args.save_kbert if i == 0 else None,
                                                      bucket=not args.no_buckets)
        rows.append((seed, hf, ours))
        print(json.dumps({"seed": seed, "kbert": ours,
                          "hf": hf and {k: v for k, v in hf.items() if k != "step_seconds"}}), flush=True)
    print(f"\nWNUT-17: {args.epochs} epochs on {TRAIN}, batch 32, {os.cpu_count()} cores; entity F1 on {EVAL}")
    print(f"{'seed':>5} {'HF F1':>7} {'kbert F1':>9} {'HF ex/s':>8} {'kbert ex/s':>11} {'ratio':>6} "
          f"{'HF train s':>11} {'kbert fit s':>12}")
    for seed, hf, ours in rows:
        nan = float("nan")
        hf_f1, hf_rate, hf_fit = ((hf["entity_f1"], hf["steady_examples_per_second"], hf["train_seconds"])
                                  if hf else (nan, nan, nan))
        f1, rate, fit = ((ours["entity_f1"], ours["steady_examples_per_second"], ours["fit_seconds"])
                         if ours else (nan, nan, nan))
        print(f"{seed:5d} {hf_f1:7.4f} {f1:9.4f} {hf_rate:8.1f} {rate:11.1f} {rate / hf_rate:5.2f}x {hf_fit:11.1f} {fit:12.1f}")


if __name__ == "__main__":
    main()

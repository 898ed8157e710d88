"""Fine-tuning quality and speed: kbert vs Hugging Face Trainer (PyTorch) on the same checkpoint and data.

SST-2: the first 4,000 sentences of sst2/train.tsv for one epoch, evaluated on sentences 60,000-60,871 of the
same file (only train.tsv ships in ../shared/data); all-MiniLM-L6-v2 with a new 2-label head; batch 32,
AdamW lr 5e-5, 10 % linear warm-up then linear decay, weight decay 0.01, max length 128, seed 42.
The reference runs in .venv-ref (`make reference-env`) in its own process.

    .venv/bin/python benchmarks/bench_training.py [--n 4000] [--jit-compile auto|true|false] [--skip-hf]
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
from common import REFERENCE_PYTHON, data_dir  # noqa: E402

HYPER = dict(epochs=1, batch_size=32, learning_rate=5e-5, warmup=0.1, weight_decay=0.01, max_length=128, seed=42)
EXCLUDED_STEPS = 5  # first optimizer steps left out of the steady rate (tracing / compilation), both sides


def sst2_rows(start, stop):
    lines = (data_dir() / "sst2" / "train.tsv").read_text(encoding="utf-8").split("\n")[1:]
    return [(line.split("\t")[0], int(line.split("\t")[1])) for line in lines[start:stop]]


def run_kbert(n, jit_compile):
    import keras

    import kbert
    from kbert.checkpoint.resolve import default_model_path

    stamps, sizes = [], []

    class StepClock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            stamps.append(time.perf_counter())

        def on_train_batch_end(self, batch, logs=None):
            stamps.append(time.perf_counter())

    sst2 = data_dir() / "sst2" / "train.tsv"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = kbert.train(train=f"{sst2}[:{n}]", eval=f"{sst2}[60000:60872]", output=tmp, model=str(default_model_path()),
                             verbose=0, jit_compile=jit_compile, callbacks=(StepClock(),), **HYPER)
    total = time.perf_counter() - started
    steps = len(stamps) - 1
    # every batch holds 32 examples except the last of each length bucket; count them from the step total
    steady_examples = n * (steps - EXCLUDED_STEPS) / steps
    return {"accuracy": result.metrics["accuracy"], "macro_f1": result.metrics["macro_f1"], "steps": steps,
            "fit_seconds": stamps[-1] - stamps[0], "total_seconds": total,
            "examples_per_second": n / (stamps[-1] - stamps[0]),
            "steady_examples_per_second": steady_examples / (stamps[-1] - stamps[EXCLUDED_STEPS])}


def run_hf(n):
    from kbert.checkpoint.resolve import default_model_path

    request = {"model": str(default_model_path()), "train": sst2_rows(0, n), "eval": sst2_rows(60000, 60872),
               "num_labels": 2, "epochs": HYPER["epochs"], "batch_size": HYPER["batch_size"],
               "learning_rate": HYPER["learning_rate"], "warmup_ratio": HYPER["warmup"],
               "weight_decay": HYPER["weight_decay"], "max_length": HYPER["max_length"], "seed": HYPER["seed"],
               "warmup_steps_excluded": EXCLUDED_STEPS}
    done = subprocess.run([str(REFERENCE_PYTHON), str(pathlib.Path(__file__).with_name("hf_train.py"))],
                          input=json.dumps(request), capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"reference run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--jit-compile", default="auto", choices=["auto", "true", "false"])
    parser.add_argument("--skip-hf", action="store_true")
    args = parser.parse_args()
    if not (data_dir() / "sst2" / "train.tsv").is_file():
        sys.exit("needs ../shared/data/sst2/train.tsv (or $KBERT_DATA)")
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    hf = None if args.skip_hf else run_hf(args.n)
    ours = run_kbert(args.n, jit)
    print(json.dumps({"kbert": ours, "hf": hf}, indent=1))
    if hf:
        hf_rate = hf["steady_examples_per_second"]
        print(f"\n{args.n} SST-2 sentences, 1 epoch, batch 32, {os.cpu_count()} cores")
        print(f"{'':26} {'accuracy':>9} {'ex/s (steady)':>14} {'ex/s (whole fit)':>17}")
        print(f"{'HF Trainer (PyTorch)':26} {hf['eval_accuracy']:9.4f} {hf_rate:14.1f} "
              f"{hf.get('trainer_samples_per_second', float('nan')):17.1f}")
        print(f"{'kbert (jit ' + args.jit_compile + ')':26} {ours['accuracy']:9.4f} "
              f"{ours['steady_examples_per_second']:14.1f} {ours['examples_per_second']:17.1f}")
        print(f"speed-up (steady): {ours['steady_examples_per_second'] / hf_rate:.2f}x")


if __name__ == "__main__":
    main()

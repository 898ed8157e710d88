"""Time to the first training step and peak memory: in-memory input against streamed input (kbert.data.streaming).

Synthetic training files of N rows (100k, 1M, 10M) repeat the shared SST-2 sentences and labels
(../shared/data/sst2/train.tsv). Each run is one fresh process, `kbert.train` with `--labels 0,1` (no label
pass), max length 64, batch 32, timed from process start to the end of the first step; it stops after
`--steps` steps and reports the resident memory after the first and the last step and the peak (ru_maxrss), and
when kbert was imported (``imports_s``: what the process pays before ``kbert.train`` runs, on both paths).
The in-memory path (`stream=False`) reads and tokenizes every row first; the streamed path (`stream=True`,
`steps_per_epoch` given, so no counting pass) starts at once. Throughput: steps per second on the real SST-2
file, both inputs feeding one model in one process in turn (3 rounds, order alternating).

    .venv/bin/python benchmarks/bench_streaming.py [--sizes 100000,1000000,10000000] [--steps 20]
        [--model minilm] [--skip-memory-above 1000000] [--throughput-steps 25]
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

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import ROOT, data_dir, process_age  # noqa: E402

CHILD = """
import json, os, resource, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import kbert

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

class Stop(keras.callbacks.Callback):
    def __init__(self, steps, started):
        super().__init__()
        self.steps, self.started, self.marks = steps, started, {}
    def on_train_batch_end(self, batch, logs=None):
        now = time.time()
        if batch == 0:
            self.marks.update(first_step_s=now - self.started, rss_first_mb=rss_mb(), t1=now)
        if batch + 1 == self.steps:
            self.marks.update(rss_last_mb=rss_mb(), peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                              steps_per_s=(self.steps - 1) / (now - self.marks.pop("t1")))
            print(json.dumps(self.marks), flush=True)
            os._exit(0)

options = json.loads(sys.argv[1])
started = float(sys.argv[2])
stop = Stop(options.pop("steps"), started)
stop.marks["imports_s"] = time.time() - started  # process start to kbert imported: the same for both paths
kbert.train(callbacks=[stop], **options)
"""


ALTERNATING = """
import json, sys, time
import numpy as np, tensorflow as tf
from kbert.batching.dataset import make_dataset
from kbert.data.sources import load_examples
from kbert.training.config import TrainConfig
from kbert.training.trainer import TrainingRun
sst2, model, steps, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
run = TrainingRun(TrainConfig(train=sst2, output="unused", model=model, labels=("0", "1"), max_length=64,
                              steps_per_epoch=10**6, stream=True))
run.build(tf.distribute.get_strategy())
examples, _ = load_examples(sst2, label_type="class")
memory = make_dataset(run.checkpoint.tokenizer, [e.text for e in examples], None,
                      np.array([int(e.label) for e in examples], np.int32), batch_size=32, max_length=64,
                      shuffle=True, seed=42).dataset.repeat()
sides = {"streamed": run.plan.train.dataset, "in-memory": memory}
for data in sides.values():
    run.trainable.fit(data, steps_per_epoch=3, epochs=1, verbose=0)  # traces, warm-up
rates = {name: [] for name in sides}
for turn in range(rounds):
    for name in (list(sides) if turn % 2 == 0 else list(sides)[::-1]):
        mark = time.time()
        run.trainable.fit(sides[name], steps_per_epoch=steps, epochs=1, verbose=0)
        rates[name].append(round(steps / (time.time() - mark), 3))
print(json.dumps(rates))
"""


def synthetic(rows: int, folder: pathlib.Path) -> pathlib.Path:
    """A TSV of ``rows`` rows cycling through the SST-2 sentences (written once per size)."""
    path = folder / f"synthetic-{rows}.tsv"
    if path.is_file():
        return path
    lines = (data_dir() / "sst2" / "train.tsv").read_text().splitlines()
    header, body = lines[0], [line + "\n" for line in lines[1:] if line.strip()]
    with open(path, "w") as f:
        f.write(header + "\n")
        for start in range(0, rows, len(body)):
            f.writelines(body[:min(len(body), rows - start)])
    return path


def run(train: str, *, stream: bool, steps: int, model: str, output: str) -> dict:
    options = dict(train=train, output=output, model=model, labels=["0", "1"], max_length=64, batch_size=32,
                   epochs=1, stream=stream, steps=steps, verbose=0)
    if stream:
        options["steps_per_epoch"] = 10_000
    started = time.time()
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(options), str(started)], capture_output=True,
                          text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {k: round(v, 2) for k, v in result.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--skip-memory-above", type=int, default=1_000_000,
                        help="no in-memory run above this many rows (10M rows need ~15 GB and ~12 min)")
    parser.add_argument("--throughput-steps", type=int, default=25, help="0: no SST-2 throughput runs")
    parser.add_argument("--folder", default=None, help="where the synthetic files go (default: a temporary folder)")
    args = parser.parse_args()
    folder = pathlib.Path(args.folder or tempfile.mkdtemp(prefix="kbert-stream-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    for rows in (int(s) for s in args.sizes.split(",")):
        mark = time.time()
        path = synthetic(rows, folder)
        print(json.dumps({"rows": rows, "written_s": round(time.time() - mark, 1),
                          "mb": round(path.stat().st_size / 2**20)}), flush=True)
        for stream in (False, True):
            if not stream and rows > args.skip_memory_above:
                continue
            result = run(str(path), stream=stream, steps=args.steps, model=args.model, output=str(folder / "run"))
            print(json.dumps({"rows": rows, "input": "streamed" if stream else "in-memory", **result}), flush=True)
    if args.throughput_steps:  # one process, one model, the two inputs in turn (machine load hits both alike)
        done = subprocess.run([sys.executable, "-c", ALTERNATING, str(data_dir() / "sst2" / "train.tsv"), args.model,
                               str(args.throughput_steps), "3"], capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        print(json.dumps({"sst2_steps_per_s": json.loads(done.stdout.strip().splitlines()[-1])}), flush=True)


if __name__ == "__main__":
    main()

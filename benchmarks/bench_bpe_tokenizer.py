"""Byte-level BPE tokenizer throughput: kbert's in-graph RobertaTokenizer vs transformers' RobertaTokenizerFast.

Both sides tokenize the same 10,000 real sentences (SST-2 train rows 30,000-34,999 and the first 5,000
sentences of the SQuAD v1.1 dev contexts, cut after . ! or ?) with the same vocabulary, asking for what
kbert always computes: ids, attention mask and character offsets (``return_offsets_mapping=True``), no
padding, no truncation. transformers runs in the reference interpreter (.venv-ref), in its own process.

The vocabulary: ``--tokenizer DIR`` (a RoBERTa checkpoint folder), else a byte-level BPE of roberta-base's
size (50,265 tokens, ``<s> <pad> </s> <unk> <mask>`` at 0-4) that the reference interpreter trains with
``tokenizers`` on the shared data (SST-2, SQuAD v1.1/v2.0 contexts, AG News; ~15 s), saved by
``RobertaTokenizerFast.save_pretrained``: the merge depth of a real vocabulary, whole words as single tokens.

Figures, each side in a fresh process: ``build`` (from_pretrained), ``cold`` (the first call, as a user
makes it: for kbert the public eager ``encode``, which runs op by op until its calls have spent ~1 s; for
transformers an empty BPE cache), kbert's ``traced_cold`` (the first call of a ``tf.function`` around
``encode``, as in ``tf.data``: tracing and graph set-up included) and ``warm`` (the fastest of ``--repeats``
further calls of that ``tf.function``; for transformers of its call, whose BPE cache then holds the words).
Prints a banner on stderr and one JSON line on stdout; ``ratio_*`` above 1 means kbert is faster.
``identical`` counts the texts whose ids and offsets are the same on both sides.

Notes (2026-12-06, 2-core AMD EPYC): the first call used to be the traced one (0.90 s: 0.29 s tracing,
~0.35 s graph set-up, the work) against HF's 0.49 s, 0.55x; the same call op by op took 0.41 s. Expected
from that: an eager first call ~1.2x HF. What the first calls do now is kbert/tokenizer/tracing.py's
EagerThenTraced (eager until ~1 s is spent, then one trace); the BPE merge loop (~30 ops x ~20 steps)
runs as a small traced function even then. Got: first call 0.44 s against HF's 0.55 s (1.25x, machine
shared with a training job), warm 3.25x; the first traced call is still 0.6x (Grappler's graph set-up,
~0.15-0.25 s of it, speeds up nothing here; turning it off per call needs TF's private context API).

    .venv/bin/python benchmarks/bench_bpe_tokenizer.py [--n 10000] [--repeats 5] [--tokenizer DIR] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import REFERENCE_PYTHON, data_dir, run_reference, sst2_sentences  # noqa: E402

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def squad_sentences(n: int) -> list[str]:
    path = data_dir() / "squad_v1.1" / "dev-v1.1-articles-00-37.json"
    if not path.is_file():
        sys.exit(f"{path} not found: the benchmarks need ../shared/data (or $KBERT_DATA)")
    contexts = [p["context"] for a in json.loads(path.read_text(encoding="utf-8"))["data"] for p in a["paragraphs"]]
    return [s for c in contexts for s in re.split(r"(?<=[.!?])\s+", c) if s][:n]


def bench_texts(n: int) -> list[str]:
    return sst2_sentences(n - n // 2, start=30_000) + squad_sentences(n // 2)


# --- reference side (.venv-ref) ------------------------------------------------------------------
def train_child(request: dict) -> dict:
    """Train the default vocabulary into request["folder"]."""
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    data = data_dir()
    corpus = [line.split("\t")[0] for line in (data / "sst2" / "train.tsv").read_text(encoding="utf-8").split("\n")[1:]]
    for name in ("squad_v1.1/dev-v1.1-articles-00-37.json", "squad_v2.0/dev-v2.0-part-shared.json"):
        squad = json.loads((data / name).read_text(encoding="utf-8"))["data"]
        corpus += [p["context"] for a in squad for p in a["paragraphs"]]
    corpus += (data / "ag_news" / "ag_news_part_shared.csv").read_text(encoding="utf-8").split("\n")[1:]
    start = time.perf_counter()
    bpe = ByteLevelBPETokenizer(add_prefix_space=False, trim_offsets=True)
    bpe.train_from_iterator(corpus, vocab_size=50_265, min_frequency=2, special_tokens=SPECIALS, show_progress=False)
    folder = pathlib.Path(request["folder"])
    (folder / "raw").mkdir(parents=True)
    bpe.save_model(str(folder / "raw"))
    RobertaTokenizerFast(vocab_file=str(folder / "raw" / "vocab.json"), merges_file=str(folder / "raw" / "merges.txt"),
                         model_max_length=512).save_pretrained(str(folder))
    return {"seconds": time.perf_counter() - start, "vocab_size": bpe.get_vocab_size()}


def hf_child(request: dict) -> dict:
    if request.get("threads"):
        os.environ["RAYON_NUM_THREADS"] = str(request["threads"])
    import tokenizers
    import transformers
    from transformers import RobertaTokenizerFast

    texts = request["texts"]
    start = time.perf_counter()
    tok = RobertaTokenizerFast.from_pretrained(request["folder"])
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


# --- kbert side (.venv) --------------------------------------------------------------------------
def time_kbert(folder: pathlib.Path, texts: list[str], repeats: int, threads: int | None) -> tuple[dict, list, list]:
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    from kbert.tokenizer import RobertaTokenizer

    batch = tf.constant(texts)
    start = time.perf_counter()
    tok = RobertaTokenizer.from_pretrained(folder)
    build = time.perf_counter() - start

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
    timing = {"build": build, "cold": cold, "traced_cold": traced_cold, "warm": min(warm), "warm_all": warm,
              "tf": tf.__version__, "tokens": int(ids.size)}
    return timing, [r[0] for r in rows], [r[1] for r in rows]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="sentences (default 10,000: half SST-2, half SQuAD)")
    parser.add_argument("--repeats", type=int, default=5, help="warm calls per side (the fastest is reported)")
    parser.add_argument("--tokenizer", type=pathlib.Path, help="a RoBERTa tokenizer folder (default: train one)")
    parser.add_argument("--threads", type=int, help="threads of both sides (default: each library's own: the cores)")
    parser.add_argument("--child", choices=["hf", "train"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        request = json.load(sys.stdin)
        print(json.dumps(hf_child(request) if args.child == "hf" else train_child(request)))
        return
    if not REFERENCE_PYTHON.exists():
        sys.exit(f"{REFERENCE_PYTHON} missing: run `make reference-env` first")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    texts = bench_texts(args.n)
    script = pathlib.Path(__file__).name
    with tempfile.TemporaryDirectory() as tmp:
        folder, trained = args.tokenizer, None
        if folder is None:
            folder = pathlib.Path(tmp) / "bpe-50k"
            trained = run_reference(script, {"folder": str(folder)}, args=("--child", "train"))
        hf = run_reference(script, {"folder": str(folder), "texts": texts, "repeats": args.repeats,
                                    "threads": args.threads}, args=("--child", "hf"))
        ours, ids, offsets = time_kbert(folder, texts, args.repeats, args.threads)
    identical = sum(a == b and c == d for a, b, c, d in zip(ids, hf["input_ids"], offsets, hf["offsets"]))
    tokens = ours["tokens"]
    result = {
        "texts": len(texts), "tokens": tokens, "chars": sum(map(len, texts)), "vocab_size": hf["vocab_size"],
        "vocabulary": str(args.tokenizer) if args.tokenizer else "trained 50,265-token byte-level BPE",
        "identical": identical, "cores": os.cpu_count(), "threads": args.threads,
        "hf": {k: hf[k] for k in ("build", "cold", "warm", "warm_all")},
        "kbert": {k: ours[k] for k in ("build", "cold", "traced_cold", "warm", "warm_all")},
        "texts_per_second": {"hf_cold": len(texts) / hf["cold"], "hf_warm": len(texts) / hf["warm"],
                             "kbert_cold": len(texts) / ours["cold"], "kbert_warm": len(texts) / ours["warm"],
                             "kbert_traced_cold": len(texts) / ours["traced_cold"]},
        "ratio_warm": hf["warm"] / ours["warm"], "ratio_cold": hf["cold"] / ours["cold"],
        "ratio_traced_cold": hf["cold"] / ours["traced_cold"],
    }
    if trained:
        result["train_seconds"] = trained["seconds"]
    tps = result["texts_per_second"]
    print(f"bpe tokenizer: {len(texts):,} sentences ({result['chars']:,} chars, {tokens:,} tokens), vocabulary "
          f"{result['vocabulary']} ({hf['vocab_size']:,}); {os.cpu_count()} cores; {hf['versions']}; "
          f"TensorFlow {ours['tf']}\n"
          f"  transformers RobertaTokenizerFast: build {hf['build']:.2f} s, cold {hf['cold']:.3f} s "
          f"({tps['hf_cold']:,.0f}/s), warm {hf['warm']:.3f} s ({tps['hf_warm']:,.0f}/s)\n"
          f"  kbert RobertaTokenizer:            build {ours['build']:.2f} s, cold {ours['cold']:.3f} s "
          f"({tps['kbert_cold']:,.0f}/s, eager), first traced call {ours['traced_cold']:.3f} s "
          f"({tps['kbert_traced_cold']:,.0f}/s, tracing included), warm {ours['warm']:.3f} s "
          f"({tps['kbert_warm']:,.0f}/s, traced)\n"
          f"  kbert / transformers: cold {result['ratio_cold']:.2f}x, warm {result['ratio_warm']:.2f}x, first traced "
          f"call {result['ratio_traced_cold']:.2f}x (above 1: kbert faster); identical ids and offsets: "
          f"{identical:,} of {len(texts):,}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

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
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import (REFERENCE_PYTHON, compare_tokenizers, data_dir, run_reference, time_hf_tokenizer,  # noqa: E402
                    time_kbert_tokenizer, tokenizer_texts)

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


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
        print(json.dumps(time_hf_tokenizer(request) if args.child == "hf" else train_child(request)))
        return
    if not REFERENCE_PYTHON.exists():
        sys.exit(f"{REFERENCE_PYTHON} missing: run `make reference-env` first")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    texts = tokenizer_texts(args.n)
    script = pathlib.Path(__file__).name
    with tempfile.TemporaryDirectory() as tmp:
        folder, trained = args.tokenizer, None
        if folder is None:
            folder = pathlib.Path(tmp) / "bpe-50k"
            trained = run_reference(script, {"folder": str(folder)}, args=("--child", "train"))
        hf = run_reference(script, {"folder": str(folder), "class": "RobertaTokenizerFast", "texts": texts,
                                    "repeats": args.repeats, "threads": args.threads}, args=("--child", "hf"))

        def build():
            from kbert.tokenizer import RobertaTokenizer

            return RobertaTokenizer.from_pretrained(folder)

        ours, ids, offsets = time_kbert_tokenizer(build, texts, args.repeats, args.threads)
    result = compare_tokenizers(
        "bpe tokenizer", texts, hf, ours, ids, offsets, threads=args.threads,
        vocabulary=str(args.tokenizer) if args.tokenizer else "trained 50,265-token byte-level BPE",
        names=("RobertaTokenizerFast", "RobertaTokenizer"))
    if trained:
        result["train_seconds"] = trained["seconds"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()

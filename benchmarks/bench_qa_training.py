"""Question-answering fine-tuning quality and speed: kbert vs Hugging Face Trainer (run_qa.py) on the same SQuAD split.

Data: SQuAD v1.1 dev questions of ../shared/data/squad_v1.1/dev-v1.1-articles-00-37.json (38 articles,
8,582 questions), or with --v2 the SQuAD v2.0 ones of squad_v2.0/dev-v2.0-part-shared.json (11
articles, 4,194 questions, about half without an answer). Split BY ARTICLE (no paragraph is on both
sides): the last --eval-articles articles are the evaluation set (default: the count whose questions
come closest to 15 % of the file: v1.1 the last 5 articles, 1,251 questions; v2.0 the last one, 486),
the others the training set; --train-limit / --eval-limit keep the first N questions of each (quick
runs). Both splits are written as SQuAD JSON into a temporary folder and both sides read those files.

Both sides: all-MiniLM-L6-v2 with a new, randomly initialised `qa_outputs` head (or --model), run_qa.py's
windows (question first, only_second truncation, max length 384, doc stride 128, the first answer
labelled, [CLS] when it is not inside a window), AdamW lr 3e-5, 2 epochs, batch 12 (run_qa's README
recipe), linear decay after 10 % warm-up, weight decay 0.01 (not on biases / LayerNorm), global-norm
clipping 1.0, fp32; no evaluation while training: the model of the LAST epoch is scored (Trainer's
protocol; kbert.train with eval= would keep the best epoch). Answers as utils_qa.postprocess_qa_predictions
picks them (n_best 20, max answer 30 tokens, null-score threshold 0 with v2.0), scored by ONE metric
code, kbert/tasks/question_answering/squad_metrics.py (the official evaluate-v1.1 / v2.0 definitions;
the reference loads it by file path).

- reference: benchmarks/hf_train_qa.py in .venv-ref (stock Trainer; run_qa's defaults: every window
  padded to 384 tokens, --hf-dynamic-padding for run_qa's --pad_to_max_length False).
- kbert: kbert.train(task="question-answering", ...) in a fresh process (this script with --child),
  then kbert.training.evaluation.evaluate_report on the eval file (length-bucketed batches unless
  --no-buckets, padding cut off before decoding).

Speed is training WINDOWS per second (a long context gives several), steady: without the first 5 steps
(and kbert's epoch-end backup). "train s" is HF's whole trainer.train() / kbert's fit from the first to
the last step; "total s" is each process from its start to the scores.

    .venv/bin/python benchmarks/bench_qa_training.py [--v2] [--seeds 42 43] [--epochs 2] [--batch-size 12]
        [--learning-rate 3e-5] [--eval-articles N] [--train-limit N] [--eval-limit N] [--model DIR]
        [--max-seq-length 384] [--doc-stride 128] [--hf-dynamic-padding] [--no-buckets] [--skip-hf | --skip-kbert]
        [--out DIR] [--table-only]

Sides and seeds can run as separate processes (e.g. one per core, `taskset -c N`, `--skip-hf` on one and
`--skip-kbert` on the other) with the same --out; `--table-only --out DIR --seeds ...` (same split options)
then prints the table. Below the table: kbert minus Trainer in EM / F1 per seed, paired question by
question, with a 95 % bootstrap interval over the eval questions.
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
from common import EXCLUDED_STEPS, data_dir, fit_rates, process_age, run_reference, step_clock  # noqa: E402

SQUAD_V1 = "squad_v1.1/dev-v1.1-articles-00-37.json"
SQUAD_V2 = "squad_v2.0/dev-v2.0-part-shared.json"
EVAL_SHARE = 0.15


# --- data ------------------------------------------------------------------------------------------
def question_count(articles) -> int:
    return sum(len(p["qas"]) for a in articles for p in a["paragraphs"])


def default_eval_articles(articles) -> int:
    """How many last articles hold closest to EVAL_SHARE of the questions (at least 1, leaving 1 to train on)."""
    total, counts = question_count(articles), [question_count([a]) for a in articles]
    sums = [sum(counts[len(counts) - k:]) for k in range(1, len(articles))]
    return 1 + min(range(len(sums)), key=lambda i: abs(sums[i] - EVAL_SHARE * total))


def first_questions(articles, limit: int | None) -> list:
    """The articles cut to their first ``limit`` questions in file order (emptied articles / paragraphs dropped)."""
    if limit is None:
        return articles
    kept, left = [], limit
    for article in articles:
        paragraphs = []
        for p in article["paragraphs"]:
            if left <= 0:
                break
            qas = p["qas"][:left]
            left -= len(qas)
            paragraphs.append({**p, "qas": qas})
        if paragraphs:
            kept.append({**article, "paragraphs": paragraphs})
    return kept


def write_split(source: pathlib.Path, folder: pathlib.Path, eval_articles: int | None, train_limit, eval_limit):
    """Train / eval SQuAD files split by article; returns (train path, eval path, description)."""
    squad = json.loads(source.read_text(encoding="utf-8"))
    articles = squad["data"]
    k = eval_articles or default_eval_articles(articles)
    if not 0 < k < len(articles):
        sys.exit(f"--eval-articles must be between 1 and {len(articles) - 1}, got {k}")
    train, evaluation = first_questions(articles[:-k], train_limit), first_questions(articles[-k:], eval_limit)
    paths = []
    for name, part in (("train.json", train), ("eval.json", evaluation)):
        paths.append(folder / name)
        paths[-1].write_text(json.dumps({"version": squad.get("version", ""), "data": part}), encoding="utf-8")
    about = (f"{source.name}: train {question_count(train)} questions from {len(train)} articles, "
             f"eval {question_count(evaluation)} questions from the last {len(evaluation)} "
             f"({', '.join(a['title'] for a in evaluation)})")
    return paths[0], paths[1], about


# --- the two sides ---------------------------------------------------------------------------------
def kbert_child() -> None:
    """The kbert side of one seed (request on stdin, one JSON line on stdout, as hf_train_qa.py)."""
    request = json.load(sys.stdin)
    import kbert
    from kbert.checkpoint import load_checkpoint
    from kbert.checkpoint.resolve import default_model_path
    from kbert.tasks.question_answering.squad_files import read_qa_examples
    from kbert.tasks.question_answering.training_features import qa_windows
    from kbert.training.evaluation import evaluate_report

    model = request.get("model") or str(default_model_path())
    v2, stride, batch = request["version_2_with_negative"], request["doc_stride"], request["batch_size"]
    clock, record = step_clock()
    with tempfile.TemporaryDirectory(prefix="kbert_qa_") as output:
        started = time.perf_counter()
        kbert.train(task="question-answering", train=request["train_file"], output=output, model=model, verbose=0,
                    callbacks=(clock,), epochs=request["epochs"], batch_size=batch,
                    learning_rate=request["learning_rate"], warmup=request["warmup_ratio"],
                    weight_decay=request["weight_decay"], max_length=request["max_seq_length"], doc_stride=stride,
                    seed=request["seed"], version_2_with_negative=v2, bucket_by_length=request["bucket_by_length"])
        train_seconds = time.perf_counter() - started
        started = time.perf_counter()
        report = evaluate_report(output, request["eval_file"], task="question-answering", batch_size=batch,
                                 version_2_with_negative=v2, doc_stride=stride)
        eval_seconds = time.perf_counter() - started
        total = process_age()
        tokenizer = load_checkpoint(output).tokenizer
        max_length = min(request["max_seq_length"], tokenizer.model_max_length)
        windows = len(qa_windows(tokenizer, read_qa_examples(request["train_file"]), max_seq_len=max_length,
                                 doc_stride=stride, training=True))
    print(json.dumps({"metrics": report.metrics, "train_seconds": train_seconds, "eval_seconds": eval_seconds,
                      "total_seconds": total, "train_windows": windows,
                      **fit_rates(record, windows * request["epochs"]),
                      "predictions": report.details["predictions"]}))


def run_side(side: str, request: dict) -> dict:
    if side == "kbert":
        return run_reference(pathlib.Path(__file__).name, request, python=sys.executable, args=("--child",))
    return run_reference("hf_train_qa.py", {**request, "warmup_steps_excluded": EXCLUDED_STEPS})


def agreement(ours: dict, theirs: dict) -> float:
    """Share of eval questions both sides answer with the same text."""
    return sum(ours.get(qid) == text for qid, text in theirs.items()) / max(len(theirs), 1)


def paired_differences(rows, eval_file: pathlib.Path, v2: bool, resamples: int = 2000) -> list[str]:
    """kbert minus Trainer in EM and F1, question by question on the same eval questions (each seed with
    both sides, and their mean): the difference and a 95 % paired bootstrap interval over questions.

    Two runs of one seed differ in head, dropout and data order, so a seed's difference mixes that noise
    with any real gap; resampling questions says how much of it the eval set alone could produce."""
    import numpy as np
    from scipy.stats import bootstrap

    from kbert.tasks.question_answering.squad_files import read_qa_examples
    from kbert.tasks.question_answering.squad_metrics import qa_metrics

    examples = read_qa_examples(str(eval_file))

    def per_question(predictions: dict) -> np.ndarray:  # the official definitions, one question at a time
        scores = [qa_metrics([ex], {ex.id: predictions.get(ex.id, "")}, version_2=v2) for ex in examples]
        return np.asarray([(m["exact_match"], m["f1"]) for m in scores])  # (questions, [EM, F1]), percentages

    paired = [(seed, per_question(ours["predictions"]) - per_question(hf["predictions"]))
              for seed, hf, ours in rows if hf and ours]
    if not paired:
        return []
    if len(paired) > 1:
        paired.append(("mean", np.mean([d for _, d in paired], axis=0)))
    lines = [f"kbert - Trainer, paired over the {len(examples)} eval questions (95 % bootstrap interval):"]
    for seed, diff in paired:
        low, high = bootstrap((diff,), np.mean, n_resamples=resamples, method="percentile", axis=0,
                              random_state=0).confidence_interval
        mean = diff.mean(axis=0)
        lines.append(f"  seed {seed}: EM {mean[0]:+.2f} [{low[0]:+.2f}, {high[0]:+.2f}], "
                     f"F1 {mean[1]:+.2f} [{low[1]:+.2f}, {high[1]:+.2f}]")
    return lines


# --- table -----------------------------------------------------------------------------------------
def side_cells(out: dict | None, v2: bool, fit_key: str) -> tuple[list[float], list[float]]:
    """(EM, F1[, NoAns exact]) and (steady windows/s, train or fit seconds, total seconds) of one side."""
    nan = float("nan")
    if out is None:
        return [nan] * (3 if v2 else 2), [nan] * 3
    m = out["metrics"]
    no_answer = m.get("NoAns_exact", m.get("no_answer_exact_match", nan))  # nan: no eval question without answer
    scores = [m["exact_match"], m["f1"]] + ([no_answer] if v2 else [])
    return scores, [out["steady_examples_per_second"] or nan, out[fit_key], out["total_seconds"]]


def print_table(rows, args, about: str) -> None:
    print(f"\n{about}")
    print(f"{args.epochs} epochs, batch {args.batch_size}, lr {args.learning_rate}, max length {args.max_seq_length}, "
          f"doc stride {args.doc_stride}, {os.cpu_count()} cores; HF windows "
          f"{'padded per batch' if args.hf_dynamic_padding else 'padded to max length'}, kbert "
          f"{'random batches' if args.no_buckets else 'length buckets'}; speed = steady training windows/s")
    score_heads = ["EM", "F1"] + (["NoAns"] if args.v2 else [])
    heads = ([f"HF {h}" for h in score_heads] + [f"kbert {h}" for h in score_heads]
             + ["HF win/s", "kbert win/s", "ratio", "HF train s", "kbert fit s", "HF total s", "kbert total s",
                "same answers"])
    print(f"{'seed':>5} " + " ".join(f"{h:>8}" for h in heads))
    for seed, hf, ours in rows:
        (hf_scores, (hf_rate, hf_fit, hf_total)), (scores, (rate, fit, total)) = (
            side_cells(hf, args.v2, "train_seconds"), side_cells(ours, args.v2, "fit_seconds"))
        same = agreement(ours["predictions"], hf["predictions"]) if hf and ours else float("nan")
        text = ([f"{v:.2f}" for v in hf_scores + scores] + [f"{hf_rate:.1f}", f"{rate:.1f}", f"{rate / hf_rate:.2f}x"]
                + [f"{v:.1f}" for v in (hf_fit, fit, hf_total, total)] + [f"{same:.1%}"])
        print(f"{seed:5d} " + " ".join(f"{t:>{max(len(h), 8)}}" for t, h in zip(text, heads)))


def saved_rows(folder: pathlib.Path, seeds) -> list:
    """(seed, Trainer result, kbert result) as an earlier run kept them in ``--out`` (None: no file)."""
    def saved(side: str, seed: int) -> dict | None:
        path = folder / f"{side}-seed{seed}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    return [(seed, saved("hf", seed), saved("kbert", seed)) for seed in seeds]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--v2", action="store_true", help=f"SQuAD v2.0 ({SQUAD_V2}), version_2_with_negative")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--learning-rate", type=float, default=3e-5)
    parser.add_argument("--warmup", type=float, default=0.1, help="warm-up share of the steps")
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--max-seq-length", type=int, default=384)
    parser.add_argument("--doc-stride", type=int, default=128)
    parser.add_argument("--eval-articles", type=int, help="the last N articles are the eval set (default: ~15 %%)")
    parser.add_argument("--train-limit", type=int, help="first N training questions only")
    parser.add_argument("--eval-limit", type=int, help="first N eval questions only")
    parser.add_argument("--model", help="checkpoint folder for both sides (default: all-MiniLM-L6-v2)")
    parser.add_argument("--hf-dynamic-padding", action="store_true", help="run_qa's --pad_to_max_length False")
    parser.add_argument("--no-buckets", action="store_true", help="kbert: random batches instead of length buckets")
    parser.add_argument("--skip-hf", action="store_true")
    parser.add_argument("--skip-kbert", action="store_true")
    parser.add_argument("--out", help="folder for each side's whole result, predictions included ({side}-seed{N}.json)")
    parser.add_argument("--table-only", action="store_true", help="train nothing: the table of the results in --out")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return kbert_child()
    if args.table_only and not args.out:
        sys.exit("--table-only needs --out DIR")
    source = data_dir() / (SQUAD_V2 if args.v2 else SQUAD_V1)
    if not source.is_file():
        sys.exit(f"{source} not found: the benchmark needs ../shared/data (or $KBERT_DATA)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_qa_") as tmp:
        train_file, eval_file, about = write_split(source, pathlib.Path(tmp), args.eval_articles, args.train_limit,
                                                   args.eval_limit)
        print(about, file=sys.stderr)
        model = args.model and str(pathlib.Path(args.model).resolve())
        base = {"train_file": str(train_file), "eval_file": str(eval_file), "model": model,
                "epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
                "warmup_ratio": args.warmup, "weight_decay": args.weight_decay,
                "max_seq_length": args.max_seq_length, "doc_stride": args.doc_stride,
                "version_2_with_negative": args.v2, "pad_to_max_length": not args.hf_dynamic_padding,
                "bucket_by_length": not args.no_buckets}
        for seed in [] if args.table_only else args.seeds:
            request = {**base, "seed": seed}
            hf = None if args.skip_hf else run_side("hf", request)
            ours = None if args.skip_kbert else run_side("kbert", request)
            rows.append((seed, hf, ours))
            if args.out:
                folder = pathlib.Path(args.out)
                folder.mkdir(parents=True, exist_ok=True)
                for side, out in (("hf", hf), ("kbert", ours)):
                    if out is not None:
                        (folder / f"{side}-seed{seed}.json").write_text(json.dumps(out), encoding="utf-8")
            brief = {side: out and {k: v for k, v in out.items() if k not in ("step_seconds", "predictions")}
                     for side, out in (("hf", hf), ("kbert", ours))}
            print(json.dumps({"seed": seed, **brief}), flush=True)
        rows = saved_rows(pathlib.Path(args.out), args.seeds) if args.table_only else rows
        print_table(rows, args, about)
        print("\n".join(paired_differences(rows, eval_file, args.v2)))


if __name__ == "__main__":
    main()

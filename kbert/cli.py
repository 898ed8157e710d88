"""The ``kbert`` command line: ``train``, ``evaluate``, ``run``, ``tune``, ``predict``, ``info``, ``export``,
``serving-config``, and for retrieval ``embed``, ``index``, ``search`` and ``mine-negatives``.

Every command reports bad input as one line ``kbert: error: ...`` on stderr with exit code 2
(never a traceback); results go to stdout as JSON (one object per line for ``predict``) and nothing else does:
progress bars, banners and summaries go to stderr (:func:`_stdout_to_stderr`). The parser
is built from the task registry's specs without importing TensorFlow, so ``--help`` and usage errors
answer at once; a task's own flags (``--tag-column``, ``--aggregation-strategy``...) come from its
``SPEC`` and are accepted only with that task.

Example:
    $ kbert predict --model minilm --pooling mean "I love Paris"
    $ kbert info --model tests/fixtures/checkpoints/tiny-uncased-cls
    $ kbert export --model minilm --output saved_models/minilm
    $ kbert train --task text-classification --model minilm --train train.tsv --eval dev.tsv --output runs/x
    $ kbert run pipelines/demo_sentiment.toml
    $ kbert tune pipelines/tune_sst2.toml --tuner bayesian --max-trials 8
    $ kbert embed --model minilm --input texts.txt --output vectors.npy
    $ kbert index --corpus news.csv --text-column title,description --output indexes/news [--approximate hnsw|ivf]
    $ kbert search --index indexes/news -k 5 --table [--rerank runs/cross-encoder] "oil prices rise"
    $ kbert train --task retrieval --model minilm --train pairs.jsonl --eval held_out.jsonl --output runs/bi
    $ kbert mine-negatives --model runs/bi --data pairs.jsonl --output mined.jsonl --pairs-output rerank.tsv
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import glob
import json
import os
import sys
import warnings

from kbert.errors import InputError
from kbert.tasks.registry import DEFAULT_TRAIN_TASK, specs

MODEL_HELP = "checkpoint folder, 'minilm' (default: the embedded all-MiniLM-L6-v2) or hf://org/name"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kbert", description="Fine-tune and serve BERT encoders with Keras.")
    sub = parser.add_subparsers(dest="command", required=True)

    predict = sub.add_parser("predict", help="run a pipeline on texts; JSON lines out")
    predict.add_argument("texts", nargs="*", metavar="TEXT", help="texts to run (or use --input)")
    predict.add_argument("--model", default="minilm", help=MODEL_HELP)
    predict.add_argument("--task", help="task name (default: the task of the model's trained head, else "
                                        "feature extraction)")
    predict.add_argument("--input", help="file with one text per line, or .jsonl with {'text', 'text_pair'} objects "
                                         "(FILE[start:stop] for a range of them)")
    _encoding_flag(predict)
    predict.add_argument("--batch-size", type=int, default=32)
    predict.add_argument("--max-length", type=int, default=None, help="truncate to this many tokens")
    _precision_flag(predict)
    _task_flags(predict, "predict")

    info = sub.add_parser("info", help="describe a checkpoint as JSON")
    info.add_argument("--model", default="minilm", help=MODEL_HELP)

    export = sub.add_parser("export", help="write a TF Serving SavedModel that takes raw strings")
    export.add_argument("--model", default="minilm", help=MODEL_HELP)
    export.add_argument("--output", required=True, help="model base folder, e.g. saved_models/NAME")
    export.add_argument("--task", help="default: as for predict")
    export.add_argument("--pair", action="store_true", default=None, help="add a text_pair input")
    export.add_argument("--max-length", type=int, default=None)
    export.add_argument("--corpus-index", metavar="DIR", help="an exact index of kbert index (at most 200,000 "
                                                             "documents): adds a 'search' signature, text -> ids, "
                                                             "scores (sentence-embedding task)")
    export.add_argument("--top-k", type=int, default=None, help="documents per query of the search signature "
                                                                "(default 10)")
    _precision_flag(export)

    train = sub.add_parser("train", help="fine-tune a checkpoint; writes a Hugging Face checkpoint folder")
    train.add_argument("--task", default=DEFAULT_TRAIN_TASK,
                       help=f"what to train (default {DEFAULT_TRAIN_TASK}): {', '.join(_trainable())}")
    train.add_argument("--model", default="minilm", help="starting checkpoint (default: the embedded MiniLM)")
    train.add_argument("--train", required=True, help="training data (FILE[start:stop] for a range of rows or "
                                                      "sentences): " + "; ".join(_data_help()) + "; "
                                                      "text-classification also streams shards: a glob "
                                                      "'shards/*.tsv', A.tsv,B.tsv, or .tfrecord files")
    train.add_argument("--eval", help="evaluation data, same forms; scored after every epoch")
    train.add_argument("--output", required=True, help="run folder (re-run the same command to resume)")
    _data_flags(train)
    train.add_argument("--labels", help="comma-separated label names in id order (default: sorted data labels)")
    train.add_argument("--label-names", help="rename the data's labels: '0=entailment,1=not_entailment'")
    train.add_argument("--strict-labels", action="store_true",
                       help="fail (instead of warning) when an inferred label occurs only once, likely a typo")
    train.add_argument("--epochs", type=int, default=3)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--learning-rate", type=float, default=5e-5)
    train.add_argument("--warmup", type=float, default=0.1, help="fraction of steps (< 1) or number of steps")
    train.add_argument("--weight-decay", type=float, default=0.01)
    train.add_argument("--dropout", type=float, default=None)
    train.add_argument("--max-length", type=int, default=128)
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--freeze-backbone", action="store_true", help="train only the head")
    train.add_argument("--layer-lr-decay", type=float, default=None, metavar="DECAY",
                       help="layer-wise learning-rate decay in (0, 1]: layer i of L trains at lr * DECAY^(L-i)")
    train.add_argument("--clip-norm", type=float, default=1.0, help="global gradient-norm clipping (0: off)")
    train.add_argument("--strategy", default="default", choices=["default", "mirrored", "multiworker", "tpu"],
                       help="mirrored: local GPUs (CPU: KBERT_CPU_DEVICES=2); multiworker: the cluster in TF_CONFIG; "
                            "tpu: TPUStrategy (--tpu)")
    train.add_argument("--tpu", default=None, help="with --strategy tpu: the TPU's name or grpc://host:port "
                                                   "(default: from the environment)")
    train.add_argument("--precision", default="float32", choices=["float32", "mixed_float16", "mixed_bfloat16"],
                       help="mixed precision: float16/bfloat16 compute, float32 variables and outputs")
    train.add_argument("--xla", action="store_true", help="compile the training step with XLA (jit_compile)")
    train.add_argument("--early-stopping", type=int, default=None, metavar="PATIENCE")
    train.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                       help="read --train with tf.data while training instead of reading and tokenizing every row "
                            "first (default: for shards, globs, .tfrecord and files over 32 MiB)")
    train.add_argument("--steps-per-epoch", type=int, default=None,
                       help="streamed input: steps per epoch (default: rows / batch size, from a counting pass)")
    train.add_argument("--shuffle-buffer", type=int, default=10_000,
                       help="streamed input: rows in the shuffle buffer (default 10000; 0: no shuffling)")
    train.add_argument("--train-limit", type=int, default=None)
    train.add_argument("--eval-limit", type=int, default=None)
    train.add_argument("--download", action="store_true", help="allow TFDS to download the dataset")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    _task_flags(train, "train")

    evaluate = sub.add_parser("evaluate", help="score a fine-tuned checkpoint on labelled data; one JSON object")
    evaluate.add_argument("--model", required=True, help="the fine-tuned checkpoint folder (kbert train's --output)")
    evaluate.add_argument("--data", required=True, help="labelled data in the forms of train --train "
                                                        "(FILE[start:stop] for a range)")
    evaluate.add_argument("--task", default=None, help="default: the task the checkpoint was trained for")
    _data_flags(evaluate)
    evaluate.add_argument("--batch-size", type=int, default=32)
    evaluate.add_argument("--max-length", type=int, default=None,
                          help="default: the length the model was fine-tuned with, else the tokenizer's maximum")
    evaluate.add_argument("--download", action="store_true")
    _precision_flag(evaluate)
    evaluate.add_argument("--plots", metavar="DIR", help="also draw the task's figures (confusion matrix, per-type F1) "
                                                         "into DIR")
    _task_flags(evaluate, "evaluate")

    tune = sub.add_parser("tune", help="search hyperparameters of a TOML recipe's [train] run with Keras Tuner "
                                       "([tune] table); prints the trials, writes the best trial's checkpoint")
    tune.add_argument("recipe")
    tune.add_argument("--tuner", choices=["random", "bayesian", "hyperband", "grid"], default=None,
                      help="default: the recipe's, else random")
    tune.add_argument("--max-trials", type=int, default=None, help="random/bayesian/grid (default: recipe's, else 10)")
    tune.add_argument("--max-epochs", type=int, default=None, help="hyperband (default: [train] epochs)")
    tune.add_argument("--overwrite", action="store_true", default=None,
                      help="start the search again (default: continue the one in the output folder)")

    run = sub.add_parser("run", help="run a TOML recipe: train, evaluate, export, predict through the export")
    run.add_argument("recipe")

    mine = sub.add_parser("mine-negatives", help="add hard negatives to (query, positive) rows: the documents a model "
                                                 "ranks high that are not relevant; JSON lines for kbert train --task "
                                                 "retrieval")
    mine.add_argument("--model", default="minilm", help="the sentence-embedding model that ranks (default: minilm)")
    mine.add_argument("--data", required=True, help="csv/tsv/jsonl rows with query and positive columns "
                                                    "(FILE[start:stop] for a range of rows)")
    mine.add_argument("--output", required=True, help="the .jsonl file of {query, positive, negatives} rows")
    mine.add_argument("--pairs-output", help="also a (text, text_pair, label) TSV of relevant / irrelevant pairs, to "
                                             "train a cross-encoder re-ranker with kbert train")
    mine.add_argument("--corpus", help="more candidate documents: csv/tsv/jsonl read as kbert index reads a corpus "
                                       "(FILE[start:stop] for a range of rows)")
    _encoding_flag(mine)
    mine.add_argument("--corpus-text-column", help="text column(s) of --corpus, comma-separated (default: text)")
    mine.add_argument("--query-column", help="default: query or anchor")
    mine.add_argument("--positive-column", help="default: positive")
    mine.add_argument("--num-negatives", type=int, default=3, help="negatives per row (default 3)")
    mine.add_argument("--range-max", type=int, default=50, help="candidates per query (default 50)")
    mine.add_argument("--margin", type=float, default=None,
                      help="skip candidates scoring above positive - MARGIN (absolute; default: none)")
    mine.add_argument("--relative-margin", type=float, default=0.05,
                      help="skip candidates scoring above positive * (1 - R) (default 0.05)")
    _embedding_flags(mine)

    embed = sub.add_parser("embed", help="sentence embeddings of a file of texts, as sentence-transformers "
                                         "computes them; written to a .npy file")
    embed.add_argument("--model", default="minilm", help="sentence-transformers or HF folder, 'minilm' (default) "
                                                         "or hf://org/name")
    embed.add_argument("--input", required=True, help="one text per line (blank lines skipped), or .jsonl with "
                                                      "{'text'} objects (FILE[start:stop] for a range of them)")
    _encoding_flag(embed)
    embed.add_argument("--output", required=True, help="the .npy file of (texts, dimension) float32 vectors")
    _embedding_flags(embed)
    embed.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                       help="L2-normalise the vectors (default: as the model says)")
    _precision_flag(embed)

    index = sub.add_parser("index", help="embed a corpus and write a FAISS vector index folder")
    index.add_argument("--model", default="minilm", help="the sentence-embedding model (default: minilm)")
    index.add_argument("--corpus", required=True, help="csv/tsv with a header row, or jsonl objects "
                                                       "(FILE[start:stop] for a range of rows)")
    index.add_argument("--output", required=True, help="the index folder")
    index.add_argument("--text-column", help="column(s) to embed, comma-separated and joined by a space "
                                             "(names or 0-based indexes; default: text)")
    index.add_argument("--id-column", help="column of the document ids (default: id if present, else the row number)")
    index.add_argument("--format", choices=["csv", "tsv", "jsonl"], help="default: from the file extension")
    _encoding_flag(index)
    index.add_argument("--approximate", choices=["hnsw", "ivf"], help="an approximate HNSW or IVF index "
                                                                      "(default: exact search)")
    index.add_argument("--ivf-lists", type=int, default=None, help="with --approximate ivf: k-means lists "
                                                                   "(default: sqrt(documents))")
    _embedding_flags(index)
    _precision_flag(index)

    search = sub.add_parser("search", help="the best documents of an index for each query; JSON lines out")
    search.add_argument("queries", nargs="+", metavar="QUERY")
    search.add_argument("--index", required=True, help="a folder written by kbert index")
    search.add_argument("-k", "--top-k", dest="k", type=int, default=10, help="documents per query (default 10)")
    search.add_argument("--model", default=None, help="default: the model the index was built with")
    search.add_argument("--table", action="store_true", help="a readable table instead of JSON lines")
    search.add_argument("--nprobe", type=int, default=None, help="lists an IVF index scans (default: its own, 10)")
    search.add_argument("--rerank", metavar="MODEL", help="re-score the best documents with this cross-encoder "
                                                          "(a text-classification checkpoint of query/document pairs)")
    search.add_argument("--rerank-depth", type=int, default=None, help="documents re-scored per query "
                                                                       "(default: max(k, 50))")
    search.add_argument("--relevant-label", help="the re-ranker's label meaning relevant (default: relevant, 1, "
                                                 "LABEL_1 or positive)")
    search.add_argument("--fusion", choices=["rrf"], default=None,
                        help="order re-ranked documents by reciprocal rank fusion of the bi-encoder's and the "
                             "cross-encoder's rankings (default: the cross-encoder's score alone)")

    shard = sub.add_parser("shard", help="deal the rows of one big csv/tsv/jsonl file into N shards for kbert "
                                         "train --train 'DIR/*.tsv' (streamed, each worker reading its own)")
    shard.add_argument("--input", required=True, help="the csv/tsv/jsonl file (one row per line)")
    shard.add_argument("--output", required=True, help="the folder for part-0000i-of-0000N files (new or empty)")
    shard.add_argument("--num-shards", type=int, required=True, help="how many shards (at least the number of "
                                                                     "workers that will read them)")
    shard.add_argument("--format", choices=["csv", "tsv", "jsonl"], help="default: from the file extension")

    serving = sub.add_parser("serving-config", help="write TF Serving's models.config (and batching_parameters.txt) "
                                                    "for exported model base folders")
    serving.add_argument("bases", nargs="+", metavar="SAVED_MODEL_BASE",
                         help="model base folders, each holding version folders 1/, 2/... (kbert export --output)")
    serving.add_argument("--output", required=True, help="the models.config file to write")
    serving.add_argument("--name", action="append", help="model name, once per folder in order (default: the "
                                                         "folder's name)")
    serving.add_argument("--base-path-root", metavar="DIR", help="write base_path as DIR/<folder name>, the path "
                                                                 "inside a container (e.g. /models); default: the "
                                                                 "folder's absolute path")
    serving.add_argument("--batching", action="store_true", help="also write batching_parameters.txt beside --output")
    serving.add_argument("--max-batch-size", type=int, default=None, help="with --batching (default 32)")
    serving.add_argument("--batch-timeout-micros", type=int, default=None, help="with --batching (default 2000)")
    serving.add_argument("--num-batch-threads", type=int, default=None, help="with --batching (default: this "
                                                                             "machine's cores)")
    serving.add_argument("--max-enqueued-batches", type=int, default=None, help="with --batching (default 100)")
    return parser


def _embedding_flags(parser) -> None:
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=None,
                        help="tokens per text (default: the model's max_seq_length, e.g. 256 for MiniLM)")


def _precision_flag(parser) -> None:
    parser.add_argument("--precision", default="float32", choices=["float32", "bfloat16"],
                        help="float32 (default) or bfloat16: bfloat16 matmuls, "
                        "float32 softmax, layer norms and outputs; only on CPUs with avx512_bf16 / AMX or a GPU "
                        "(KBERT_ALLOW_EMULATED_BFLOAT16=1 runs it emulated elsewhere)")


def _precision(args) -> str:
    """``--precision``, checked for this machine (the error names the flag)."""
    from kbert.precision import check_precision

    return check_precision(args.precision, "--precision")


def _data_flags(parser) -> None:
    parser.add_argument("--format", choices=["csv", "tsv", "jsonl", "conll", "conllu", "squad"],
                        help="default: from the file extension")
    _encoding_flag(parser)
    parser.add_argument("--text-column", help="column name or 0-based index (default: text/sentence/...)")
    parser.add_argument("--text-pair-column")
    parser.add_argument("--label-column")


def _encoding_flag(parser) -> None:
    parser.add_argument("--encoding", default="utf-8", help="text encoding of the data files (default utf-8; a "
                                                            "byte-order mark is accepted), e.g. latin-1, cp1252")


def _data_help() -> list[str]:
    """What each trainable task reads, from its spec (``text-classification: csv/tsv/jsonl...``)."""
    return [f"{spec.name}: {spec.data_help}" for spec in specs() if spec.trainable and spec.data_help]


def _trainable() -> list[str]:
    return [spec.name for spec in specs() if spec.trainable]


def _task_flags(parser, command: str) -> None:
    """Every task's own flags for ``command``; each is accepted only with its task (see :func:`_task_options`)."""
    owners: dict[str, tuple] = {}
    for spec in specs():
        for option in spec.options_for(command):
            known = owners.get(option.name)
            if known is not None and known[0].flag != option.flag:
                raise ValueError(f"option {option.name!r} of {spec.name} clashes with {known[1]}'s")
            owners[option.name] = (option, (known[1] + ", " if known else "") + spec.name)
    for name, (option, tasks) in owners.items():
        kwargs = {"action": "store_true"} if option.flag else {"type": option.parse or str, "choices": option.choices}
        parser.add_argument(option.cli_flag, dest=f"task_{name}", default=argparse.SUPPRESS,
                            help=f"{tasks}: {option.help}", **kwargs)


def _task_options(args, spec, command: str) -> dict:
    """The task options given on the command line, checked to belong to ``spec``'s task; with defaults."""
    given = {k[len("task_"):]: v for k, v in vars(args).items() if k.startswith("task_")}
    known = {o.name for o in spec.options_for(command)}
    for name in given:
        if name not in known:
            owners = [s.name for s in specs() if any(o.name == name for o in s.options_for(command))]
            raise InputError(f"--{name.replace('_', '-')} is an option of {', '.join(owners)}, not of {spec.name}")
    return spec.resolve(command, given)


def _column(value):
    return int(value) if value is not None and value.isdigit() else value


def _label_names(value):
    if value is None:
        return None
    pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
    if not pairs or any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise InputError(f"--label-names takes 'value=name,value=name', got {value!r}")
    return {k.strip(): v.strip() for k, v in pairs}


def _columns(value, flag: str):
    """``--text-column title,description`` as a list of column names / indexes (``None`` when not given)."""
    if value is None:
        return None
    columns = [_column(c.strip()) for c in value.split(",")]
    if any(c == "" for c in columns):
        raise InputError(f"{flag} takes comma-separated column names, got {value!r}")
    return columns


def _batching(args) -> dict:
    given = {k: getattr(args, k) for k in ("max_batch_size", "batch_timeout_micros", "num_batch_threads",
                                           "max_enqueued_batches") if getattr(args, k) is not None}
    if given and not args.batching:
        raise InputError(f"{', '.join('--' + k.replace('_', '-') for k in given)}: only with --batching")
    return given


# Python keywords whose flag has another name, per command (the rest: keyword == the flag's dest).
_KEYWORD_FLAGS = {"index": {"text_columns": "text_column"}, "mine-negatives": {"text_columns": "corpus_text_column"},
                  "serving-config": {"names": "name"}}


def _flags(parser, command: str) -> dict[str, str] | None:
    """Python keyword -> flag of ``command``, for messages (:mod:`kbert.hints`); none for ``run``/``tune``, whose
    recipes use the Python keywords."""
    if command in ("run", "tune"):
        return None
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    flags = {}
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            name = action.dest[len("task_"):] if action.dest.startswith("task_") else action.dest
            flags[name] = action.option_strings[-1]
    for keyword, dest in _KEYWORD_FLAGS.get(command, {}).items():
        flags[keyword] = flags[dest]
    return flags


def _check_usage(args) -> None:
    """The usage errors that need no model, before TensorFlow starts: options of another task, bad values,
    missing files and folders (the library checks them again where it reads them)."""
    from kbert.checkpoint.resolve import HF_SCHEME, resolve_model
    from kbert.tasks.registry import get_spec

    command = args.command
    if command == "predict" and bool(args.texts) == bool(args.input):
        raise InputError("give texts as arguments or --input FILE (exactly one of them)")
    task = args.task if command in ("predict", "evaluate", "train") else None
    if task is not None:
        _task_options(args, get_spec(task), command)
    _label_names(getattr(args, "label_names", None))
    if command == "index":
        _columns(args.text_column, "--text-column")
    if command == "mine-negatives":
        _columns(args.corpus_text_column, "--corpus-text-column")
    if command == "search":
        if args.k < 1:
            raise InputError(f"-k must be a positive integer, got {args.k}")
        if args.rerank is None and (args.rerank_depth is not None or args.relevant_label is not None
                                    or args.fusion is not None):
            raise InputError("--rerank-depth, --relevant-label and --fusion go with --rerank MODEL")
    if command == "serving-config":
        _batching(args)
    for flag in ("model", "rerank"):
        model = getattr(args, flag, None)
        if model is not None and not str(model).startswith(HF_SCHEME):
            resolve_model(model)
    for flag in ("train", "eval", "data", "input", "corpus", "recipe"):
        _check_file(getattr(args, flag, None), flag)
    for flag in ("index", "corpus_index"):
        folder = getattr(args, flag, None)
        if folder is not None and not os.path.isdir(folder):
            raise InputError(f"--{flag.replace('_', '-')} {folder}: no such index folder")


def _check_file(source, flag: str) -> None:
    """A data file given as ``--flag FILE`` (or ``FILE[start:stop]``) exists; ``tfds:`` names are not files;
    ``--train`` may name shards (a glob or comma-separated files: checked by :func:`kbert.data.sources.shard_paths`)."""
    from kbert.data.sources import shard_paths, split_row_range
    from kbert.data.tfds_sources import is_tfds_name
    from kbert.errors import DataError

    if source is None or is_tfds_name(source):
        return
    if flag == "train" and not os.path.exists(source) and ("," in source or glob.has_magic(source)) and (
            split_row_range(source)[1] == slice(None)):
        try:
            shard_paths(source)
        except DataError as err:
            raise InputError(f"--train {err}") from None
        return
    path, _ = split_row_range(source)
    shown = f"--{flag} {path}" if flag != "recipe" else path
    if not os.path.exists(path):
        raise InputError(f"{shown}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{shown}: is a folder, not a file")


# Commands that write nothing but stdout. When one of them is the process's command (``argv`` None), the
# interpreter's exit skips its last garbage collection (``gc.freeze`` at exit): the collection walks every
# object TensorFlow and Keras made and took 0.6-0.9 s of each ``kbert predict`` (0.03-0.08 s without),
# measured 2026-12-07 on a shared 2-core CPU. Exit handlers still run and stdout is still flushed; nothing of
# these commands waits on a collection (a command that writes files is left to the usual exit).
STDOUT_ONLY_COMMANDS = ("predict", "info", "search")


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)  # --help and usage errors exit here, before TensorFlow loads
    from kbert.errors import KbertError
    from kbert.hints import command_line_flags
    from kbert.lean_imports import KERAS_EXTRAS, NEVER_USED, hidden
    from kbert.quiet_tensorflow import start_quietly

    warnings.showwarning = _show_warning
    commands = {"predict": _predict, "info": _info, "export": _export, "train": _train, "evaluate": _evaluate,
                "run": _run, "tune": _tune, "embed": _embed, "index": _index, "search": _search,
                "mine-negatives": _mine_negatives, "serving-config": _serving_config, "shard": _shard}
    if argv is None and args.command in STDOUT_ONLY_COMMANDS:
        atexit.register(gc.freeze)  # see STDOUT_ONLY_COMMANDS
    try:
        _check_usage(args)  # what needs no model answers at once, before TensorFlow loads
        strategy, tpu = _strategy_at_startup(args)
        # hints name --flags; keras-hub loads without kagglehub (kbert.lean_imports)
        with _stdout_to_stderr(), command_line_flags(_flags(parser, args.command)), hidden(NEVER_USED):
            # TensorFlow without its C++ noise (only what the level of a user-set TF_CPP_MIN_LOG_LEVEL allows),
            # without the packages Keras imports for features no command uses (kbert.lean_imports),
            # and the device settings that must come before its devices start (_configure_devices).
            with hidden(KERAS_EXTRAS):
                start_quietly(configure=lambda: _configure_devices(strategy, tpu))
            lines = commands[args.command](args)
        for line in lines:
            print(line)
        return 0
    except KbertError as err:
        print(f"kbert: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kbert: interrupted", file=sys.stderr)
        return 130


def _stdout_to_stderr():
    """While a command works, ``sys.stdout`` is stderr: what libraries print there (Keras's progress bar through
    ``keras.utils.io_utils.print_msg``, Keras Tuner's trial banners, kbert's training summary line) goes to stderr,
    so stdout holds only the command's result, which :func:`main` prints after the ``with`` block. Progress bars
    still draw in place on a terminal: Keras and tqdm ask the stream they write to (now stderr) ``isatty()``."""
    return contextlib.redirect_stdout(sys.stderr)


def _strategy_at_startup(args) -> tuple[str, str | None]:
    """The strategy (and TPU) the command will train under, read before TensorFlow starts: ``train``'s
    ``--strategy``/``--tpu``, the recipe's [train] for ``run`` and ``tune`` (loading it checks the recipe early);
    ``default`` for the other commands and for a search under a strategy the tuner refuses (it says so itself)."""
    if args.command == "train":
        return args.strategy, args.tpu
    if args.command in ("run", "tune"):
        from kbert.recipes import load_recipe
        from kbert.tuning.search import TUNER_STRATEGIES

        train = load_recipe(args.recipe).train
        if args.command == "run" or train.strategy in TUNER_STRATEGIES:
            return train.strategy, train.tpu
    return "default", None


def _configure_devices(strategy: str, tpu: str | None) -> None:
    """Run by :func:`start_quietly` between TensorFlow's import and its device initialisation: the logical CPU
    devices of ``KBERT_CPU_DEVICES`` (``mirrored`` without GPUs), then the strategy if it must exist before the
    devices start (``multiworker``, ``tpu``: :func:`~kbert.training.strategy.make_at_startup`); the command's
    own ``make_strategy`` call then returns that same strategy."""
    from kbert.training.strategy import make_at_startup, split_cpu_from_env

    split_cpu_from_env()
    make_at_startup(strategy, tpu)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """kbert's own warnings as one line (``kbert: warning: train.tsv:17: label 'postive' occurs only once...``)."""
    from kbert.errors import DataWarning

    if issubclass(category, DataWarning):
        print(f"kbert: warning: {message}", file=file or sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _predict(args) -> list[str]:
    import kbert
    from kbert.checkpoint import load_checkpoint
    from kbert.inputs import read_inputs
    from kbert.tasks import default_task, get_spec

    checkpoint = load_checkpoint(args.model)
    spec = get_spec(args.task or default_task(checkpoint))
    params = _task_options(args, spec, "predict")
    task = spec.load()(checkpoint)
    if args.texts and task.input_fields != ("text",):
        raise InputError(f"{spec.name} reads {' and '.join(task.input_fields)}: give them in --input FILE.jsonl")
    examples = ([{"text": t} for t in args.texts] if args.texts
                else read_inputs(args.input, task.input_fields, task.optional_input_fields, args.encoding))
    pipe = kbert.Pipeline(task, batch_size=args.batch_size, max_length=args.max_length,
                          precision=_precision(args))
    inputs = [task.input_of_record(e) for e in examples]
    from kbert.progress import progress_bars

    with progress_bars("predicting"):  # shown on a terminal only (a file of thousands of lines takes a while)
        results = pipe.each(inputs, **params)
    return [json.dumps({**example, "result": result}, ensure_ascii=False) for example, result in zip(examples, results)]


def _info(args) -> list[str]:
    from kbert.checkpoint import load_checkpoint
    from kbert.tasks import default_task

    ckpt = load_checkpoint(args.model)
    c, tok = ckpt.config, ckpt.tokenizer
    return [json.dumps({
        "path": str(ckpt.path), "model_type": c.model_type, "architectures": list(c.architectures),
        "default_task": default_task(ckpt), "labels": c.id2label, "problem_type": c.problem_type,
        "layers": c.num_hidden_layers, "hidden_size": c.hidden_size, "heads": c.num_attention_heads,
        "intermediate_size": c.intermediate_size, "hidden_act": c.hidden_act, "vocab_size": c.vocab_size,
        "max_length": tok.model_max_length, "lowercase": tok.lowercase,
        "strip_accents": getattr(tok.normalizer, "strip_accents", None), "has_pooler": ckpt.has_pooler,
        "heads_present": [h for h in ("classifier", "qa_outputs") if ckpt.head_tensors(h) is not None],
        "parameters": int(sum(t.size for t in ckpt.state_dict.values())),
    }, indent=2)]


def _export(args) -> list[str]:
    from kbert.export import export_saved_model

    path = export_saved_model(args.model, args.output, task=args.task, text_pair=args.pair, max_length=args.max_length,
                              corpus_index=args.corpus_index, top_k=args.top_k, precision=_precision(args))
    return [json.dumps({"saved_model": str(path)})]


def _train(args) -> list[str]:
    from kbert.tasks import get_spec
    from kbert.training.config import TrainConfig
    from kbert.training.trainer import train

    config = TrainConfig(
        train=args.train, eval=args.eval, output=args.output, task=args.task, model=args.model, format=args.format,
        encoding=args.encoding,
        text_column=_column(args.text_column), text_pair_column=_column(args.text_pair_column),
        label_column=_column(args.label_column), label_names=_label_names(args.label_names),
        labels=tuple(n.strip() for n in args.labels.split(",")) if args.labels else None,
        strict_labels=args.strict_labels, task_options=_task_options(args, get_spec(args.task), "train"),
        train_limit=args.train_limit, eval_limit=args.eval_limit, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, warmup=args.warmup, weight_decay=args.weight_decay, dropout=args.dropout,
        max_length=args.max_length, seed=args.seed, freeze_backbone=args.freeze_backbone,
        layer_lr_decay=args.layer_lr_decay, clip_norm=args.clip_norm or None, strategy=args.strategy, tpu=args.tpu,
        precision=args.precision, jit_compile=True if args.xla else "auto", early_stopping=args.early_stopping,
        download=args.download, verbose=0 if args.quiet else 1, stream=args.stream,
        steps_per_epoch=args.steps_per_epoch, shuffle_buffer=args.shuffle_buffer)
    result = train(config)
    return [json.dumps({"checkpoint": str(result.output), "metrics": result.metrics})]


def _evaluate(args) -> list[str]:
    from kbert.checkpoint import load_checkpoint
    from kbert.tasks import default_task, get_spec
    from kbert.training.evaluation import evaluate

    task = args.task
    if task is None and any(k.startswith("task_") for k in vars(args)):  # task flags: check them against its task
        checkpoint = load_checkpoint(args.model)
        task = default_task(checkpoint)
    options = _task_options(args, get_spec(task), "evaluate") if task else {}
    metrics = evaluate(args.model, args.data, task=task, format=args.format, encoding=args.encoding,
                       text_column=_column(args.text_column), text_pair_column=_column(args.text_pair_column),
                       label_column=_column(args.label_column), batch_size=args.batch_size,
                       max_length=args.max_length, download=args.download, plots=args.plots,
                       precision=_precision(args), **options)
    return [json.dumps(metrics)]


def _run(args) -> list[str]:
    from kbert.recipes import run_recipe

    return [json.dumps(run_recipe(args.recipe), indent=2, ensure_ascii=False)]


def _tune(args) -> list[str]:
    from kbert.tuning.search import results_table, tune_recipe

    result = tune_recipe(args.recipe, tuner=args.tuner, max_trials=args.max_trials, max_epochs=args.max_epochs,
                         overwrite=args.overwrite)
    print(results_table(result.trials, list(result.best_hyperparameters), result.objective, result.direction),
          file=sys.stderr)
    return [json.dumps({"best_checkpoint": str(result.best_checkpoint), "objective": result.objective,
                      "best_score": result.best_score, "best_hyperparameters": result.best_hyperparameters,
                      "best_metrics": result.best_metrics, "trials": len(result.trials)})]


def _embed(args) -> list[str]:
    from kbert.inputs import read_inputs
    from kbert.semantic_search.indexing import Embedder, embed_texts

    texts = [e["text"] for e in read_inputs(args.input, ("text",), (), args.encoding)]
    embedder = Embedder(args.model, batch_size=args.batch_size, max_seq_length=args.max_length,
                        normalize=args.normalize, precision=_precision(args))
    return [json.dumps(embed_texts(embedder, texts, args.output))]


def _index(args) -> list[str]:
    from kbert.semantic_search.indexing import build_index

    columns = _columns(args.text_column, "--text-column")
    summary = build_index(args.model, args.corpus, args.output, text_columns=columns,
                          id_column=_column(args.id_column), format=args.format, encoding=args.encoding,
                          approximate=args.approximate, ivf_lists=args.ivf_lists,
                          batch_size=args.batch_size, max_seq_length=args.max_length, precision=_precision(args))
    return [json.dumps(summary)]


def _search(args) -> list[str]:
    from kbert.semantic_search.indexing import search_index

    reranker = None
    if args.rerank is not None:
        from kbert.semantic_search.rerank import Reranker

        reranker = Reranker(args.rerank, relevant_label=args.relevant_label)
    results = search_index(args.index, args.queries, k=args.k, model=args.model, nprobe=args.nprobe,
                           rerank=reranker, rerank_depth=args.rerank_depth, fusion=args.fusion)
    lines = []
    for query, hits in zip(args.queries, results):
        if not args.table:
            lines.append(json.dumps({"query": query, "results": hits}, ensure_ascii=False))
            continue
        lines.append(f"query: {query}")
        lines.append(f"{'rank':>4}  {'score':>6}  " + ("retrieval  " if reranker else "") + f"{'id':<12}  text")
        for hit in hits:
            text = " ".join(str(hit.get("text", "")).split())
            retrieval = f"{hit['retrieval_score']:9.3f}  " if reranker else ""
            lines.append(f"{hit['rank']:>4}  {hit['score']:6.3f}  {retrieval}{hit['id']:<12.12}  "
                         f"{text[:100] + ('...' if len(text) > 100 else '')}")
    return lines


def _mine_negatives(args) -> list[str]:
    from kbert.semantic_search.corpus import read_corpus
    from kbert.semantic_search.negative_mining import mine_hard_negatives, write_mined
    from kbert.tasks.retrieval.pairs import read_pairs

    rows = read_pairs(args.data, query_column=_column(args.query_column), positive_column=_column(args.positive_column),
                      encoding=args.encoding)
    corpus = []
    if args.corpus:
        columns = _columns(args.corpus_text_column, "--corpus-text-column")
        corpus = [d.text for d in read_corpus(args.corpus, text_columns=columns, encoding=args.encoding)]
    mined, summary = mine_hard_negatives(args.model, rows, corpus=corpus, num_negatives=args.num_negatives,
                                         range_max=args.range_max, margin=args.margin,
                                         relative_margin=args.relative_margin or None, batch_size=args.batch_size,
                                         max_seq_length=args.max_length)
    write_mined(mined, args.output, args.pairs_output)
    return [json.dumps({"output": args.output, **summary})]


def _shard(args) -> list[str]:
    from kbert.data.sharding import write_shards

    written = write_shards(args.input, args.output, args.num_shards, format=args.format)
    return [json.dumps({"shards": [str(p) for p in written.shards], "rows": written.rows})]


def _serving_config(args) -> list[str]:
    from kbert.serving.server_config import BatchingParameters, write_serving_config

    given = _batching(args)
    summary = write_serving_config(args.output, args.bases, names=args.name, base_path_root=args.base_path_root,
                                   batching=BatchingParameters(**given) if args.batching else None)
    return [json.dumps(summary)]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

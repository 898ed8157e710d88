"""The ``kbert`` command line: ``train``, ``evaluate``, ``run``, ``predict``, ``info``, ``export``.

Every command reports bad input as one line ``kbert: error: ...`` on stderr with exit code 2
(never a traceback); results go to stdout as JSON (one object per line for ``predict``).

Example:
    $ kbert predict --model minilm --pooling mean "I love Paris"
    $ kbert info --model tests/fixtures/checkpoints/tiny-uncased-cls
    $ kbert export --model minilm --output saved_models/minilm
    $ kbert train --task text-classification --model minilm --train train.tsv --eval dev.tsv --output runs/x
    $ kbert run pipelines/demo_sentiment.toml
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kbert", description="Fine-tune and serve BERT encoders with Keras.")
    sub = parser.add_subparsers(dest="command", required=True)

    predict = sub.add_parser("predict", help="run a pipeline on texts; JSON lines out")
    predict.add_argument("texts", nargs="*", metavar="TEXT", help="texts to run (or use --input)")
    predict.add_argument("--model", default="minilm", help="checkpoint folder, 'minilm' (default) or hf://org/name")
    predict.add_argument("--task", help="task name (default: the task of the model's head, text- or "
                                        "token-classification, else feature-extraction)")
    predict.add_argument("--input", help="file with one text per line, or .jsonl with {'text', 'text_pair'} objects")
    predict.add_argument("--top-k", default=None, help="labels per input: a number, or 'all' (default: the best)")
    predict.add_argument("--pooling", default="mean", choices=["mean", "cls", "pooled", "none"],
                         help="feature-extraction: one vector per text (default mean) or 'none' for all tokens")
    predict.add_argument("--normalize", action="store_true", help="feature-extraction: L2-normalise vectors")
    predict.add_argument("--aggregation-strategy", default="simple",
                         choices=["none", "simple", "first", "average", "max"],
                         help="token-classification: how tokens are grouped into entities (default simple)")
    predict.add_argument("--stride", type=int, default=None,
                         help="token-classification: split long texts into windows sharing this many tokens")
    predict.add_argument("--batch-size", type=int, default=32)
    predict.add_argument("--max-length", type=int, default=None, help="truncate to this many tokens")

    info = sub.add_parser("info", help="describe a checkpoint as JSON")
    info.add_argument("--model", default="minilm")

    export = sub.add_parser("export", help="write a TF Serving SavedModel that takes raw strings")
    export.add_argument("--model", default="minilm")
    export.add_argument("--output", required=True, help="model base folder, e.g. saved_models/NAME")
    export.add_argument("--task", help="default: as for predict")
    export.add_argument("--pair", action="store_true", default=None, help="add a text_pair input")
    export.add_argument("--max-length", type=int, default=None)

    train = sub.add_parser("train", help="fine-tune a checkpoint; writes a Hugging Face checkpoint folder")
    train.add_argument("--task", default="text-classification",
                       help="text-classification (default), multi-label-classification, text-regression or "
                            "token-classification")
    train.add_argument("--model", default="minilm", help="starting checkpoint (default: the embedded MiniLM)")
    train.add_argument("--train", required=True, help="csv/tsv/jsonl file (FILE[start:stop] for a row range), "
                                                      "tfds:NAME[split], or for token-classification a "
                                                      "conll/conllu/jsonl file (FILE[start:stop] for sentences)")
    train.add_argument("--eval", help="evaluation data, same forms; scored after every epoch")
    train.add_argument("--output", required=True, help="run folder (re-run the same command to resume)")
    _data_flags(train)
    train.add_argument("--labels", help="comma-separated label names in id order (default: sorted data labels)")
    train.add_argument("--label-names", help="rename the data's labels: '0=entailment,1=not_entailment'")
    train.add_argument("--label-all-pieces", action="store_true",
                       help="token-classification: label every word piece (default: the first of each word)")
    train.add_argument("--stride", type=int, default=32,
                       help="token-classification: pieces shared by the windows of a sentence longer than "
                            "--max-length (default 32)")
    train.add_argument("--epochs", type=int, default=3)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--learning-rate", type=float, default=5e-5)
    train.add_argument("--warmup", type=float, default=0.1, help="fraction of steps (< 1) or number of steps")
    train.add_argument("--weight-decay", type=float, default=0.01)
    train.add_argument("--dropout", type=float, default=None)
    train.add_argument("--max-length", type=int, default=128)
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--freeze-backbone", action="store_true", help="train only the head")
    train.add_argument("--clip-norm", type=float, default=1.0, help="global gradient-norm clipping (0: off)")
    train.add_argument("--strategy", default="default", choices=["default", "mirrored"])
    train.add_argument("--early-stopping", type=int, default=None, metavar="PATIENCE")
    train.add_argument("--train-limit", type=int, default=None)
    train.add_argument("--eval-limit", type=int, default=None)
    train.add_argument("--download", action="store_true", help="allow TFDS to download the dataset")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    evaluate = sub.add_parser("evaluate", help="score a fine-tuned checkpoint on labelled data; one JSON object")
    evaluate.add_argument("--model", required=True)
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--task", default=None, help="default: the task the checkpoint was trained for")
    _data_flags(evaluate)
    evaluate.add_argument("--batch-size", type=int, default=32)
    evaluate.add_argument("--max-length", type=int, default=None,
                          help="default: the length the model was fine-tuned with, else the tokenizer's maximum")
    evaluate.add_argument("--download", action="store_true")

    run = sub.add_parser("run", help="run a TOML recipe: train, evaluate, export, predict through the export")
    run.add_argument("recipe")
    return parser


def _data_flags(parser) -> None:
    parser.add_argument("--format", choices=["csv", "tsv", "jsonl", "conll", "conllu"],
                        help="default: from the file extension")
    parser.add_argument("--tag-column", help="token-classification: CoNLL tag column index (default: the last), "
                                             "CoNLL-U 'upos' (default) or 'xpos'")
    parser.add_argument("--text-column", help="column name or 0-based index (default: text/sentence/...)")
    parser.add_argument("--text-pair-column")
    parser.add_argument("--label-column")


def _column(value):
    return int(value) if value is not None and value.isdigit() else value


def _label_names(value):
    from kbert.errors import InputError

    if value is None:
        return None
    pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
    if not pairs or any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise InputError(f"--label-names takes 'value=name,value=name', got {value!r}")
    return {k.strip(): v.strip() for k, v in pairs}


def _tag_column(value):
    return int(value) if value is not None and value.lstrip("-").isdigit() else value


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported
    args = _build_parser().parse_args(argv)
    from kbert.errors import KbertError
    from kbert.training.strategy import split_cpu_from_env

    try:
        split_cpu_from_env()  # KBERT_CPU_DEVICES: logical CPU devices for --strategy mirrored without GPUs
        commands = {"predict": _predict, "info": _info, "export": _export, "train": _train, "evaluate": _evaluate,
                    "run": _run}
        return commands[args.command](args)
    except KbertError as err:
        print(f"kbert: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kbert: interrupted", file=sys.stderr)
        return 130


def _predict(args) -> int:
    import kbert
    from kbert.checkpoint import load_checkpoint
    from kbert.errors import InputError
    from kbert.export import default_task
    from kbert.inputs import read_examples

    if bool(args.texts) == bool(args.input):
        raise InputError("give texts as arguments or --input FILE (exactly one of them)")
    examples = [{"text": t} for t in args.texts] if args.texts else read_examples(args.input)
    checkpoint = load_checkpoint(args.model)
    task = args.task or default_task(checkpoint)
    pipe = kbert.Pipeline(kbert.tasks.get_task(task)(checkpoint), batch_size=args.batch_size,
                          max_length=args.max_length)
    params = {}
    if pipe.task.name == "text-classification":
        if args.top_k is not None:
            params["top_k"] = None if args.top_k == "all" else _positive_int(args.top_k, "--top-k")
    elif pipe.task.name == "feature-extraction":
        params = {"pooling": None if args.pooling == "none" else args.pooling, "normalize": args.normalize}
    elif pipe.task.name == "token-classification":
        params = {"aggregation_strategy": args.aggregation_strategy, "stride": args.stride}
    inputs = [e if e.get("text_pair") is not None else e["text"] for e in examples]
    results = pipe(inputs, **params)
    for example, result in zip(examples, results):
        print(json.dumps({**example, "result": result}, ensure_ascii=False))
    return 0


def _info(args) -> int:
    from kbert.checkpoint import load_checkpoint
    from kbert.export import default_task

    ckpt = load_checkpoint(args.model)
    c, tok = ckpt.config, ckpt.tokenizer
    print(json.dumps({
        "path": str(ckpt.path), "model_type": "bert", "architectures": list(c.architectures),
        "default_task": default_task(ckpt), "labels": c.id2label, "problem_type": c.problem_type,
        "layers": c.num_hidden_layers, "hidden_size": c.hidden_size, "heads": c.num_attention_heads,
        "intermediate_size": c.intermediate_size, "hidden_act": c.hidden_act, "vocab_size": c.vocab_size,
        "max_length": tok.model_max_length, "lowercase": tok.normalizer.lowercase,
        "strip_accents": tok.normalizer.strip_accents, "has_pooler": ckpt.has_pooler,
        "heads_present": [h for h in ("classifier", "qa_outputs") if ckpt.head_tensors(h) is not None],
        "parameters": int(sum(t.size for t in ckpt.state_dict.values())),
    }, indent=2))
    return 0


def _export(args) -> int:
    from kbert.export import export_saved_model

    path = export_saved_model(args.model, args.output, task=args.task, text_pair=args.pair, max_length=args.max_length)
    print(json.dumps({"saved_model": str(path)}))
    return 0


def _train(args) -> int:
    from kbert.training.config import TrainConfig
    from kbert.training.trainer import train

    config = TrainConfig(
        train=args.train, eval=args.eval, output=args.output, task=args.task, model=args.model, format=args.format,
        text_column=_column(args.text_column), text_pair_column=_column(args.text_pair_column),
        label_column=_column(args.label_column), tag_column=_tag_column(args.tag_column),
        label_all_pieces=args.label_all_pieces, stride=args.stride, label_names=_label_names(args.label_names),
        labels=tuple(n.strip() for n in args.labels.split(",")) if args.labels else None,
        train_limit=args.train_limit, eval_limit=args.eval_limit, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, warmup=args.warmup, weight_decay=args.weight_decay, dropout=args.dropout,
        max_length=args.max_length, seed=args.seed, freeze_backbone=args.freeze_backbone,
        clip_norm=args.clip_norm or None, strategy=args.strategy, early_stopping=args.early_stopping,
        download=args.download, verbose=0 if args.quiet else 1)
    result = train(config)
    print(json.dumps({"checkpoint": str(result.output), "metrics": result.metrics}))
    return 0


def _evaluate(args) -> int:
    from kbert.training.evaluation import evaluate

    metrics = evaluate(args.model, args.data, task=args.task, format=args.format,
                       text_column=_column(args.text_column), text_pair_column=_column(args.text_pair_column),
                       label_column=_column(args.label_column), tag_column=_tag_column(args.tag_column),
                       batch_size=args.batch_size,
                       max_length=args.max_length, download=args.download)
    print(json.dumps(metrics))
    return 0


def _run(args) -> int:
    from kbert.recipes import run_recipe

    print(json.dumps(run_recipe(args.recipe), indent=2, ensure_ascii=False))
    return 0


def _positive_int(value: str, flag: str) -> int:
    from kbert.errors import InputError

    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise InputError(f"{flag} must be a positive integer or 'all', got {value!r}")
    return number


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The ``kbert`` command line: ``predict``, ``info``, ``export``, ``demo``.

Every command reports bad input as one line ``kbert: error: ...`` on stderr with exit code 2
(never a traceback); results go to stdout as JSON (one object per line for ``predict``).

Example:
    $ kbert predict --model minilm --pooling mean "I love Paris"
    $ kbert info --model tests/fixtures/checkpoints/tiny-uncased-cls
    $ kbert export --model minilm --output saved_models/minilm
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
    predict.add_argument("--task", help="task name (default: text-classification if the model has a classifier, "
                                        "else feature-extraction)")
    predict.add_argument("--input", help="file with one text per line, or .jsonl with {'text', 'text_pair'} objects")
    predict.add_argument("--top-k", default=None, help="labels per input: a number, or 'all' (default: the best)")
    predict.add_argument("--pooling", default="mean", choices=["mean", "cls", "pooled", "none"],
                         help="feature-extraction: one vector per text (default mean) or 'none' for all tokens")
    predict.add_argument("--normalize", action="store_true", help="feature-extraction: L2-normalise vectors")
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

    demo = sub.add_parser("demo", help="the README's main job: embed, classify, export, serve")
    demo.add_argument("--output", default="saved_models", help="where the demo exports (default saved_models)")
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported
    args = _build_parser().parse_args(argv)
    from kbert.errors import KbertError

    try:
        return {"predict": _predict, "info": _info, "export": _export, "demo": _demo}[args.command](args)
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


def _demo(args) -> int:
    from kbert.demo import run_demo

    return run_demo(args.output)


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

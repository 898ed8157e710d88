"""ONNX Runtime side of bench_bfloat16.py: a text classifier exported with torch.onnx, run in float32 and with
onnxruntime's dynamic int8 quantization (the fastest CPU path a user picks today).

Run by the reference interpreter (.venv-ref: torch, transformers, onnx, onnxruntime) in its own process. Reads
{"model", "texts", "batch_size", "onnx_dir", "rounds"} as JSON on stdin; optional "threads" (ONNX Runtime's
intra-op threads, default its own). Writes ``onnx_dir/model.onnx`` and ``model-int8.onnx`` once (reused after).
Each variant tokenizes with the checkpoint's fast tokenizer, sorts by length and pads each batch to its longest
row (as kbert does: the strongest ONNX Runtime baseline), runs the session and takes the softmax. A warm-up call on
the first 64 texts, then ``rounds`` timed calls alternating float32, int8, float32, int8 ... Prints
{"fp32": {"seconds": [...], "labels", "scores"}, "int8": {...}, "onnxruntime": version} as JSON.
"""

import json
import os
import pathlib
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402


def export(model_dir: str, onnx_dir: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    fp32, int8 = onnx_dir / "model.onnx", onnx_dir / "model-int8.onnx"
    if not fp32.is_file():
        onnx_dir.mkdir(parents=True, exist_ok=True)
        model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
        names = ["input_ids", "attention_mask", "token_type_ids"]
        dummy = tuple(torch.ones((2, 8), dtype=torch.long) for _ in names)
        partial = fp32.with_suffix(".partial.onnx")
        torch.onnx.export(model, dummy, str(partial), input_names=names, output_names=["logits"], opset_version=17,
                          dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names}, "logits": {0: "batch"}},
                          dynamo=False)
        partial.rename(fp32)
    if not int8.is_file():
        partial = int8.with_suffix(".partial.onnx")
        quantize_dynamic(str(fp32), str(partial), weight_type=QuantType.QInt8)
        partial.rename(int8)
    return fp32, int8


def classify(session, tokenizer, texts, batch_size, id2label):
    """Labels and top scores of ``texts``, in input order (length-sorted batches padded to their longest row)."""
    encoded = tokenizer(texts, truncation=True, max_length=tokenizer.model_max_length)["input_ids"]
    order = np.argsort([-len(ids) for ids in encoded], kind="stable")
    labels, scores = [None] * len(texts), [None] * len(texts)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        length = max(len(encoded[r]) for r in rows)
        ids = np.full((len(rows), length), tokenizer.pad_token_id, np.int64)
        mask = np.zeros((len(rows), length), np.int64)
        for b, r in enumerate(rows):
            ids[b, :len(encoded[r])], mask[b, :len(encoded[r])] = encoded[r], 1
        [logits] = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        for b, r in enumerate(rows):
            labels[r], scores[r] = id2label[int(probs[b].argmax())], float(probs[b].max())
    return labels, scores


def main():
    request = json.load(sys.stdin)
    fp32, int8 = export(request["model"], pathlib.Path(request["onnx_dir"]))
    tokenizer = AutoTokenizer.from_pretrained(request["model"])
    id2label = json.loads((pathlib.Path(request["model"]) / "config.json").read_text())["id2label"]
    id2label = {int(k): v for k, v in id2label.items()}
    options = ort.SessionOptions()
    if request.get("threads"):
        options.intra_op_num_threads = int(request["threads"])
    sessions = {name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                for name, path in (("fp32", fp32), ("int8", int8))}
    texts, batch_size = request["texts"], request["batch_size"]
    results = {name: {"seconds": []} for name in sessions}
    for name, session in sessions.items():
        classify(session, tokenizer, texts[:64], batch_size, id2label)  # warm-up
    for _ in range(request.get("rounds", 1)):
        for name, session in sessions.items():
            start = time.perf_counter()
            labels, scores = classify(session, tokenizer, texts, batch_size, id2label)
            results[name]["seconds"].append(time.perf_counter() - start)
            results[name].update(labels=labels, scores=scores)
    print(json.dumps({**results, "onnxruntime": ort.__version__, "torch": torch.__version__}))


if __name__ == "__main__":
    main()

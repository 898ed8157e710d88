"""Load test of an export behind TF Serving's gRPC (or REST) API, through kbert.serving.Client.

Exports a checkpoint (or takes an export), serves it with :class:`kbert.serving.local_server.LocalModelServer`
(the official gRPC servicers of tensorflow_serving.apis over tf.saved_model.load, in THIS process: no
``tensorflow_model_server`` binary can be installed here, so the numbers are those of that stand-in, not of TF
Serving's C++ server), replays the export's warmup requests as TF Serving would, then sends N single-input
requests (default 1,000) of mixed kinds -- empty string, one word, a short sentence, a sentence, 512+ tokens,
non-Latin scripts, emoji, mixed scripts; pairs when the export takes pairs -- from C threads (default 8). Every
answer is checked against ``kbert.pipeline`` on the same inputs (labels equal and scores within 1e-5;
embeddings within 1e-5). Prints latency p50/p99 overall and per kind, the short sentence's p50 under load and
alone (50 sequential requests), and the request rate; exits 1 on any mismatch.

    .venv/bin/python benchmarks/load_test_serving.py                       # tiny fixture classifier
    .venv/bin/python benchmarks/load_test_serving.py --minilm-classifier   # MiniLM + the sentiment head
    .venv/bin/python benchmarks/load_test_serving.py --model minilm --task sentence-embedding
    .venv/bin/python benchmarks/load_test_serving.py --saved-model saved_models/x --model CKPT [--protocol rest]

Client and server share the process (and its GIL) and the machine's cores: on a 2-core machine the
client threads compete with the model for CPU, so latencies include that queueing.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHORT = "I love Paris"
LONG = " ".join(["The quick brown fox jumps over the lazy dog near the river bank."] * 50)  # ~650 tokens
KINDS = {
    "empty": ["", " "],
    "one-word": ["Paris", "wonderful", "no"],
    "short": [SHORT],
    "sentence": ["The movie was not good, but the actors were great and the music was lovely.",
                 "Worst hotel I have ever stayed in, the room was filthy and the staff rude."],
    "long-512+": [LONG, "Ok. " + LONG],
    "non-latin": ["Привет, как дела? Это был отличный фильм.", "北京欢迎你，今天天气很好。", "مرحبا بالعالم",
                  "नमस्ते दुनिया, यह एक अच्छी फिल्म थी"],
    "emoji": ["😀🎉👍", "Best day ever 😀🎉 with friends ❤️"],
    "mixed": ["Café déjà vu, 東京 and Zürich 🚆 trip", "naïve résumé façade ﬁancé"],
}


def mixed_inputs(n: int, pairs: bool) -> list[tuple[str, str, str | None]]:
    """``(kind, text, text_pair)`` rows cycling through the kinds (pairs: each text with a short second text)."""
    rows, kinds = [], list(KINDS)
    for i in range(n):
        kind = kinds[i % len(kinds)]
        texts = KINDS[kind]
        text = texts[(i // len(kinds)) % len(texts)]
        rows.append((kind, text, ("Someone is there." if i % 2 else text) if pairs else None))
    return rows


def percentile(values, q):
    return float(np.percentile(np.asarray(values) * 1000, q))


def main() -> int:
    work = pathlib.Path(tempfile.mkdtemp(prefix="kbert-load-"))
    try:
        return run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: pathlib.Path) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "tests" / "fixtures" / "checkpoints" / "tiny-uncased-cls"),
                        help="checkpoint to export and to check against (default: the tiny fixture classifier)")
    parser.add_argument("--minilm-classifier", action="store_true",
                        help="MiniLM + the 3-label sentiment head fixture (benchmarks/common.py)")
    parser.add_argument("--task", default=None)
    parser.add_argument("--pair", action="store_true", default=None, help="export with a text_pair input")
    parser.add_argument("--saved-model", help="an existing export's base folder (default: export to a temp dir)")
    parser.add_argument("--protocol", choices=["grpc", "rest"], default="grpc")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    import kbert
    from kbert.export import export_saved_model
    from kbert.serving import Client, LocalModelServer
    from kbert.serving.client import read_export_metadata
    from kbert.serving.server_config import model_versions

    model = args.model
    if args.minilm_classifier:
        from benchmarks.common import minilm_classifier

        model = str(minilm_classifier(work / "minilm-sentiment"))
    started = time.perf_counter()
    if args.saved_model:
        base = pathlib.Path(args.saved_model)
    else:
        base = export_saved_model(model, work / "saved_models" / "model", task=args.task, text_pair=args.pair).parent
    export_s = time.perf_counter() - started
    metadata = read_export_metadata(base)
    pairs = bool(metadata.get("text_pair"))
    rows = mixed_inputs(args.requests, pairs)

    pipe = kbert.pipeline(metadata["task"], model=model)
    started = time.perf_counter()
    want = pipe([{"text": t, "text_pair": p} if pairs else t for _, t, p in rows])
    pipeline_s = time.perf_counter() - started

    with LocalModelServer({"model": base}, rest=args.protocol == "rest", grpc=args.protocol == "grpc",
                          max_workers=args.concurrency) as server:
        address = server.grpc_target if args.protocol == "grpc" else server.rest_url
        client = Client(address, "model", protocol=args.protocol, saved_model=base, timeout=120)
        warmup_s = replay_warmup(client, base / str(model_versions(base)[-1]))

        def ask(row):
            kind, text, pair = row
            t0 = time.perf_counter()
            answer = client.answers([text], None if pair is None else [pair])[0]
            return kind, time.perf_counter() - t0, answer

        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(ask, rows))
        wall = time.perf_counter() - started
        alone = []
        for _ in range(50):
            t0 = time.perf_counter()
            client.answers([SHORT], ["Someone is there."] if pairs else None)
            alone.append(time.perf_counter() - t0)
        client.close()

    mismatches = [(i, rows[i][1][:40], got, ref) for i, ((_, _, got), ref) in enumerate(zip(results, want))
                  if not same_answer(got, ref)]
    latencies = [r[1] for r in results]
    by_kind = {k: [r[1] for r in results if r[0] == k] for k in KINDS}
    report = {
        "model": str(model), "task": metadata["task"], "pairs": pairs, "protocol": args.protocol,
        "server": "kbert.serving.local_server (in-process TF servicers; not the TF Serving binary)",
        "requests": len(rows), "concurrency": args.concurrency, "max_length": metadata.get("max_length"),
        "export_s": round(export_s, 1), "warmup_replay_s": round(warmup_s, 2), "pipeline_reference_s": round(pipeline_s, 1),
        "wall_s": round(wall, 2), "requests_per_s": round(len(rows) / wall, 1),
        "p50_ms": round(percentile(latencies, 50), 1), "p99_ms": round(percentile(latencies, 99), 1),
        "short_sentence_p50_ms_under_load": round(percentile(by_kind["short"], 50), 1),
        "short_sentence_p50_ms_alone": round(percentile(alone, 50), 1),
        "p50_ms_by_kind": {k: round(percentile(v, 50), 1) for k, v in by_kind.items()},
        "mismatches": len(mismatches),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    for mismatch in mismatches[:5]:
        print("mismatch:", mismatch, file=sys.stderr)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 1 if mismatches else 0


def replay_warmup(client, version_dir: pathlib.Path) -> float:
    """Send the export's warmup requests (as TF Serving replays them at load); their total seconds."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    from kbert.serving.warmup import WARMUP_FILE

    started = time.perf_counter()
    for record in tf.data.TFRecordDataset(str(version_dir / WARMUP_FILE)):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        if request.model_spec.signature_name == client.signature_name:
            client.predict({k: [s.decode() for s in tf.make_ndarray(v).tolist()] for k, v in request.inputs.items()})
    return time.perf_counter() - started


def same_answer(got: dict, want) -> bool:
    """A served answer (``answers_from_serving``) against the pipeline's result for the same input."""
    if isinstance(want, list) and want and isinstance(want[0], dict):  # text classification: [best] for top_k=1
        want = want[0]
    if isinstance(want, dict) and "label" in want:
        return got["label"] == want["label"] and abs(got["score"] - want["score"]) <= 1e-5
    if "embedding" in got:
        return np.allclose(np.asarray(got["embedding"]), np.asarray(want), atol=1e-5)
    raise SystemExit(f"load_test_serving.py compares classifiers and embeddings only, got {got!r:.100}")


if __name__ == "__main__":
    sys.exit(main())

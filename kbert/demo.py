"""The README's main job, ``kbert demo``: embed → search → classify → export → serve in bare TensorFlow.

Runs offline on the embedded all-MiniLM-L6-v2 and on the small checked-in test classifier.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLASSIFIER = ROOT / "tests" / "fixtures" / "checkpoints" / "tiny-uncased-cls"
CORPUS = [
    "The stock market fell sharply after the announcement.",
    "A cat is sleeping on the sofa.",
    "The team won the championship last night.",
    "Investors worry about rising interest rates.",
    "My kitten loves to nap in the sun.",
]
QUERIES = ["Shares dropped on Wall Street.", "Where do cats like to sleep?"]

# What TF Serving does, minus the server: load the SavedModel with no kbert and no Keras code.
_SERVE = """
import json, sys
import tensorflow as tf, tensorflow_text  # noqa: F401
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = fn(text=tf.constant(json.loads(sys.argv[2])))
print(json.dumps(out["normalized_embedding"].numpy().tolist()))
"""


def run_demo(output: str | pathlib.Path = "saved_models") -> int:
    import kbert
    from kbert.export import export_saved_model

    started = time.perf_counter()
    print("1. Embeddings with the embedded default (all-MiniLM-L6-v2), mean pooling + L2 norm")
    embed = kbert.pipeline("feature-extraction")
    corpus = np.asarray(embed(CORPUS, pooling="mean", normalize=True))
    for query in QUERIES:
        q = np.asarray(embed(query, pooling="mean", normalize=True))
        best = int(np.argmax(corpus @ q))
        print(f"   {query!r:40} -> {CORPUS[best]!r} (cosine {float(corpus[best] @ q):.3f})")
    tokens = embed("I love Paris")
    print(f"   HF-shaped features of 'I love Paris': {len(tokens)} x {len(tokens[0])} x {len(tokens[0][0])}")

    print(f"2. Text classification with a checkpoint folder ({CLASSIFIER.name}: a tiny test model with")
    print("   random weights, so the labels are arbitrary: fine-tuning is the next milestone)")
    classify = kbert.pipeline("text-classification", model=CLASSIFIER)
    for text, result in zip(CORPUS[:2], classify(CORPUS[:2])):
        print(f"   {text!r:58} {result}")

    print(f"3. Export SavedModels (raw strings in, tokenizer in the graph) under {output}/")
    embedder_dir = export_saved_model("minilm", pathlib.Path(output) / "minilm")
    classifier_dir = export_saved_model(CLASSIFIER, pathlib.Path(output) / "tiny-classifier")
    print(f"   {embedder_dir}\n   {classifier_dir}")

    print("4. Query the exported embedder in a fresh process that imports only tensorflow + tensorflow_text")
    served = subprocess.run([sys.executable, "-c", _SERVE, str(embedder_dir), json.dumps(QUERIES)],
                            capture_output=True, text=True, check=True)
    vectors = np.asarray(json.loads(served.stdout.strip().splitlines()[-1]))
    direct = np.asarray(embed(QUERIES, pooling="mean", normalize=True))
    print(f"   served == pipeline: max abs difference {np.abs(vectors - direct).max():.2e}")
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0

"""ModernBERT-base-sized models (random weights): kbert's Keras model vs transformers' PyTorch model (sdpa attention).

Same shapes on both sides (22 layers, hidden 768, 12 heads, GeGLU 1152, global attention every 3rd layer, local
window 128, a 2-label sequence head), token ids drawn at random: inference on short texts (batch 32 x 128 tokens),
2,048 and 8,192 tokens (batch 1), and training steps on short texts (batch 16 x 128, AdamW). Each side runs in its
own process (TensorFlow and torch never share one), interleaved A, B, A, B; medians of the timed calls after a
warm-up. ``--layers`` cuts the depth (the 8,192-token row on a small CPU), the rest stays base-sized.

    .venv/bin/python benchmarks/bench_modernbert.py [--cases short,2k,8k,train] [--rounds 2] [--layers 22]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's kbert
REFERENCE_PYTHON = ROOT / ".venv-ref" / "bin" / "python"
CASES = {"short": (32, 128), "2k": (1, 2048), "8k": (1, 8192), "train": (16, 128)}
BASE = dict(vocab_size=50368, hidden_size=768, intermediate_size=1152, num_hidden_layers=22, num_attention_heads=12,
            global_attn_every_n_layers=3, local_attention=128, max_position_embeddings=8192, num_labels=2)


def ids(batch, length):
    import numpy as np

    return np.random.default_rng(0).integers(0, 50000, size=(batch, length)).astype("int64")


def time_calls(step, repeats):
    step()  # warm-up (tracing, allocation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def run_torch(case, layers, repeats):
    import torch
    from transformers import ModernBertConfig, ModernBertForSequenceClassification

    torch.manual_seed(0)
    model = ModernBertForSequenceClassification(ModernBertConfig(**{**BASE, "num_hidden_layers": layers},
                                                                 attn_implementation="sdpa", reference_compile=False))
    batch, length = CASES[case]
    x = torch.tensor(ids(batch, length))
    mask = torch.ones_like(x)
    if case == "train":
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
        labels = torch.zeros(batch, dtype=torch.long)

        def step():
            optimizer.zero_grad()
            model(input_ids=x, attention_mask=mask, labels=labels).loss.backward()
            optimizer.step()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                model(input_ids=x, attention_mask=mask)
    return time_calls(step, repeats)


def run_kbert(case, layers, repeats):
    import keras
    import numpy as np
    import tensorflow as tf

    from kbert.checkpoint.config import EncoderConfig

    keras.utils.set_random_seed(0)
    config = EncoderConfig.from_dict({"model_type": "modernbert", **{**BASE, "num_hidden_layers": layers}})
    backbone = config.family.build_backbone(config, use_pooler=False)
    logits = keras.layers.Dense(2)(keras.layers.Dense(768, activation="gelu")(
        backbone(backbone.input)["sequence_output"][:, 0]))
    model = keras.Model(backbone.input, logits)
    batch, length = CASES[case]
    x = ids(batch, length).astype("int32")
    inputs = {"token_ids": x, "segment_ids": np.zeros_like(x), "padding_mask": np.ones_like(x)}
    if case == "train":
        model.compile(optimizer=keras.optimizers.AdamW(1e-5),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        labels = np.zeros((batch,), "int32")

        def step():
            model.train_on_batch(inputs, labels)
    else:
        spec = {k: tf.TensorSpec((None, None), tf.int32) for k in inputs}
        forward = tf.function(lambda d: model(d, training=False), input_signature=[spec])
        tensors = {k: tf.constant(v) for k, v in inputs.items()}

        def step():
            forward(tensors).numpy()
    return time_calls(step, repeats)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", default="short,2k,8k,train")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", type=int, default=22)
    parser.add_argument("--child", choices=["kbert", "torch"])
    args = parser.parse_args()
    if args.child:
        for case in args.cases.split(","):
            seconds = (run_kbert if args.child == "kbert" else run_torch)(case, args.layers, args.repeats)
            print(json.dumps({"case": case, "seconds": seconds}), flush=True)
        return 0
    results = {}
    for case in args.cases.split(","):
        for _ in range(args.rounds):
            for side, python in (("kbert", sys.executable), ("torch", REFERENCE_PYTHON)):
                done = subprocess.run([str(python), __file__, "--child", side, "--cases", case, "--layers",
                                       str(args.layers), "--repeats", str(args.repeats)], capture_output=True,
                                      text=True, cwd=ROOT)
                if done.returncode:
                    sys.exit(done.stderr[-3000:])
                results.setdefault(case, {}).setdefault(side, []).append(json.loads(done.stdout.splitlines()[-1])["seconds"])
        batch, length = CASES[case]
        rates = {side: batch / min(times) for side, times in results[case].items()}
        print(f"{case:>5} ({batch} x {length}, {args.layers} layers): kbert {rates['kbert']:.2f} ex/s, "
              f"transformers {rates['torch']:.2f} ex/s, kbert/transformers {rates['kbert'] / rates['torch']:.2f}x",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reference side of bench_inference.py: the transformers PyTorch text-classification pipeline.

Run by the reference interpreter (.venv-ref) in its own process (torch and TensorFlow cannot share
one here). Reads {"model", "texts", "batch_size"} as JSON on stdin, prints timings and labels as JSON.
"""

import json
import os
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"
import torch  # noqa: E402
from transformers import pipeline  # noqa: E402

request = json.load(sys.stdin)
pipe = pipeline("text-classification", model=request["model"], device="cpu")
texts, batch_size = request["texts"], request["batch_size"]
with torch.inference_mode():
    pipe(texts[:64], batch_size=batch_size)  # warm-up
    start = time.perf_counter()
    out = pipe(texts, batch_size=batch_size)
    seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "labels": [o["label"] for o in out], "scores": [o["score"] for o in out],
                  "threads": torch.get_num_threads(), "torch": torch.__version__}))

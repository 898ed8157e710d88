"""Reference side of bench_inference.py, bench_cold_inference.py and bench_qa_inference.py: the transformers PyTorch pipeline.

Run by the reference interpreter (.venv-ref) in its own process (torch and TensorFlow cannot share
one here). Reads {"model", "texts", "batch_size"} as JSON on stdin (with "task": "question-answering",
"questions"/"contexts" and "warmup_questions"/"warmup_contexts" instead of texts), and optionally "warmup_texts"
(default: the first 64 texts) and "threads" (torch threads; default torch's). Prints timings and
labels as JSON. Timings: "seconds" (the call on all texts, after the warm-up call), "import_seconds"
(torch + transformers), "build_seconds" (pipeline()), "warmup_seconds", and the wall-clock times
(time.time()) "started" (first line of this script), "first_result" (end of the warm-up call) and
"done" (end of the timed call).
"""

import json
import os
import sys
import time

started = time.time()
os.environ["HF_HUB_OFFLINE"] = "1"
import torch  # noqa: E402
from transformers import pipeline  # noqa: E402

imported = time.time()
request = json.load(sys.stdin)
if request.get("threads"):
    torch.set_num_threads(int(request["threads"]))
batch_size = request["batch_size"]
task = request.get("task", "text-classification")
if task == "question-answering":  # {"questions", "contexts", "warmup_questions", "warmup_contexts"}
    timed = {"question": request["questions"], "context": request["contexts"]}
    warmup = {"question": request["warmup_questions"], "context": request["warmup_contexts"]}
else:
    timed = {"inputs": request["texts"]}
    warmup = {"inputs": request.get("warmup_texts") or request["texts"][:64]}
build_start = time.perf_counter()
pipe = pipeline(task, model=request["model"], device="cpu")
build_seconds = time.perf_counter() - build_start
with torch.inference_mode():
    start = time.perf_counter()
    pipe(**warmup, batch_size=batch_size)
    warmup_seconds = time.perf_counter() - start
    first_result = time.time()
    start = time.perf_counter()
    out = pipe(**timed, batch_size=batch_size)
    seconds = time.perf_counter() - start
    done = time.time()
outputs = ({"answers": out if isinstance(out, list) else [out]} if task == "question-answering"
           else {"labels": [o["label"] for o in out], "scores": [o["score"] for o in out]})
print(json.dumps({"seconds": seconds, **outputs, "threads": torch.get_num_threads(), "torch": torch.__version__,
                  "import_seconds": imported - started, "build_seconds": build_seconds,
                  "warmup_seconds": warmup_seconds, "started": started, "first_result": first_result,
                  "done": done}))

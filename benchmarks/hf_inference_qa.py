"""Reference side of bench_qa_inference.py: transformers 4.57's question-answering pipeline (PyTorch).

Run by .venv-ref in its own process. Reads {"model", "questions", "contexts", "warmup_questions",
"warmup_contexts", "batch_size", "threads"?} as JSON on stdin; prints one JSON line: the answers of the
timed call and "seconds" (the timed call, after the warm-up call), "import_seconds", "build_seconds",
"warmup_seconds", and wall-clock times "started", "first_result", "done" (time.time()).
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
build_start = time.perf_counter()
pipe = pipeline("question-answering", model=request["model"], device="cpu")
build_seconds = time.perf_counter() - build_start
batch_size = request["batch_size"]
with torch.inference_mode():
    start = time.perf_counter()
    pipe(question=request["warmup_questions"], context=request["warmup_contexts"], batch_size=batch_size)
    warmup_seconds = time.perf_counter() - start
    first_result = time.time()
    start = time.perf_counter()
    out = pipe(question=request["questions"], context=request["contexts"], batch_size=batch_size)
    seconds = time.perf_counter() - start
    done = time.time()
out = out if isinstance(out, list) else [out]
print(json.dumps({"seconds": seconds, "answers": out, "threads": torch.get_num_threads(), "torch": torch.__version__,
                  "import_seconds": imported - started, "build_seconds": build_seconds,
                  "warmup_seconds": warmup_seconds, "started": started, "first_result": first_result,
                  "done": done}))

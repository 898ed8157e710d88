"""Reference side of the token-classification inference benchmark: the transformers PyTorch pipeline.

Run by the reference interpreter (.venv-ref) in its own process (torch and TensorFlow cannot share
one here). Reads one JSON request on stdin:

    {"model": folder,                      # a token-classification checkpoint (config with id2label)
     "texts": [...],                       # optional; default: the first "n" sentences of the eval file,
     "n": 1009,                            #   words joined with single spaces
     "data_dir": null, "eval_file": "emerging.dev.conll",   # as in hf_train_token.py
     "batch_size": 32, "aggregation_strategy": "simple", "repeats": 1, "threads": null}

Runs pipeline("token-classification", model=folder, aggregation_strategy=..., device=-1) the way
hf_inference.py runs the text-classification one: one warm-up call on the first 64 texts, then the
timed call(s) on all texts under torch.inference_mode(). "seconds" is the fastest of "repeats" timed
calls (all are in "repeat_seconds"); "examples_per_second" = texts / seconds. Prints one JSON line on
stdout (timings and, per text, the pipeline's entities) and a one-line banner on stderr.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from conll import default_data_dir, read_conll  # noqa: E402
from transformers import pipeline  # noqa: E402


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def eval_texts(request) -> list[str]:
    """The first n sentences of the CoNLL eval file, words joined with spaces."""
    data = pathlib.Path(request.get("data_dir") or default_data_dir())
    sentences = read_conll(data / request.get("eval_file", "emerging.dev.conll"), request.get("n"))
    return [" ".join(words) for words, _ in sentences]


def plain(value):
    """numpy scalars (scores, indices) as JSON numbers."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def main() -> None:
    request = json.load(sys.stdin)
    torch.set_num_threads(int(request.get("threads") or usable_cores()))
    transformers.logging.set_verbosity_error()
    texts = request.get("texts") or eval_texts(request)
    batch_size = int(request.get("batch_size", 32))
    strategy = request.get("aggregation_strategy", "simple")
    repeats = int(request.get("repeats", 1))
    print(f"hf_inference_token: torch {torch.__version__}, transformers {transformers.__version__}, "
          f"torch threads = {torch.get_num_threads()}", file=sys.stderr)

    pipe = pipeline("token-classification", model=request["model"], aggregation_strategy=strategy, device=-1)
    times = []
    with torch.inference_mode():
        pipe(texts[:64], batch_size=batch_size)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            out = pipe(texts, batch_size=batch_size)
            times.append(time.perf_counter() - start)
    seconds = min(times)
    print(json.dumps({
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "model": request["model"],
        "aggregation_strategy": strategy,
        "batch_size": batch_size,
        "texts": len(texts),
        "repeats": repeats,
        "seconds": seconds,
        "repeat_seconds": times,
        "examples_per_second": len(texts) / seconds,
        "entities": [[{k: plain(v) for k, v in entity.items()} for entity in entities] for entities in out],
    }))


if __name__ == "__main__":
    main()

"""Reference side of the training benchmark: Hugging Face `Trainer` fine-tuning on PyTorch (CPU).

Run by the reference interpreter (.venv-ref: torch + transformers + accelerate) in its own process
(torch and TensorFlow cannot share one here). Reads one JSON request on stdin:

    {"model": folder, "train": [[text, label_id], ...], "eval": [[text, label_id], ...],
     "num_labels": 2, "epochs": 1, "batch_size": 32, "learning_rate": 5e-5, "warmup_ratio": 0.1,
     "weight_decay": 0.01, "max_length": 128, "seed": 42}

optional: "warmup_steps_excluded" (default 5), "threads" (default: the cores this process may use),
"optim" (default: Trainer's own default, "adamw_torch_fused" with torch >= 2.8).

Fine-tunes AutoModelForSequenceClassification (the folder's encoder, a new randomly initialised head)
with Trainer's AdamW and linear schedule with warm-up, batches padded per batch by
DataCollatorWithPadding, fp32, then measures accuracy on "eval". Prints one JSON line on stdout.

How time is measured (see benchmarks/TRAINING_NOTES.md):
- "train_seconds": wall time of trainer.train() as seen from outside (time.perf_counter).
- "steady_examples_per_second": a TrainerCallback stamps perf_counter at every on_step_end; the rate is
  (examples in steps k+1..N) / (t_end[N] - t_end[k]) with k = warmup_steps_excluded (t_end[0] = the
  on_train_begin stamp), so exactly the first k optimizer steps are left out. Between two
  step ends lie everything the loop does for one step: fetching and collating the batch, forward,
  backward, gradient clipping, optimizer and scheduler steps. The exact examples and padded lengths of
  each step are recorded by a wrapper around the collator (dataloader_num_workers=0, so the i-th
  collate call during training is the i-th step's batch).
- Trainer's own "train_runtime"/"train_samples_per_second" are reported as they are: they start
  after the model, optimizer and scheduler are set up and include the first (slow) steps.
The Trainer run and its clock live in hf_common.py, shared with hf_train_token.py.
"""

from __future__ import annotations

import json
import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the tokenizer runs before training only

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from hf_common import ListDataset, setup, timed_trainer_run  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    set_seed,
)


def encode(tokenizer, rows, max_length):
    texts = [str(text) for text, _ in rows]
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    return ListDataset([  # the tokenizer's own inputs: DistilBERT's has no token_type_ids
        {**{key: enc[key][i] for key in tokenizer.model_input_names}, "labels": int(label)}
        for i, (_, label) in enumerate(rows)
    ])


def main() -> None:
    request = json.load(sys.stdin)
    setup(request, "hf_train")
    excluded = int(request.get("warmup_steps_excluded", 5))
    seed = int(request.get("seed", 42))

    tokenizer = AutoTokenizer.from_pretrained(request["model"])
    train_set = encode(tokenizer, request["train"], request["max_length"])
    eval_set = encode(tokenizer, request["eval"], request["max_length"])

    set_seed(seed)  # the new head's initial weights
    model = AutoModelForSequenceClassification.from_pretrained(request["model"], num_labels=request["num_labels"])
    settings, timing, prediction, eval_seconds = timed_trainer_run(
        model, DataCollatorWithPadding(tokenizer), train_set, eval_set, seed=seed, epochs=request["epochs"],
        batch_size=request["batch_size"], learning_rate=request["learning_rate"],
        warmup_ratio=request["warmup_ratio"], weight_decay=request["weight_decay"], optim=request.get("optim"),
        excluded=excluded, prefix="hf_train_")

    accuracy = float((np.argmax(prediction.predictions, axis=-1) == prediction.label_ids).mean())
    print(json.dumps({
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        **settings,
        "train_examples": len(train_set),
        "eval_examples": len(eval_set),
        **timing,
        "eval_accuracy": accuracy,
        "eval_seconds": eval_seconds,
    }))


if __name__ == "__main__":
    main()

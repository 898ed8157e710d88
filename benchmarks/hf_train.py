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
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the tokenizer runs before training only

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class RecordingCollator:
    """DataCollatorWithPadding that remembers (examples, padded length) of each training batch."""

    def __init__(self, tokenizer):
        self.inner = DataCollatorWithPadding(tokenizer)
        self.training = False
        self.batches: list[tuple[int, int]] = []

    def __call__(self, features):
        batch = self.inner(features)
        if self.training:
            self.batches.append(tuple(batch["input_ids"].shape))
        return batch


class StepClock(TrainerCallback):
    def __init__(self, collator: RecordingCollator):
        self.collator = collator
        self.step_ends: list[float] = []
        self.train_begin = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.collator.training = True
        self.train_begin = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.step_ends.append(time.perf_counter())

    def on_train_end(self, args, state, control, **kwargs):
        self.collator.training = False


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def encode(tokenizer, rows, max_length):
    texts = [str(text) for text, _ in rows]
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    return ListDataset([
        {"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i],
         "attention_mask": enc["attention_mask"][i], "labels": int(label)}
        for i, (_, label) in enumerate(rows)
    ])


def main() -> None:
    request = json.load(sys.stdin)
    threads = int(request.get("threads") or usable_cores())
    torch.set_num_threads(threads)
    excluded = int(request.get("warmup_steps_excluded", 5))
    seed = int(request.get("seed", 42))
    transformers.logging.set_verbosity_error()  # the "newly initialized" head warning is expected
    print(f"hf_train: torch {torch.__version__}, transformers {transformers.__version__}, "
          f"torch threads = {torch.get_num_threads()}", file=sys.stderr)

    tokenizer = AutoTokenizer.from_pretrained(request["model"])
    train_set = encode(tokenizer, request["train"], request["max_length"])
    eval_set = encode(tokenizer, request["eval"], request["max_length"])

    set_seed(seed)  # the new head's initial weights
    model = AutoModelForSequenceClassification.from_pretrained(request["model"], num_labels=request["num_labels"])
    collator = RecordingCollator(tokenizer)
    clock = StepClock(collator)

    with tempfile.TemporaryDirectory(prefix="hf_train_") as out_dir:
        extra = {"optim": request["optim"]} if request.get("optim") else {}
        args = TrainingArguments(
            output_dir=out_dir,
            num_train_epochs=request["epochs"],
            per_device_train_batch_size=request["batch_size"],
            per_device_eval_batch_size=request["batch_size"],
            learning_rate=request["learning_rate"],
            warmup_ratio=request["warmup_ratio"],
            weight_decay=request["weight_decay"],
            lr_scheduler_type="linear",
            seed=seed,
            fp16=False,
            bf16=False,
            use_cpu=True,
            dataloader_num_workers=0,
            dataloader_pin_memory=False,
            report_to=[],
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            **extra,
        )
        trainer = Trainer(model=model, args=args, train_dataset=train_set, data_collator=collator,
                          callbacks=[clock])
        # With disable_tqdm=True Trainer swaps its progress bar for PrinterCallback, which print()s the
        # final metrics dict to stdout even with logging_strategy="no"; stdout is reserved for our JSON.
        trainer.remove_callback(PrinterCallback)
        start = time.perf_counter()
        result = trainer.train()
        train_seconds = time.perf_counter() - start

        start = time.perf_counter()
        prediction = trainer.predict(eval_set)
        eval_seconds = time.perf_counter() - start

    accuracy = float((np.argmax(prediction.predictions, axis=-1) == prediction.label_ids).mean())
    steps = len(clock.step_ends)
    sizes = [n for n, _ in collator.batches]
    assert len(sizes) == steps, (len(sizes), steps)  # gradient_accumulation_steps == 1
    steady = None
    if steps > excluded:
        # Steps excluded+1..N: from the end of step `excluded` (or the start of training) to the last end.
        span = clock.step_ends[-1] - ([clock.train_begin] + clock.step_ends)[excluded]
        examples = sum(sizes[excluded:])
        tokens = sum(n * length for n, length in collator.batches[excluded:])
        steady = {"steps": steps - excluded, "examples": examples, "seconds": span,
                  "examples_per_second": examples / span, "padded_tokens_per_second": tokens / span}
    all_examples = sum(sizes)
    loop_seconds = clock.step_ends[-1] - clock.train_begin if steps else None

    print(json.dumps({
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "optim": str(args.optim.value if hasattr(args.optim, "value") else args.optim),
        "max_grad_norm": args.max_grad_norm,
        "train_examples": len(train_set),
        "eval_examples": len(eval_set),
        "steps": steps,
        "warmup_steps_excluded": excluded,
        "train_seconds": train_seconds,
        "loop_seconds": loop_seconds,
        "loop_examples_per_second": all_examples / loop_seconds if loop_seconds else None,
        "steady_examples_per_second": steady["examples_per_second"] if steady else None,
        "steady": steady,
        "step_seconds": [round(b - a, 4) for a, b in zip([clock.train_begin] + clock.step_ends, clock.step_ends)],
        "mean_padded_length": float(np.mean([length for _, length in collator.batches])) if steps else None,
        "trainer_metrics": {k: v for k, v in result.metrics.items()
                            if k in ("train_runtime", "train_samples_per_second", "train_steps_per_second",
                                     "train_loss")},
        "eval_accuracy": accuracy,
        "eval_seconds": eval_seconds,
    }))


if __name__ == "__main__":
    main()

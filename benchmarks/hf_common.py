"""Shared parts of the PyTorch references (hf_train.py, hf_train_token.py, hf_train_job.py): threads,
the banner, a list dataset, and one timed Trainer run.

Imported only by the reference interpreter (.venv-ref: torch + transformers + accelerate); the scripts
run as `python benchmarks/hf_*.py`, so this folder is on sys.path. How time is measured is described
in hf_train.py's docstring and benchmarks/TRAINING_NOTES.md; this module is that code, unchanged, so
both references measure the same way. `Trainer` is imported only by `timed_trainer_run` (it pulls in
accelerate, seconds of start-up): hf_train_job.py, whose whole process is timed, never needs it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the tokenizer runs before training only

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def setup(request: dict, name: str) -> None:
    """Torch threads from the request (default: usable cores), quiet transformers, the stderr banner."""
    threads = int(request.get("threads") or usable_cores())
    torch.set_num_threads(threads)
    transformers.logging.set_verbosity_error()  # the "newly initialized" head warning is expected
    print(f"{name}: torch {torch.__version__}, transformers {transformers.__version__}, "
          f"torch threads = {torch.get_num_threads()}", file=sys.stderr)


class RecordingCollator:
    """Wraps a collator and remembers (examples, padded length) of each training batch."""

    def __init__(self, inner):
        self.inner = inner
        self.training = False
        self.batches: list[tuple[int, int]] = []

    def __call__(self, features):
        batch = self.inner(features)
        if self.training:
            self.batches.append(tuple(batch["input_ids"].shape))
        return batch


def step_clock_callback(collator: RecordingCollator):
    """A TrainerCallback stamping perf_counter at on_train_begin and at every on_step_end."""
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self):
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

    return StepClock()


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def timed_trainer_run(model, collator, train_set, eval_set, *, seed: int, epochs, batch_size: int,
                      learning_rate: float, warmup_ratio: float, weight_decay: float, optim=None,
                      excluded: int = 5, prefix: str = "hf_train_"):
    """Stock Trainer fine-tuning, timed, then trainer.predict(eval_set).

    Returns (settings, timing, prediction, eval_seconds): settings = {"optim", "max_grad_norm"} as Trainer
    used them; timing = the keys from "steps" to "trainer_metrics" of hf_train.py's output, in that order.
    """
    from transformers import PrinterCallback, Trainer, TrainingArguments

    recording = RecordingCollator(collator)
    clock = step_clock_callback(recording)
    with tempfile.TemporaryDirectory(prefix=prefix) as out_dir:
        extra = {"optim": optim} if optim else {}
        args = TrainingArguments(
            output_dir=out_dir,
            num_train_epochs=epochs,
            per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=batch_size,
            learning_rate=learning_rate,
            warmup_ratio=warmup_ratio,
            weight_decay=weight_decay,
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
        trainer = Trainer(model=model, args=args, train_dataset=train_set, data_collator=recording,
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

    steps = len(clock.step_ends)
    sizes = [n for n, _ in recording.batches]
    assert len(sizes) == steps, (len(sizes), steps)  # gradient_accumulation_steps == 1
    steady = None
    if steps > excluded:
        # Steps excluded+1..N: from the end of step `excluded` (or the start of training) to the last end.
        span = clock.step_ends[-1] - ([clock.train_begin] + clock.step_ends)[excluded]
        examples = sum(sizes[excluded:])
        tokens = sum(n * length for n, length in recording.batches[excluded:])
        steady = {"steps": steps - excluded, "examples": examples, "seconds": span,
                  "examples_per_second": examples / span, "padded_tokens_per_second": tokens / span}
    all_examples = sum(sizes)
    loop_seconds = clock.step_ends[-1] - clock.train_begin if steps else None

    settings = {
        "optim": str(args.optim.value if hasattr(args.optim, "value") else args.optim),
        "max_grad_norm": args.max_grad_norm,
    }
    timing = {
        "steps": steps,
        "warmup_steps_excluded": excluded,
        "train_seconds": train_seconds,
        "loop_seconds": loop_seconds,
        "loop_examples_per_second": all_examples / loop_seconds if loop_seconds else None,
        "steady_examples_per_second": steady["examples_per_second"] if steady else None,
        "steady": steady,
        "step_seconds": [round(b - a, 4) for a, b in zip([clock.train_begin] + clock.step_ends, clock.step_ends)],
        "mean_padded_length": float(np.mean([length for _, length in recording.batches])) if steps else None,
        "trainer_metrics": {k: v for k, v in result.metrics.items()
                            if k in ("train_runtime", "train_samples_per_second", "train_steps_per_second",
                                     "train_loss")},
    }
    return settings, timing, prediction, eval_seconds

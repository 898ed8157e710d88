"""Reference side of the whole-job benchmark: a plain PyTorch fine-tuning loop, process start to saved checkpoint.

Run by the reference interpreter (.venv-ref: torch + transformers) in its own process, by
bench_train_job.py, which times the process from outside. Reads one JSON request on stdin:

    {"model": folder, "train": "sst2/train.tsv", "rows": [0, 4000], "output": folder,
     "epochs": 1, "batch_size": 32, "learning_rate": 5e-5, "warmup_ratio": 0.1, "weight_decay": 0.01,
     "max_length": 128, "seed": 42}

optional: "optim" ("adamw_torch_fused", the default, as Trainer's default; or "adamw_torch"), "threads".

What `kbert train` does, written the way a PyTorch user would: read the TSV rows (header `text\tlabel`),
tokenize them once with the fast tokenizer (hf_train.encode), AutoModelForSequenceClassification with
a new head (set_seed first), DataLoader with a seeded RandomSampler and DataCollatorWithPadding, AdamW
(betas 0.9/0.999, eps 1e-8, no decay on biases and LayerNorm weights, as Trainer groups them), linear
schedule with ceil(warmup_ratio x steps) warm-up steps, clip_grad_norm_ 1.0, fp32; then
save_pretrained (model.safetensors + config) and the tokenizer. No evaluation, no Trainer (importing
it costs seconds of accelerate start-up that a plain loop does not pay).

Prints one JSON line on stdout: "phases" (seconds, in order: python start-up until this script runs,
imports, data, model, train, save), "total_seconds" (process age at exit), the first step's seconds,
the steady rate (steps after the first 5, as hf_common measures Trainer) and the final loss.
"""

from __future__ import annotations

import sys
import time

START = time.perf_counter()

import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402

from common import EXCLUDED_STEPS, process_age  # noqa: E402

STARTUP = process_age()  # interpreter start-up, before the first line of this script
import torch  # noqa: E402
from hf_common import setup  # noqa: E402
from hf_train import encode  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    get_linear_schedule_with_warmup,
    set_seed,
)


def read_rows(path: str, start: int, stop: int) -> list[tuple[str, int]]:
    lines = pathlib.Path(path).read_text(encoding="utf-8").split("\n")[1:]
    return [(line.split("\t")[0], int(line.split("\t")[1])) for line in lines[start:stop]]


def parameter_groups(model, weight_decay: float) -> list[dict]:
    """Trainer's grouping: decay every weight except biases and LayerNorm parameters."""
    no_decay = {name for name, module in model.named_modules() if isinstance(module, torch.nn.LayerNorm)}
    decay, rest = [], []
    for name, parameter in model.named_parameters():
        module = name.rsplit(".", 1)[0]
        (rest if name.endswith(".bias") or module in no_decay else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def main() -> None:
    request = json.load(sys.stdin)
    phases = {"python_startup": STARTUP, "imports": time.perf_counter() - START}
    setup(request, "hf_train_job")
    seed, batch_size = int(request.get("seed", 42)), int(request["batch_size"])

    mark = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(request["model"])
    train_set = encode(tokenizer, read_rows(request["train"], *request["rows"]), request["max_length"])
    phases["data"] = time.perf_counter() - mark

    mark = time.perf_counter()
    set_seed(seed)  # the new head's initial weights
    model = AutoModelForSequenceClassification.from_pretrained(request["model"], num_labels=2)
    phases["model"] = time.perf_counter() - mark

    mark = time.perf_counter()
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=batch_size, collate_fn=DataCollatorWithPadding(tokenizer),
        sampler=torch.utils.data.RandomSampler(train_set, generator=torch.Generator().manual_seed(seed)))
    total = len(loader) * int(request["epochs"])
    fused = request.get("optim", "adamw_torch_fused") == "adamw_torch_fused"
    optimizer = torch.optim.AdamW(parameter_groups(model, request["weight_decay"]), lr=request["learning_rate"],
                                  betas=(0.9, 0.999), eps=1e-8, fused=fused)
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(request["warmup_ratio"] * total), total)
    model.train()
    stamps, examples = [time.perf_counter()], []
    for _ in range(int(request["epochs"])):
        for batch in loader:
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            stamps.append(time.perf_counter())
            examples.append(len(batch["labels"]))
    phases["train"] = time.perf_counter() - mark

    mark = time.perf_counter()
    output = pathlib.Path(request["output"])
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    phases["save"] = time.perf_counter() - mark

    steady = (sum(examples[EXCLUDED_STEPS:]) / (stamps[-1] - stamps[EXCLUDED_STEPS])
              if len(examples) > EXCLUDED_STEPS else None)
    print(json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "optim": "adamw_torch_fused" if fused else "adamw_torch", "steps": len(examples),
        "phases": phases, "first_step_seconds": stamps[1] - stamps[0] if examples else None,
        "steady_examples_per_second": steady, "final_loss": float(loss.detach()) if examples else None,
        "saved": sorted(p.name for p in output.iterdir()), "total_seconds": process_age(),
        "pid_cpu_seconds": sum(os.times()[:2]), "printed_at": time.time(),
    }), flush=True)


if __name__ == "__main__":
    main()

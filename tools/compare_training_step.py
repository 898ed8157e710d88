"""Diagnostic: fine-tuning steps in kbert vs PyTorch/transformers from identical weights, dropout off.

Default: one step. Compares the loss, every gradient (by Hugging Face name) and the weights after one AdamW
step with clipping and weight decay, to find where training math differs (the accuracy gaps in the README).
``--task text-classification`` (default): 16 SST-2 sentences, a 2-label head. ``--task token-classification``:
16 WNUT-17 training sentences, the 13-label WNUT head, labels on first word pieces (-100 elsewhere) and
kbert's own compiled loss (``task.loss()``, Keras ``ignore_class``) against ``BertForTokenClassification``'s.

``--steps N`` runs N steps in a row instead, on the first N batches of 32 training sentences in file order,
with the benchmarks' schedule (10 % warm-up of ``--total-steps``, then linear decay): kbert through
``compile_for_training`` and Keras' compiled training step (``train_on_batch``: what ``fit`` runs), PyTorch
as Trainer's loop (``clip_grad_norm_``, AdamW, ``get_linear_schedule_with_warmup``). It prints both losses
step by step and how far apart the weights have drifted: anything that accumulates over steps.

``--dropout-samples K`` keeps dropout on (the checkpoint's rates) and compares instead the distribution of
the training-mode loss over K dropout masks on the same weights and batch: equal means and spreads say
that dropout sits in the same places with the same rates on both sides (masks themselves cannot match).

    .venv/bin/python tools/compare_training_step.py [--task token-classification] [--steps 50 | --dropout-samples 200]
    # needs .venv-ref (make reference-env) and ../shared/data
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
LEARNING_RATE, WEIGHT_DECAY, CLIP_NORM, MAX_LENGTH = 5e-5, 0.01, 1.0, 128

TORCH_SIDE = r'''
import json, sys, numpy as np, torch
from transformers import (AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer,
                          get_linear_schedule_with_warmup)
request = json.load(open(sys.argv[1]))
folder, batches, mode = request["folder"], request["batches"], request["mode"]
tok = AutoTokenizer.from_pretrained(folder)
token_task = isinstance(batches[0]["texts"][0], list)
cls = AutoModelForTokenClassification if token_task else AutoModelForSequenceClassification
model = cls.from_pretrained(folder).train()

def encode(texts, labels):
    if not token_task:
        return tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt"), torch.tensor(labels)
    # word lists: run_ner.py's alignment, label on the first piece of each word
    batch = tok(texts, padding=True, truncation=True, max_length=128, is_split_into_words=True, return_tensors="pt")
    aligned = []
    for i, tags in enumerate(labels):
        row, previous = [], None
        for word in batch.word_ids(batch_index=i):
            row.append(-100 if word is None or word == previous else tags[word])
            previous = word
        aligned.append(row)
    return batch, torch.tensor(aligned)

def adamw():
    no_decay = lambda n: n.endswith("bias") or "LayerNorm" in n
    groups = [{"params": [p for n, p in model.named_parameters() if not no_decay(n)], "weight_decay": request["wd"]},
              {"params": [p for n, p in model.named_parameters() if no_decay(n)], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=request["lr"], eps=1e-8)

if mode == "dropout":  # training-mode losses over independent dropout masks
    torch.manual_seed(0)
    batch, labels = encode(**batches[0])
    with torch.no_grad():
        losses = [float(model(**batch, labels=labels).loss) for _ in range(request["samples"])]
    print(json.dumps({"losses": losses}))
elif mode == "step":
    batch, labels = encode(**batches[0])
    out = model(**batch, labels=labels)
    out.loss.backward()
    grads = {n: p.grad.detach().numpy().copy() for n, p in model.named_parameters()}
    norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), request["clip"]))
    adamw().step()
    after = {n: p.detach().numpy() for n, p in model.named_parameters()}
    np.savez(request["npz"], **{"grad/" + k: v for k, v in grads.items()}, **{"after/" + k: v for k, v in after.items()})
    print(json.dumps({"loss": float(out.loss), "grad_norm": norm}))
else:  # "steps": Trainer's loop, without its data loader
    optimizer = adamw()
    schedule = get_linear_schedule_with_warmup(optimizer, request["warmup"], request["total_steps"])
    losses, norms = [], []
    for b in batches:
        batch, labels = encode(**b)
        loss = model(**batch, labels=labels).loss
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), request["clip"])))
        optimizer.step(); schedule.step(); optimizer.zero_grad()
        losses.append(float(loss))
    np.savez(request["npz"], **{"after/" + n: p.detach().numpy() for n, p in model.named_parameters()})
    print(json.dumps({"losses": losses, "grad_norms": norms}))
'''


def main():
    import argparse

    import numpy as np

    from common import data_dir, minilm_classifier
    from kbert.checkpoint.safetensors_io import read_safetensors, write_safetensors

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="text-classification", choices=["text-classification", "token-classification"])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dropout-samples", type=int, default=0, metavar="K")
    mode.add_argument("--steps", type=int, default=0, metavar="N", help="N steps in a row (batches of 32)")
    parser.add_argument("--total-steps", type=int, default=321,
                        help="--steps: the schedule's length (WNUT-17 benchmark: 321; SST-2: 125)")
    args = parser.parse_args()
    if args.steps < 0 or args.dropout_samples < 0 or args.total_steps < max(args.steps, 1):
        parser.error(f"--steps and --dropout-samples must be >= 0 and --total-steps >= --steps "
                     f"(got {args.steps}, {args.dropout_samples}, {args.total_steps})")
    token_task, samples = args.task == "token-classification", args.dropout_samples
    with tempfile.TemporaryDirectory() as tmp:
        config_changes = {} if samples else dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        batch_size, batch_count = (32, args.steps) if args.steps else (16, 1)
        if token_task:
            from kbert.tasks.token_classification.tagged_files import read_tagged

            folder = minilm_classifier(pathlib.Path(tmp) / "m", "minilm-ner-head")
            label2id = json.loads((folder / "config.json").read_text())["label2id"]
            sentences = read_tagged(data_dir() / "wnut17" / "wnut17train.conll")
            examples = [(list(s.words), [label2id[t] for t in s.tags]) for s in sentences]
        else:
            folder = minilm_classifier(pathlib.Path(tmp) / "m")
            lines = (data_dir() / "sst2" / "train.tsv").read_text().split("\n")[1:]
            examples = [(l.split("\t")[0], int(l.split("\t")[1])) for l in lines[:batch_size * batch_count]]
            config_changes.update(id2label={"0": "negative", "1": "positive"}, label2id={"negative": 0, "positive": 1})
        if len(examples) <= batch_size * (batch_count - 1):  # the last batch may be partial, not empty
            sys.exit(f"--steps {batch_count}: the training file has {len(examples)} examples, "
                     f"{-(-len(examples) // batch_size)} batches of up to {batch_size}")
        batches = [{"texts": [t for t, _ in chunk], "labels": [l for _, l in chunk]}
                   for chunk in (examples[i * batch_size:(i + 1) * batch_size] for i in range(batch_count))]
        config = json.loads((folder / "config.json").read_text())
        config.update(config_changes)
        (folder / "config.json").write_text(json.dumps(config))
        tensors = {k: np.array(v) for k, v in read_safetensors(folder / "model.safetensors").items()}
        if not token_task:  # the 3-label sentiment fixture head, cut to 2 labels
            tensors["classifier.weight"], tensors["classifier.bias"] = tensors["classifier.weight"][:2], tensors["classifier.bias"][:2]
        write_safetensors(folder / "model.safetensors", tensors)

        mode_name = "dropout" if samples else "steps" if args.steps else "step"
        npz = pathlib.Path(tmp) / "torch.npz"
        request = {"folder": str(folder), "batches": batches, "mode": mode_name, "samples": samples, "npz": str(npz),
                   "lr": LEARNING_RATE, "wd": WEIGHT_DECAY, "clip": CLIP_NORM, "total_steps": args.total_steps,
                   "warmup": math.ceil(0.1 * args.total_steps)}
        torch_summary = _run_torch(request, pathlib.Path(tmp))
        kbert_side = _KbertSide(folder, token_task, dropout=samples > 0)
        if samples:
            _compare_dropout(kbert_side, batches[0], torch_summary["losses"])
        elif args.steps:
            _compare_steps(kbert_side, batches, request, torch_summary, dict(np.load(npz)), tensors)
        else:
            _compare_one_step(kbert_side, batches[0], torch_summary, dict(np.load(npz)), tensors)


def _run_torch(request, tmp: pathlib.Path) -> dict:
    from common import REFERENCE_PYTHON

    path = tmp / "request.json"
    path.write_text(json.dumps(request))
    done = subprocess.run([str(REFERENCE_PYTHON), "-c", TORCH_SIDE, str(path)], capture_output=True, text=True,
                          env=dict(os.environ, HF_HUB_OFFLINE="1"))
    if done.returncode:
        sys.exit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


class _KbertSide:
    """The kbert task model on the same checkpoint, its variables by Hugging Face name, and its inputs."""

    def __init__(self, folder, token_task: bool, dropout: bool):
        import kbert
        from kbert.checkpoint.save import model_slots

        self.token_task = token_task
        self.task = kbert.tasks.get_task("token-classification" if token_task else "text-classification")(
            kbert.load_checkpoint(folder))
        self.model = self.task.build_model(dropout=None if dropout else 0.0)
        self.slots = model_slots(self.task, self.model)

    def optimizer(self, total_steps: int, warmup: int):
        from kbert.training.optimizer import build_optimizer, decays

        no_decay = [s.variable for s in self.slots if not decays(s.hf_name)]
        return build_optimizer(learning_rate=LEARNING_RATE, warmup=warmup, total_steps=total_steps,
                               weight_decay=WEIGHT_DECAY, clip_norm=CLIP_NORM, no_decay_variables=no_decay)

    def inputs(self, batch):
        """``(features, targets)`` as kbert's training data has them (token task: windows, first-piece labels)."""
        import numpy as np
        import tensorflow as tf

        tokenizer = self.task.checkpoint.tokenizer
        if not self.token_task:
            enc = tokenizer.encode(tf.constant(batch["texts"]), max_length=MAX_LENGTH).padded()
            return {k: enc[k] for k in ("token_ids", "segment_ids", "padding_mask")}, tf.constant(batch["labels"])
        from kbert.tasks.token_classification.features import make_windows, tokenize_words

        windows = make_windows(tokenize_words(tokenizer, batch["texts"]), [np.array(t) for t in batch["labels"]],
                               max_length=MAX_LENGTH, stride=32, cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id)
        width = max(len(t) for t in windows.token_ids)
        ids = np.array([np.pad(t, (0, width - len(t)), constant_values=tokenizer.pad_id) for t in windows.token_ids])
        lengths = np.array([[len(t)] for t in windows.token_ids])
        features = {"token_ids": tf.constant(ids), "segment_ids": tf.zeros_like(ids),
                    "padding_mask": tf.constant((np.arange(width) < lengths).astype("int32"))}
        return features, tf.constant([np.pad(l, (0, width - len(l)), constant_values=-100) for l in windows.labels])

    def hf_weights(self) -> dict:
        import numpy as np

        family = self.task.checkpoint.family
        return {family.checkpoint_name(s.hf_name): s.to_hf(np.asarray(s.variable)) for s in self.slots}


def _compare_one_step(side: _KbertSide, batch, torch_summary, ref, start):
    import numpy as np
    import tensorflow as tf

    inputs, targets = side.inputs(batch)
    variables = [s.variable for s in side.slots]
    with tf.GradientTape() as tape:
        logits = side.model(inputs, training=True)["logits"]
        loss = side.task.loss()(targets, logits)  # the loss compile() uses
    raw_grads = tape.gradient(loss, [v.value for v in variables])  # embedding tables: tf.IndexedSlices, as in fit
    grads = [tf.convert_to_tensor(g) for g in raw_grads]
    side.optimizer(total_steps=1, warmup=0).apply_gradients(zip(raw_grads, variables))
    print(f"loss: kbert {float(loss):.6f} torch {torch_summary['loss']:.6f}; torch grad norm {torch_summary['grad_norm']:.4f}, "
          f"kbert {float(tf.linalg.global_norm(grads)):.4f}")
    after = side.hf_weights()
    worst = []
    for slot, grad in zip(side.slots, grads):
        name = side.task.checkpoint.family.checkpoint_name(slot.hf_name)
        g_ours, g_ref = slot.to_hf(grad.numpy()), ref["grad/" + name]
        rel = np.abs(g_ours - g_ref).max() / (np.abs(g_ref).max() + 1e-12)
        worst.append((rel, _relative_update_difference(after[name], ref["after/" + name], start[name]), name))
    worst.sort(reverse=True)
    print("largest relative gradient differences:")
    for rel, step_rel, name in worst[:8]:
        print(f"  {name:60} grad {rel:.2e}  update {step_rel:.2e}")
    print("largest relative update differences:")
    for rel, step_rel, name in sorted(worst, key=lambda w: -w[1])[:8]:
        print(f"  {name:60} grad {rel:.2e}  update {step_rel:.2e}")
    print("embedding tables (sparse gradients in kbert, see kbert.sparse_gradients):")
    for rel, step_rel, name in sorted(w for w in worst if "embeddings." in w[2] and "LayerNorm" not in w[2]):
        print(f"  {name:60} grad {rel:.2e}  update {step_rel:.2e}")


def _relative_update_difference(ours, theirs, start) -> float:
    """max |(ours - start) - (theirs - start)| / max |theirs - start|: how differently a tensor moved."""
    import numpy as np

    return float(np.abs(ours - theirs).max() / (np.abs(theirs - start).max() + 1e-12))


def _compare_steps(side: _KbertSide, batches, request, torch_summary, ref, start):
    """N compiled kbert training steps (``train_on_batch``: fit's step function) against Trainer's loop."""
    import numpy as np
    import keras

    from kbert.training.compile import compile_for_training

    trainable = keras.Model(side.model.input, side.model.output["logits"])
    compile_for_training(trainable, side.optimizer(request["total_steps"], request["warmup"]), side.task.loss())
    # every batch padded to MAX_LENGTH: one traced step (padding is masked, as in the per-batch padding of torch)
    ours = [float(trainable.train_on_batch(*_padded(side, *side.inputs(batch)))) for batch in batches]
    theirs = torch_summary["losses"]
    print(f"{len(batches)} steps (schedule: {request['warmup']} warm-up of {request['total_steps']}), dropout off")
    print(f"{'step':>5} {'kbert loss':>11} {'torch loss':>11} {'diff':>10} {'torch grad norm':>16}")
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if i < 5 or (i + 1) % 10 == 0 or i == len(ours) - 1:
            print(f"{i + 1:5d} {a:11.6f} {b:11.6f} {a - b:+10.2e} {torch_summary['grad_norms'][i]:16.4f}")
    print(f"mean loss: kbert {np.mean(ours):.6f}, torch {np.mean(theirs):.6f}; "
          f"mean |diff| {np.mean(np.abs(np.subtract(ours, theirs))):.2e}")
    after = side.hf_weights()
    drift = sorted((_relative_update_difference(after[n], ref["after/" + n], start[n]), n) for n in after)
    print(f"weights after {len(batches)} steps, relative difference of the total update per tensor: "
          f"median {drift[len(drift) // 2][0]:.2e}; largest:")
    for rel, name in drift[::-1][:6]:
        print(f"  {name:60} {rel:.2e}")


def _padded(side: _KbertSide, features, targets):
    import tensorflow as tf

    extra = MAX_LENGTH - int(features["token_ids"].shape[1])
    pad = lambda x, value: tf.pad(x, [[0, 0], [0, extra]], constant_values=value)
    features = {"token_ids": pad(features["token_ids"], side.task.checkpoint.tokenizer.pad_id),
                "segment_ids": pad(features["segment_ids"], 0), "padding_mask": pad(features["padding_mask"], 0)}
    return features, (pad(targets, -100) if side.token_task else targets)


def _compare_dropout(side: _KbertSide, batch, torch_losses):
    """Training-mode loss over as many dropout masks as torch ran: mean, spread and their uncertainty."""
    import numpy as np
    import tensorflow as tf

    inputs, targets = side.inputs(batch)
    loss_fn, model = side.task.loss(), side.model
    step = tf.function(lambda: loss_fn(targets, model(inputs, training=True)["logits"]))
    ours, ref = np.array([float(step()) for _ in torch_losses]), np.array(torch_losses)
    with_dropout_off = float(loss_fn(targets, model(inputs, training=False)["logits"]))
    k = len(ref)
    print(f"training-mode loss over {k} dropout masks (inference-mode loss {with_dropout_off:.4f}):")
    for name, x in (("kbert", ours), ("torch", ref)):
        print(f"  {name}: mean {x.mean():.4f} +- {x.std(ddof=1) / np.sqrt(k):.4f} (s.e.), "
              f"sd {x.std(ddof=1):.4f} +- {x.std(ddof=1) / np.sqrt(2 * (k - 1)):.4f}")
    z = (ours.mean() - ref.mean()) / np.sqrt(ours.var(ddof=1) / k + ref.var(ddof=1) / k)
    print(f"  difference of means: {ours.mean() - ref.mean():+.4f} ({z:+.2f} standard errors)")


if __name__ == "__main__":
    main()

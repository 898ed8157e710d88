"""Diagnostic: one fine-tuning step in kbert vs PyTorch/transformers from identical weights, dropout off.

Compares the loss, every gradient (by Hugging Face name) and the weights after one AdamW step with
clipping and weight decay, to find where training math differs (the accuracy gaps in the README).
``--task text-classification`` (default): 16 SST-2 sentences, a 2-label head. ``--task token-classification``:
16 WNUT-17 training sentences, the 13-label WNUT head, labels on first word pieces (-100 elsewhere) and
kbert's own compiled loss (``task.loss()``, Keras ``ignore_class``) against ``BertForTokenClassification``'s.

``--dropout-samples K`` keeps dropout on (the checkpoint's rates) and compares instead the distribution of
the training-mode loss over K dropout masks on the same weights and batch: equal means and spreads say
that dropout sits in the same places with the same rates on both sides (masks themselves cannot match).

    .venv/bin/python tools/compare_training_step.py [--task token-classification] [--dropout-samples 200]
    # needs .venv-ref (make reference-env) and ../shared/data
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

TORCH_SIDE = r'''
import json, sys, numpy as np, torch
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer
folder, texts, labels, lr, wd = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
samples = int(sys.argv[7])
tok = AutoTokenizer.from_pretrained(folder)
if isinstance(texts[0], list):  # word lists: run_ner.py's alignment, label on the first piece of each word
    model = AutoModelForTokenClassification.from_pretrained(folder).train()
    batch = tok(texts, padding=True, truncation=True, max_length=128, is_split_into_words=True, return_tensors="pt")
    aligned = []
    for i, tags in enumerate(labels):
        row, previous = [], None
        for word in batch.word_ids(batch_index=i):
            row.append(-100 if word is None or word == previous else tags[word])
            previous = word
        aligned.append(row)
    labels = aligned
else:
    model = AutoModelForSequenceClassification.from_pretrained(folder).train()
    batch = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
if samples:  # training-mode losses over independent dropout masks
    torch.manual_seed(0)
    with torch.no_grad():
        losses = [float(model(**batch, labels=torch.tensor(labels)).loss) for _ in range(samples)]
    print(json.dumps({"losses": losses}))
    sys.exit(0)
out = model(**batch, labels=torch.tensor(labels))
out.loss.backward()
grads = {n: p.grad.detach().numpy().copy() for n, p in model.named_parameters()}
norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}], lr=lr, eps=1e-8)
opt.step()
after = {n: p.detach().numpy() for n, p in model.named_parameters()}
np.savez(sys.argv[6], **{"grad/" + k: v for k, v in grads.items()}, **{"after/" + k: v for k, v in after.items()})
print(json.dumps({"loss": float(out.loss), "grad_norm": norm}))
'''


def main():
    import argparse

    import numpy as np
    import tensorflow as tf

    import kbert
    from common import REFERENCE_PYTHON, data_dir, minilm_classifier
    from kbert.checkpoint.hf_names import backbone_slots, hf_checkpoint_name
    from kbert.checkpoint.safetensors_io import read_safetensors, write_safetensors
    from kbert.checkpoint.save import find_backbone
    from kbert.training.optimizer import build_optimizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="text-classification", choices=["text-classification", "token-classification"])
    parser.add_argument("--dropout-samples", type=int, default=0, metavar="K")
    args = parser.parse_args()
    token_task, samples = args.task == "token-classification", args.dropout_samples
    lr, wd = 5e-5, 0.01
    with tempfile.TemporaryDirectory() as tmp:
        config_changes = {} if samples else dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        if token_task:
            from kbert.data.tagged import read_tagged

            folder = minilm_classifier(pathlib.Path(tmp) / "m", "minilm-ner-head")
            label2id = json.loads((folder / "config.json").read_text())["label2id"]
            sentences = read_tagged(data_dir() / "wnut17" / "wnut17train.conll")[:16]
            texts, labels = [list(s.words) for s in sentences], [[label2id[t] for t in s.tags] for s in sentences]
        else:
            folder = minilm_classifier(pathlib.Path(tmp) / "m")
            lines = (data_dir() / "sst2" / "train.tsv").read_text().split("\n")[1:17]
            texts, labels = [l.split("\t")[0] for l in lines], [int(l.split("\t")[1]) for l in lines]
            config_changes.update(id2label={"0": "negative", "1": "positive"}, label2id={"negative": 0, "positive": 1})
        config = json.loads((folder / "config.json").read_text())
        config.update(config_changes)
        (folder / "config.json").write_text(json.dumps(config))
        tensors = {k: np.array(v) for k, v in read_safetensors(folder / "model.safetensors").items()}
        if not token_task:  # the 3-label sentiment fixture head, cut to 2 labels
            tensors["classifier.weight"], tensors["classifier.bias"] = tensors["classifier.weight"][:2], tensors["classifier.bias"][:2]
        write_safetensors(folder / "model.safetensors", tensors)
        npz = pathlib.Path(tmp) / "torch.npz"
        done = subprocess.run([str(REFERENCE_PYTHON), "-c", TORCH_SIDE, str(folder), json.dumps(texts), json.dumps(labels),
                               str(lr), str(wd), str(npz), str(samples)], capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
        if done.returncode:
            sys.exit(done.stderr[-3000:])
        torch_summary = json.loads(done.stdout.strip().splitlines()[-1])

        task = kbert.tasks.get_task("token-classification" if token_task else "text-classification")(
            kbert.load_checkpoint(folder))
        model = task.build_model(dropout=None if samples else 0.0)
        backbone = find_backbone(model)
        slots = backbone_slots(backbone) + task.head_slots(model)
        tokenizer = task.checkpoint.tokenizer
        if token_task:  # kbert's own training input: word pieces, first-piece labels, padded with -100
            from kbert.training.token_data import make_windows, tokenize_words

            windows = make_windows(tokenize_words(tokenizer, texts), [np.array(t) for t in labels], max_length=128,
                                   stride=32, cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id)
            width = max(len(t) for t in windows.token_ids)
            ids = np.array([np.pad(t, (0, width - len(t)), constant_values=tokenizer.pad_id) for t in windows.token_ids])
            inputs = {"token_ids": tf.constant(ids), "segment_ids": tf.zeros_like(ids),
                      "padding_mask": tf.constant((np.arange(width) < np.array([[len(t)] for t in windows.token_ids])).astype("int32"))}
            targets = tf.constant([np.pad(l, (0, width - len(l)), constant_values=-100) for l in windows.labels])
        else:
            enc = tokenizer.encode(tf.constant(texts), max_length=128).padded()
            inputs = {k: enc[k] for k in ("token_ids", "segment_ids", "padding_mask")}
            targets = tf.constant(labels)
        if samples:
            _compare_dropout(model, task.loss(), inputs, targets, torch_summary["losses"])
            return
        ref = dict(np.load(npz))
        variables = [s.variable for s in slots]
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)["logits"]
            loss = task.loss()(targets, logits)  # the loss compile() uses
        raw_grads = tape.gradient(loss, [v.value for v in variables])  # embedding tables: tf.IndexedSlices, as in fit
        grads = [tf.convert_to_tensor(g) for g in raw_grads]
        no_decay = [s.variable for s in slots if s.hf_name.endswith(".bias") or "LayerNorm" in s.hf_name]
        optimizer = build_optimizer(learning_rate=lr, warmup=0, total_steps=1, weight_decay=wd, clip_norm=1.0,
                                    no_decay_variables=no_decay)
        optimizer.apply_gradients(zip(raw_grads, variables))
        print(f"loss: kbert {float(loss):.6f} torch {torch_summary['loss']:.6f}; torch grad norm {torch_summary['grad_norm']:.4f}, "
              f"kbert {float(tf.linalg.global_norm(grads)):.4f}")
        worst = []
        for slot, grad in zip(slots, grads):
            name = hf_checkpoint_name(slot, with_prefix=True)
            g_ours, g_ref = slot.to_hf(grad.numpy()), ref["grad/" + name]
            rel = np.abs(g_ours - g_ref).max() / (np.abs(g_ref).max() + 1e-12)
            after_ours, after_ref = slot.to_hf(np.asarray(slot.variable)), ref["after/" + name]
            start = tensors[name]
            step_rel = np.abs((after_ours - start) - (after_ref - start)).max() / (np.abs(after_ref - start).max() + 1e-12)
            worst.append((rel, step_rel, name))
        worst.sort(reverse=True)
        print("largest relative gradient differences:")
        for rel, step_rel, name in worst[:8]:
            print(f"  {name:60} grad {rel:.2e}  update {step_rel:.2e}")
        print("largest relative update differences:")
        for rel, step_rel, name in sorted(worst, key=lambda w: -w[1])[:8]:
            print(f"  {name:60} grad {rel:.2e}  update {step_rel:.2e}")
        print("embedding tables (sparse gradients in kbert, see kbert.training.sparse_gradients):")
        for rel, step_rel, name in sorted(w for w in worst if "embeddings." in w[2] and "LayerNorm" not in w[2]):
            print(f"  {name:60} grad {rel:.2e}  update {step_rel:.2e}")


def _compare_dropout(model, loss_fn, inputs, targets, torch_losses):
    """Training-mode loss over as many dropout masks as torch ran: mean, spread and their uncertainty."""
    import numpy as np
    import tensorflow as tf

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

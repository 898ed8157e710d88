"""Reference side of the retrieval-training benchmark: sentence-transformers' MNRL fine-tuning on PyTorch (CPU).

Run by the reference interpreter (.venv-ref: torch + sentence-transformers + datasets) in its own process. Reads
one JSON request on stdin:

    {"model": folder, "train": [[query, positive], ...], "eval": [[query, positive], ...], "output": folder,
     "epochs": 1, "batch_size": 32, "learning_rate": 5e-5, "warmup_ratio": 0.1, "weight_decay": 0.01,
     "max_seq_length": 128, "seed": 42, "scale": 20.0, "batch_sampler": "batch_sampler" | "no_duplicates"}

Fine-tunes ``SentenceTransformer(model)`` with ``SentenceTransformerTrainer`` and
``MultipleNegativesRankingLoss(scale)``, fp32, saves it to ``output``, and scores "eval" with
``InformationRetrievalEvaluator`` (queries: the distinct queries; corpus: the distinct positives; cosine), the
definitions kbert's retrieval metrics follow. Prints one JSON line: the seconds of ``trainer.train()`` and the
evaluator's metrics.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from datasets import Dataset  # noqa: E402
from sentence_transformers import (SentenceTransformer, SentenceTransformerTrainer,  # noqa: E402
                                   SentenceTransformerTrainingArguments)
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator  # noqa: E402
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss  # noqa: E402
from sentence_transformers.training_args import BatchSamplers  # noqa: E402


def ir_evaluator(rows) -> InformationRetrievalEvaluator:
    queries, corpus, relevant = {}, {}, {}
    for query, positive in rows:
        q = queries.setdefault(query, str(len(queries)))
        d = corpus.setdefault(positive, str(len(corpus)))
        relevant.setdefault(q, set()).add(d)
    return InformationRetrievalEvaluator({v: k for k, v in queries.items()}, {v: k for k, v in corpus.items()},
                                         relevant, mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 10],
                                         precision_recall_at_k=[1, 10, 100], map_at_k=[100], show_progress_bar=False,
                                         name="eval")


def main() -> None:
    request = json.load(sys.stdin)
    model = SentenceTransformer(request["model"], device="cpu")
    model.max_seq_length = request["max_seq_length"]
    train = Dataset.from_dict({"anchor": [q for q, _ in request["train"]],
                               "positive": [p for _, p in request["train"]]})
    args = SentenceTransformerTrainingArguments(
        output_dir=os.path.join(request["output"], "checkpoints"), num_train_epochs=request["epochs"],
        per_device_train_batch_size=request["batch_size"], learning_rate=request["learning_rate"],
        warmup_ratio=request["warmup_ratio"], weight_decay=request["weight_decay"], seed=request["seed"],
        batch_sampler=BatchSamplers(request.get("batch_sampler", "batch_sampler")), save_strategy="no",
        logging_steps=50, report_to="none", dataloader_drop_last=False, use_cpu=True)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train,
                                         loss=MultipleNegativesRankingLoss(model, scale=request["scale"]))
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    model.save(request["output"])
    metrics = ir_evaluator(request["eval"])(model)
    print(json.dumps({"train_seconds": seconds, "metrics": metrics}))


if __name__ == "__main__":
    main()

"""SQuAD files ─► validated questions ─► run_qa.py windows ─► training batches and the scored evaluation set.

Example:
    >>> from kbert.checkpoint import load_checkpoint
    >>> from kbert.tasks.question_answering.examples import QAExample
    >>> tokenizer = load_checkpoint("tests/fixtures/checkpoints/tiny-uncased-qa").tokenizer
    >>> examples = [QAExample("q1", "Where does Sinan live?", "Sinan lives in California.", ("California",), (15,))]
    >>> evaluation = evaluation_windows(tokenizer, examples, max_length=32, doc_stride=8, batch_size=8)
    >>> evaluation.data.num_batches, evaluation.windows.example_index.tolist()
    (1, [0])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from kbert.tasks.question_answering.examples import QAExample


@dataclasses.dataclass(frozen=True)
class QAEvaluation:
    """Evaluation windows (offsets kept for decoding answers) and their batches, in window order."""

    windows: Any  # training_features.QAWindows
    data: Any  # kbert.batching.dataset.TrainingData, unshuffled, no length buckets


def evaluation_windows(tokenizer, examples: Sequence[QAExample], *, max_length: int, doc_stride: int,
                       batch_size: int) -> QAEvaluation:
    from kbert.tasks.question_answering.training_features import qa_training_data, qa_windows

    windows = qa_windows(tokenizer, examples, max_seq_len=max_length, doc_stride=doc_stride, training=True)
    data = qa_training_data(windows, pad_id=tokenizer.pad_id, batch_size=batch_size, max_length=max_length,
                            shuffle=False, seed=0, bucket=False)
    return QAEvaluation(windows, data)


def check_version(examples: Sequence[QAExample], source, version_2: bool) -> None:
    """SQuAD v1.1 training cannot learn "no answer": impossible questions need ``version_2_with_negative``."""
    from kbert.errors import TrainingError

    impossible = [e.id for e in examples if e.is_impossible or not e.answers]
    if impossible and not version_2:
        raise TrainingError(f"{source}: {len(impossible)} questions have no answer (first: id {impossible[0]!r}); "
                            f"train with --version-2-with-negative (SQuAD v2.0) or remove them")


def prepare(task_cls, config, checkpoint, max_length: int):
    """Read and validate every question now (nothing written); windows and batches in ``build()``."""
    from kbert.tasks.base import PreparedTraining, TrainingPlan
    from kbert.tasks.question_answering.scoring import score_squad
    from kbert.tasks.question_answering.squad_files import read_qa_examples
    from kbert.tasks.question_answering.training_features import qa_training_data, qa_windows
    from kbert.tasks.question_answering.task import _scoring_options

    options = config.task_options
    read = dict(format=config.format, download=config.download, encoding=config.encoding)
    train_examples = read_qa_examples(config.train, limit=config.train_limit, **read)
    eval_examples = (read_qa_examples(config.eval, limit=config.eval_limit, **read)
                     if config.eval is not None else None)
    version_2 = options["version_2_with_negative"]
    check_version(train_examples, config.train, version_2)
    tokenizer = checkpoint.tokenizer
    stride = options["doc_stride"]

    def build() -> TrainingPlan:
        windows = qa_windows(tokenizer, train_examples, max_seq_len=max_length, doc_stride=stride, training=True)
        data = qa_training_data(windows, pad_id=tokenizer.pad_id, batch_size=config.batch_size,
                                max_length=max_length, shuffle=True, seed=config.seed, bucket=config.bucket_by_length)
        if eval_examples is None:
            return TrainingPlan(data, None)
        evaluation = evaluation_windows(tokenizer, eval_examples, max_length=max_length, doc_stride=stride,
                                        batch_size=config.batch_size)
        return TrainingPlan(data, lambda model: score_squad(model, evaluation, eval_examples,
                                                            **_scoring_options(options)), len(eval_examples))

    answerable = sum(1 for e in train_examples if e.answers)
    counts = {"answerable": answerable, "no answer": len(train_examples) - answerable} if version_2 else {}
    return PreparedTraining(None, None, build, label_counts=counts, units=("windows", "questions"),
                            checkpoint_info={"doc_stride": stride, "version_2_with_negative": version_2})

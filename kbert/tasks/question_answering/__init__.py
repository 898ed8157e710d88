"""Extractive question answering (SQuAD v1.1 / v2.0): the answer is a span of the context.

    examples.py           QAExample: question, context, gold answers (none when impossible)
    squad_files.py        SQuAD JSON v1.1/v2.0, JSON lines (HF datasets layout), tfds:squad -> QAExample
    training_features.py  run_qa.py's windows (question first, only_second, doc_stride) and span targets
    loss.py               BertForQuestionAnswering's loss: mean of start and end cross-entropy
    postprocess.py        transformers 4.57's QuestionAnsweringPipeline answers, as pure numpy
    squad_metrics.py      the official SQuAD v1.1 / v2.0 exact match and F1 (HasAns/NoAns, best threshold)
    scoring.py            window logits of an evaluation set -> answers -> SQuAD metrics
    answers_graph.py      the same answers as TF ops, for the raw-string SavedModel
    training_data.py      files -> validated questions -> training batches and the scored evaluation set
    task.py               the span head (qa_outputs, Dense(2) on the sequence output), pipeline and export hooks

Example:
    >>> from kbert.tasks.registry import get_spec
    >>> spec = get_spec("question-answering")
    >>> spec.resolve("train", {})["max_answer_len"], spec.resolve("train", {})["doc_stride"]
    (30, 128)
"""

from kbert.errors import InputError
from kbert.tasks.spec import UNSET, Option, TaskSpec


def positive_int(name: str, allow_zero: bool = False):
    """A check for an integer option (CLI strings of digits accepted), naming the option in its error."""

    def check(value):
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if allow_zero else 1):
            raise InputError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} integer, got {value!r}")
        return value

    return check


def check_threshold(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"null_score_diff_threshold must be a number, got {value!r}") from None


PREDICT = ("predict",)


def scoring_options(default) -> tuple[Option, ...]:
    """The options of training and evaluation; ``default(value)`` is the value for the commands' defaults
    (``kbert evaluate`` leaves them unset, so that the checkpoint's own training settings apply)."""
    return (
        Option("version_2_with_negative", default(False), "SQuAD v2.0: some questions have no answer (train for "
               "the null answer, report HasAns/NoAns)", commands=(), flag=True),
        Option("doc_stride", default(128), "tokens shared by neighbouring windows of a long context (default 128)",
               commands=(), check=positive_int("doc_stride", allow_zero=True)),
        Option("max_answer_len", default(30), "longest answer in tokens when scoring (default 30, run_qa.py's)",
               commands=(), check=positive_int("max_answer_len")),
        Option("null_score_diff_threshold", default(0.0), "SQuAD v2.0: predict no answer when the null score beats "
               "the best span by more than this (default 0)", commands=(), check=check_threshold),
    )


def _for(command: str, options: tuple[Option, ...]) -> tuple[Option, ...]:
    import dataclasses

    return tuple(dataclasses.replace(o, commands=(command,)) for o in options)


SPEC = TaskSpec(
    "question-answering", "kbert.tasks.question_answering.task:QuestionAnswering",
    data_help="SQuAD json (v1.1/v2.0), jsonl {question, context, answers{text, answer_start}} or tfds:squad/v1.1",
    options=(
        *_for("train", scoring_options(lambda value: value)),
        *_for("evaluate", scoring_options(lambda value: UNSET)),
        Option("top_k", UNSET, "answers per question (default 1)", commands=PREDICT, check=positive_int("top_k")),
        Option("doc_stride", UNSET, "tokens shared by neighbouring windows (default min(max_seq_len // 2, 128))",
               commands=PREDICT, check=positive_int("doc_stride", allow_zero=True)),
        Option("max_answer_len", UNSET, "longest answer in tokens (default 15)", commands=PREDICT,
               check=positive_int("max_answer_len")),
        Option("max_seq_len", UNSET, "tokens per window, special tokens included (default min(384, the model's))",
               commands=PREDICT, check=positive_int("max_seq_len")),
        Option("handle_impossible_answer", UNSET, "allow the empty answer (SQuAD v2.0 models)", commands=PREDICT,
               flag=True),
    ))

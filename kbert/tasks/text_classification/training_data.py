"""Training data of the text-classification family: rows ─► validated labels ─► tokenized batches.

    csv / tsv / jsonl / tfds: / RawExample lists ─► (optional renaming) ─► LabelSet
        (explicit > the dataset's > the checkpoint head's > inferred and counted, singletons reported)
    ─► targets (ids, multi-hot or values) ─► kbert.batching.dataset (tokenize in map, length buckets)

Example:
    >>> import warnings
    >>> from kbert.checkpoint import load_checkpoint
    >>> from kbert.tasks import get_task
    >>> from kbert.training.config import TrainConfig
    >>> config = TrainConfig(train="kbert/data/demo/sentiment_train.tsv", output="unused")
    >>> prepared = get_task("text-classification").prepare_training(
    ...     config, load_checkpoint("tests/fixtures/checkpoints/tiny-uncased-qa"), max_length=32)
    >>> prepared.labels.names, prepared.label_counts
    (('negative', 'positive'), {'negative': 200, 'positive': 200})
"""

from __future__ import annotations


from kbert.data.labels import LabelSet, check_label_counts, label_occurrences, rename_labels
from kbert.data.sources import load_examples, pair_columns
from kbert.errors import TrainingError
from kbert.tasks.base import EvaluationReport, PreparedTraining, TrainingPlan
from kbert.batching.dataset import make_dataset


def prepare(task_cls, config, checkpoint, max_length: int) -> PreparedTraining:
    """Read and validate every row of ``config.train`` / ``config.eval`` (nothing is written)."""
    from kbert.tasks.text_classification.scoring import score

    kind = task_cls.label_kind_for(checkpoint)
    read = dict(label_type=kind, format=config.format, text_column=config.text_column,
                text_pair_column=config.text_pair_column, label_column=config.label_column, download=config.download,
                encoding=config.encoding)
    train, declared = load_examples(config.train, limit=config.train_limit, **read)
    evaluation = load_examples(config.eval, limit=config.eval_limit, **read)[0] if config.eval is not None else None
    if config.label_names and kind != "regression":
        train = rename_labels(train, config.label_names)
        evaluation = None if evaluation is None else rename_labels(evaluation, config.label_names)
        declared = declared and [config.label_names.get(n, n) for n in declared]
    rows = checkpoint.head_outputs(task_cls.hf_head)  # None: no trained head
    inferred = not (config.labels or declared or (rows is not None and checkpoint.config.id2label))
    # Rows per label (for the run summary); singletons reported only when the labels come from the data.
    counts = check_label_counts(label_occurrences(train, kind), report=inferred, strict=config.strict_labels)
    if config.labels:
        labels = LabelSet(tuple(config.labels), kind)
    elif declared:
        labels = LabelSet(tuple(declared), kind)
    elif rows is not None and checkpoint.config.id2label and kind != "regression":
        labels = LabelSet.from_id2label(checkpoint.config.id2label, kind)
    else:
        labels = LabelSet.infer(train, kind)
    if rows is not None:
        if rows != labels.num_labels:
            raise TrainingError(
                f"{checkpoint.path}: its classifier head has {rows} outputs but the data has {labels.num_labels} "
                f"labels {list(labels.names)}; start from a checkpoint without a head (e.g. the base model)")
    targets = labels.encode(train)
    eval_targets = labels.encode(evaluation) if evaluation is not None else None
    train_texts = pair_columns(train, "the training data")
    eval_texts = pair_columns(evaluation, "the evaluation data") if evaluation is not None else None
    if eval_texts is not None and (eval_texts[1] is None) != (train_texts[1] is None):
        raise TrainingError(f"{evaluation[0].where}: the training data {'has' if train_texts[1] else 'has no'} "
                            f"text pairs but the evaluation data {'has' if eval_texts[1] else 'has no'}")
    if kind == "regression":
        targets, eval_targets = targets.reshape(-1, 1), None if eval_targets is None else eval_targets.reshape(-1, 1)
    tokenizer = checkpoint.tokenizer

    def build() -> TrainingPlan:
        train_data = make_dataset(tokenizer, train_texts[0], train_texts[1], targets, batch_size=config.batch_size,
                                  max_length=max_length, shuffle=True, seed=config.seed,
                                  bucket=config.bucket_by_length)
        if eval_texts is None:
            return TrainingPlan(train_data, None)
        eval_data = make_dataset(tokenizer, eval_texts[0], eval_texts[1], eval_targets, batch_size=config.batch_size,
                                 max_length=max_length)
        names = list(labels.names)

        def scorer(model) -> EvaluationReport:
            return score(kind, model, eval_data.dataset, names)

        return TrainingPlan(train_data, scorer, eval_data.num_examples)

    info = {"text_pair": train_texts[1] is not None, **({"label_names": config.label_names} if config.label_names else {})}
    return PreparedTraining(labels, labels.problem_type, build, label_counts=counts, checkpoint_info=info)


"""Training data of the text-classification family: rows ─► validated labels ─► tokenized batches.

    csv / tsv / jsonl / tfds: / RawExample lists ─► (optional renaming) ─► LabelSet
        (explicit > the dataset's > the checkpoint head's > inferred and counted, singletons reported)
    ─► targets (ids, multi-hot or values) ─► kbert.batching.dataset (tokenize in map, length buckets)

    shards, globs, TFRecord, large files (kbert.data.streaming.is_streamed) ─► streamed training rows
        (labels explicit > the checkpoint head's > one counting pass; steps from steps_per_epoch or that pass);
        evaluation data is read as above

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


import sys

from kbert.data.labels import LabelSet, check_counts, check_label_counts, label_occurrences, rename_labels, sort_names
from kbert.data.sources import load_examples, pair_columns
from kbert.errors import DataError, TrainingError
from kbert.tasks.base import EvaluationReport, PreparedTraining, TrainingPlan
from kbert.batching.dataset import TrainingData, make_dataset
from kbert.data import streaming


def prepare(task_cls, config, checkpoint, max_length: int) -> PreparedTraining:
    """Read and validate every row of ``config.train`` / ``config.eval`` (nothing is written)."""
    kind = task_cls.label_kind_for(checkpoint)
    read = dict(label_type=kind, format=config.format, text_column=config.text_column,
                text_pair_column=config.text_pair_column, label_column=config.label_column, download=config.download,
                encoding=config.encoding)
    if streaming.is_streamed(config.train, config.stream):
        return prepare_streamed(task_cls, config, checkpoint, max_length, kind, read)
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

    def train_data() -> TrainingData:
        return make_dataset(tokenizer, train_texts[0], train_texts[1], targets, batch_size=config.batch_size,
                            max_length=max_length, shuffle=True, seed=config.seed, bucket=config.bucket_by_length)

    build = _builder(train_data, kind, labels, eval_texts, eval_targets, config, tokenizer, max_length)
    info = {"text_pair": train_texts[1] is not None, **({"label_names": config.label_names} if config.label_names else {})}
    return PreparedTraining(labels, labels.problem_type, build, label_counts=counts, checkpoint_info=info)



def _builder(train_data, kind, labels, eval_texts, eval_targets, config, tokenizer, max_length):
    """``PreparedTraining.build``: the training batches of ``train_data()`` and the evaluation data's scorer."""
    from kbert.tasks.text_classification.scoring import score

    def build() -> TrainingPlan:
        training = train_data()
        if eval_texts is None:
            return TrainingPlan(training, None)
        eval_data = make_dataset(tokenizer, eval_texts[0], eval_texts[1], eval_targets, batch_size=config.batch_size,
                                 max_length=max_length)
        names = list(labels.names)

        def scorer(model) -> EvaluationReport:
            return score(kind, model, eval_data.dataset, names)

        return TrainingPlan(training, scorer, eval_data.num_examples)

    return build


def prepare_streamed(task_cls, config, checkpoint, max_length: int, kind: str, read: dict) -> PreparedTraining:
    """Training rows streamed from shards (:mod:`kbert.data.streaming`); one counting pass over them only when
    the labels or the steps per epoch are not given (it checks every row and reports singleton labels)."""
    source = streaming.stream_source(config.train, label_kind=kind, format=config.format,
                                     text_column=config.text_column, text_pair_column=config.text_pair_column,
                                     label_column=config.label_column, encoding=config.encoding)
    rows = checkpoint.head_outputs(task_cls.hf_head)  # None: no trained head
    head_labels = rows is not None and bool(checkpoint.config.id2label) and kind != "regression"
    inferred = kind == "class" and not config.labels and not head_labels
    counted = None
    if inferred or config.steps_per_epoch is None:
        counted = streaming.count_rows(source, limit=config.train_limit, renamed=config.label_names,
                                       progress=sys.stderr if config.verbose else None)
    counts = (check_counts(counted.counts, counted.first, report=inferred, strict=config.strict_labels)
              if counted is not None and kind == "class" else {})
    if config.labels:
        labels = LabelSet(tuple(config.labels), kind)
    elif head_labels:
        labels = LabelSet.from_id2label(checkpoint.config.id2label, kind)
    elif kind == "regression":
        labels = LabelSet(("LABEL_0",), kind)
    else:
        if len(counts) < 2:
            raise DataError(f"{source.shards[0]}: only the class label(s) {list(counts)} occur in the training "
                                f"rows; a classifier needs at least two")
        labels = LabelSet(sort_names(counts), kind)
    for name in counts:
        if name not in labels.names:
            raise DataError(f"{counted.first[name]}: label {name!r} is not one of {list(labels.names)}")
    if rows is not None and rows != labels.num_labels:
        raise TrainingError(
            f"{checkpoint.path}: its classifier head has {rows} outputs but the data has {labels.num_labels} "
            f"labels {list(labels.names)}; start from a checkpoint without a head (e.g. the base model)")
    evaluation = eval_targets = eval_texts = None
    if config.eval is not None:
        evaluation = load_examples(config.eval, limit=config.eval_limit, **read)[0]
        if config.label_names and kind != "regression":
            evaluation = rename_labels(evaluation, config.label_names)
        eval_targets = labels.encode(evaluation)
        eval_targets = eval_targets.reshape(-1, 1) if kind == "regression" else eval_targets
        eval_texts = pair_columns(evaluation, "the evaluation data")
        if (eval_texts[1] is not None) != source.has_pairs:
            raise TrainingError(f"{evaluation[0].where}: the training data {'has' if source.has_pairs else 'has no'} "
                                f"text pairs but the evaluation data {'has' if eval_texts[1] else 'has no'}")
    steps = config.steps_per_epoch or -(-counted.rows // config.batch_size)
    worker, num_workers = streaming.this_worker(config.strategy)
    tokenizer = checkpoint.tokenizer

    def train_data() -> TrainingData:
        dataset, described = streaming.training_dataset(
            source, tokenizer, labels.names, batch_size=config.batch_size, max_length=max_length,
            renamed=config.label_names, shuffle_buffer=config.shuffle_buffer, seed=config.seed,
            bucket=config.bucket_by_length, num_workers=num_workers, worker=worker,
            limit=config.train_limit)
        counted_steps = "given" if config.steps_per_epoch else "rows / batch size"
        return TrainingData(dataset, counted.rows if counted is not None else None, steps, repeats=True,
                            source=f"{described}, {steps} steps/epoch ({counted_steps})")

    build = _builder(train_data, kind, labels, eval_texts, eval_targets, config, tokenizer, max_length)
    info = {"text_pair": source.has_pairs, **({"label_names": config.label_names} if config.label_names else {})}
    return PreparedTraining(labels, labels.problem_type, build, label_counts=counts, checkpoint_info=info)

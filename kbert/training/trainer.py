"""``kbert.train(...)``: fine-tune a checkpoint on labelled texts and write a Hugging Face checkpoint.

    data ─► validate every example and label (nothing is written before this passes)
         ─► task model (backbone + head) in the strategy's scope ─► AdamW, warm-up + linear decay
         ─► fit(tf.data) with evaluation, early stopping, keep-best, backup/resume, TensorBoard, curves
         ─► output/: config.json + model.safetensors + tokenizer (HF format), metrics.json,
            training_config.json, history.json, training_curves.png, logs/

Re-running the same command after an interruption resumes from the last finished epoch.

Example:
    >>> import tempfile, kbert
    >>> result = kbert.train(train="kbert/data/demo/sentiment_train.tsv", eval="kbert/data/demo/sentiment_test.tsv",
    ...                      output=tempfile.mkdtemp(), model="tests/fixtures/checkpoints/tiny-uncased-qa",
    ...                      epochs=1, verbose=0)
    >>> sorted(result.metrics)
    ['accuracy', 'examples', 'loss', 'macro_f1']
    >>> (result.output / "model.safetensors").is_file()
    True
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import shutil
from collections.abc import Callable

import keras
import numpy as np

from kbert.atomic_files import write_json
from kbert.checkpoint import load_checkpoint
from kbert.checkpoint.hf_names import backbone_slots
from kbert.checkpoint.save import find_backbone, save_hf_checkpoint
from kbert.data.labels import LabelSet, rename_labels
from kbert.data.sources import load_examples, pair_columns
from kbert.errors import TrainingError
from kbert.tasks import get_task
from kbert.training.callbacks import Evaluation, HistoryFile
from kbert.training.compile import compile_for_training
from kbert.training.config import TrainConfig
from kbert.training.dataset import TrainingData, make_dataset
from kbert.training.evaluation import predict, score
from kbert.training.optimizer import build_optimizer, warmup_steps
from kbert.training.strategy import make_strategy
from kbert.training.tagging import encode_tags, load_tagged, score_tagged, tag_label_set, tagged_dataset
from kbert.tasks.token_classification import is_entity_scheme

logger = logging.getLogger(__name__)
STATE = ".kbert-state"  # inside the run folder: backup for resuming, best weights; removed when done


@dataclasses.dataclass(frozen=True)
class TrainResult:
    output: pathlib.Path  # the Hugging Face checkpoint folder
    metrics: dict  # final evaluation metrics (empty without evaluation data)
    history: list  # one dict per epoch


def label_kind(task_name: str, checkpoint) -> str:
    """``class``, ``multi_label``, ``regression`` or ``tags`` for a task name (and the checkpoint's problem_type)."""
    task = get_task(task_name)
    if task.name == "token-classification":
        return "tags"
    if task.name == "multi-label-classification":
        return "multi_label"
    if task.name == "text-regression":
        return "regression"
    if task.name != "text-classification":
        raise TrainingError(f"kbert train does not train task {task_name!r} yet")
    return {"regression": "regression", "multi_label_classification": "multi_label"}.get(
        checkpoint.config.problem_type, "class")


@dataclasses.dataclass(frozen=True)
class _Prepared:
    """Validated data and labels, ready for tokenization."""

    labels: LabelSet
    train_texts: tuple
    train_targets: np.ndarray
    eval_texts: tuple | None
    eval_targets: np.ndarray | None
    text_pair: bool


def prepare_data(config: TrainConfig, checkpoint, kind: str) -> _Prepared:
    """Read and validate all data; pick the label set (explicit > dataset's > checkpoint head's > inferred)."""
    read = dict(label_type=kind, format=config.format, text_column=config.text_column,
                text_pair_column=config.text_pair_column, label_column=config.label_column, download=config.download)
    train, declared = load_examples(config.train, limit=config.train_limit, **read)
    evaluation = load_examples(config.eval, limit=config.eval_limit, **read)[0] if config.eval is not None else None
    if config.label_names and kind != "regression":
        train = rename_labels(train, config.label_names)
        evaluation = None if evaluation is None else rename_labels(evaluation, config.label_names)
        declared = declared and [config.label_names.get(n, n) for n in declared]
    head = checkpoint.task_head("classifier", get_task(config.task).hf_architecture)
    if config.labels:
        labels = LabelSet(tuple(config.labels), kind)
    elif declared:
        labels = LabelSet(tuple(declared), kind)
    elif head is not None and checkpoint.config.id2label and kind != "regression":
        labels = LabelSet.from_id2label(checkpoint.config.id2label, kind)
    else:
        labels = LabelSet.infer(train, kind)
    if head is not None:
        rows = head["weight"].shape[0]
        if rows != labels.num_labels:
            raise TrainingError(
                f"{checkpoint.path}: its classifier head has {rows} outputs but the data has {labels.num_labels} "
                f"labels {list(labels.names)}; start from a checkpoint without a head (e.g. the base model)")
    targets = labels.encode(train)
    eval_targets = labels.encode(evaluation) if evaluation is not None else None
    train_cols = pair_columns(train, "the training data")
    eval_cols = pair_columns(evaluation, "the evaluation data") if evaluation is not None else None
    if eval_cols is not None and (eval_cols[1] is None) != (train_cols[1] is None):
        raise TrainingError(f"{evaluation[0].where}: the training data {'has' if train_cols[1] else 'has no'} "
                            f"text pairs but the evaluation data {'has' if eval_cols[1] else 'has no'}")
    if kind == "regression":
        targets, eval_targets = targets.reshape(-1, 1), None if eval_targets is None else eval_targets.reshape(-1, 1)
    return _Prepared(labels, train_cols, targets, eval_cols, eval_targets, train_cols[1] is not None)


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What a run trains on: labels, training batches, and how to score the evaluation data."""

    labels: LabelSet
    train: TrainingData
    scorer: Callable[[keras.Model], dict] | None  # model -> metrics of the evaluation data
    eval_examples: int | None
    text_pair: bool = False
    loss_options: dict = dataclasses.field(default_factory=dict)  # keyword arguments of the task's loss()


def _classification_plan(config: TrainConfig, checkpoint, kind: str, max_length: int) -> Callable[[], _Plan]:
    """Validate the data now; return what builds the datasets (after the output folder exists)."""
    data = prepare_data(config, checkpoint, kind)
    tokenizer = checkpoint.tokenizer

    def build() -> _Plan:
        train_data = make_dataset(tokenizer, list(data.train_texts[0]), _list(data.train_texts[1]),
                                  data.train_targets, batch_size=config.batch_size, max_length=max_length,
                                  shuffle=True, seed=config.seed, bucket=config.bucket_by_length)
        if data.eval_texts is None:
            return _Plan(data.labels, train_data, None, None, data.text_pair)
        eval_data = make_dataset(tokenizer, list(data.eval_texts[0]), _list(data.eval_texts[1]), data.eval_targets,
                                 batch_size=config.batch_size, max_length=max_length)
        names = list(data.labels.names)

        def scorer(model):
            logits, labels = predict(model, eval_data.dataset)
            return score(kind, labels, logits, names)

        return _Plan(data.labels, train_data, scorer, eval_data.num_examples, data.text_pair)

    return build


def _tagging_plan(config: TrainConfig, checkpoint, max_length: int) -> Callable[[], _Plan]:
    """Token classification: read and validate tagged sentences now; windows and batches later."""
    read = dict(format=config.format, tag_column=config.tag_column)
    train_sentences = load_tagged(config.train, limit=config.train_limit, **read)
    eval_sentences = load_tagged(config.eval, limit=config.eval_limit, **read) if config.eval is not None else None
    head = checkpoint.task_head("classifier", get_task(config.task).hf_architecture)
    if config.labels:
        labels = LabelSet(tuple(config.labels))
    elif head is not None and checkpoint.config.id2label:
        labels = LabelSet.from_id2label(checkpoint.config.id2label)
    else:
        labels = tag_label_set(train_sentences)
    if head is not None and head["weight"].shape[0] != labels.num_labels:
        raise TrainingError(
            f"{checkpoint.path}: its token classifier head has {head['weight'].shape[0]} outputs but the data has "
            f"{labels.num_labels} labels {list(labels.names)}; start from a checkpoint without a head")
    for sentences in (train_sentences, eval_sentences or []):
        encode_tags(sentences, labels)  # every tag checked before anything is written
    tokenizer = checkpoint.tokenizer
    options = dict(batch_size=config.batch_size, max_length=max_length, stride=config.stride)

    def build() -> _Plan:
        training = tagged_dataset(tokenizer, train_sentences, labels, training=True, seed=config.seed,
                                  bucket=config.bucket_by_length, label_all_pieces=config.label_all_pieces, **options)
        train_data = training.data
        labelled = training.windows.labelled_tokens()
        if labelled == 0:
            raise TrainingError(f"{config.train}: no word of the training data has a word piece to carry its label "
                                f"(every word is made only of characters the tokenizer drops)")
        # Length buckets: weigh every labelled token alike, as random batches do (kbert.training.token_loss).
        loss_options = ({"labelled_tokens_per_batch": labelled / train_data.num_batches}
                        if config.bucket_by_length else {})
        if eval_sentences is None:
            return _Plan(labels, train_data, None, None, loss_options=loss_options)
        evaluation = tagged_dataset(tokenizer, eval_sentences, labels, training=False, **options)
        scheme = "entities" if is_entity_scheme(labels.names) else "tags"
        return _Plan(labels, train_data, lambda model: score_tagged(model, evaluation, labels.names, scheme),
                     len(eval_sentences), loss_options=loss_options)

    return build


def train(config: TrainConfig | None = None, *, callbacks: tuple = (), **options) -> TrainResult:
    """Fine-tune; ``options`` are :class:`~kbert.training.config.TrainConfig` fields (or pass a config).

    ``callbacks`` are extra Keras callbacks, run after kbert's own (so they see the ``val_*`` metrics).
    """
    config = config or TrainConfig(**options)
    keras.utils.set_random_seed(config.seed)
    checkpoint = load_checkpoint(config.model)
    kind = label_kind(config.task, checkpoint)
    max_length = min(config.max_length, checkpoint.tokenizer.model_max_length)
    # Every check on the data happens here, before anything is written.
    build_plan = (_tagging_plan(config, checkpoint, max_length) if kind == "tags"
                  else _classification_plan(config, checkpoint, kind, max_length))

    output = pathlib.Path(config.output)
    state = output / STATE
    output.mkdir(parents=True, exist_ok=True)
    state.mkdir(exist_ok=True)

    strategy = make_strategy(config.strategy)
    plan = build_plan()
    total_steps = plan.train.num_batches * config.epochs
    with strategy.scope():
        task = get_task(config.task)(checkpoint, id2label=plan.labels.id2label(),
                                     problem_type=None if kind == "tags" else plan.labels.problem_type)
        model = task.build_model(dropout=config.dropout)
        backbone = find_backbone(model)
        if config.freeze_backbone:
            backbone.trainable = False
        no_decay = [s.variable for s in backbone_slots(backbone) + task.head_slots(model)
                    if s.hf_name.endswith(".bias") or "LayerNorm" in s.hf_name]
        optimizer = build_optimizer(learning_rate=config.learning_rate,
                                    warmup=warmup_steps(config.warmup, total_steps), total_steps=total_steps,
                                    weight_decay=config.weight_decay, clip_norm=config.clip_norm,
                                    no_decay_variables=no_decay)
        trainable = keras.Model(model.input, model.output["logits"], name=model.name)
        compile_for_training(trainable, optimizer, task.loss(**plan.loss_options), task.keras_metrics(),
                             config.jit_compile)

    callbacks = _callbacks(config, task, output, state, plan.scorer) + list(callbacks)
    if config.verbose:
        unit = "sentences" if kind == "tags" else "examples"
        print(f"kbert: {plan.train.num_examples} training {'windows' if kind == 'tags' else 'examples'}, "
              f"{plan.train.num_batches} batches/epoch, {config.epochs} epochs; evaluation: "
              f"{f'{plan.eval_examples} {unit}' if plan.scorer else 'none'}; labels: {list(plan.labels.names)}; "
              f"{strategy.num_replicas_in_sync} replica(s)")
    trainable.fit(plan.train.dataset, epochs=config.epochs, callbacks=callbacks, verbose=config.verbose,
                  shuffle=False)

    best = state / "best.weights.h5"
    if best.is_file():
        trainable.load_weights(best)
    metrics = {}
    evaluation = next((c for c in callbacks if isinstance(c, Evaluation)), None)
    if evaluation is not None:
        if best.is_file():
            evaluation.on_epoch_end(-1)  # score the restored best weights
        metrics = evaluation.last
    history = next(c for c in callbacks if isinstance(c, HistoryFile)).epochs
    save_hf_checkpoint(task, model, output, text_pair=plan.text_pair,
                       kbert_info={"labels_kind": kind, "max_length": max_length,
                                   **({"stride": config.stride} if kind == "tags" else {}),
                                   **({"label_names": config.label_names} if config.label_names else {})})
    write_json(output / "metrics.json", metrics)
    write_json(output / "training_config.json", config.to_json())
    shutil.rmtree(state, ignore_errors=True)
    return TrainResult(output, metrics, history)


def _callbacks(config, task, output, state, scorer) -> list:
    callbacks = [keras.callbacks.BackupAndRestore(str(state / "backup"))]
    if scorer is not None:
        monitor = config.monitor or task.monitor
        mode = "min" if monitor.endswith(("loss", "mse")) else "max"
        callbacks.append(Evaluation(scorer))
        callbacks.append(keras.callbacks.ModelCheckpoint(str(state / "best.weights.h5"), monitor=monitor, mode=mode,
                                                         save_best_only=True, save_weights_only=True))
        if config.early_stopping:
            callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=config.early_stopping))
    callbacks.append(HistoryFile(output))
    callbacks.append(keras.callbacks.TensorBoard(str(output / "logs")))
    return callbacks


def _list(texts):
    return None if texts is None else list(texts)

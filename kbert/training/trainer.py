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

import keras
import numpy as np

from kbert.atomic_files import write_json
from kbert.checkpoint import load_checkpoint
from kbert.checkpoint.hf_names import backbone_slots
from kbert.checkpoint.save import find_backbone, save_hf_checkpoint
from kbert.data.labels import LabelSet
from kbert.data.sources import load_examples, pair_columns
from kbert.errors import TrainingError
from kbert.tasks import get_task
from kbert.training.callbacks import Evaluation, HistoryFile
from kbert.training.config import TrainConfig
from kbert.training.dataset import make_dataset
from kbert.training.optimizer import build_optimizer, warmup_steps
from kbert.training.strategy import make_strategy

logger = logging.getLogger(__name__)
STATE = ".kbert-state"  # inside the run folder: backup for resuming, best weights; removed when done


@dataclasses.dataclass(frozen=True)
class TrainResult:
    output: pathlib.Path  # the Hugging Face checkpoint folder
    metrics: dict  # final evaluation metrics (empty without evaluation data)
    history: list  # one dict per epoch


def label_kind(task_name: str, checkpoint) -> str:
    """``class``, ``multi_label`` or ``regression`` for a task name (and the checkpoint's problem_type)."""
    task = get_task(task_name)
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


def train(config: TrainConfig | None = None, *, callbacks: tuple = (), **options) -> TrainResult:
    """Fine-tune; ``options`` are :class:`~kbert.training.config.TrainConfig` fields (or pass a config).

    ``callbacks`` are extra Keras callbacks, run after kbert's own (so they see the ``val_*`` metrics).
    """
    config = config or TrainConfig(**options)
    keras.utils.set_random_seed(config.seed)
    checkpoint = load_checkpoint(config.model)
    kind = label_kind(config.task, checkpoint)
    data = prepare_data(config, checkpoint, kind)  # every check on the data happens before any write
    tokenizer = checkpoint.tokenizer
    max_length = min(config.max_length, tokenizer.model_max_length)

    output = pathlib.Path(config.output)
    state = output / STATE
    output.mkdir(parents=True, exist_ok=True)
    state.mkdir(exist_ok=True)

    strategy = make_strategy(config.strategy)
    train_data = make_dataset(tokenizer, list(data.train_texts[0]), _list(data.train_texts[1]), data.train_targets,
                              batch_size=config.batch_size, max_length=max_length, shuffle=True, seed=config.seed,
                              bucket=config.bucket_by_length)
    eval_data = None
    if data.eval_texts is not None:
        eval_data = make_dataset(tokenizer, list(data.eval_texts[0]), _list(data.eval_texts[1]), data.eval_targets,
                                 batch_size=config.batch_size, max_length=max_length)
    total_steps = train_data.num_batches * config.epochs
    problem_type = data.labels.problem_type
    with strategy.scope():
        task = get_task(config.task)(checkpoint, id2label=data.labels.id2label(), problem_type=problem_type)
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
        trainable.compile(optimizer=optimizer, loss=task.loss(), metrics=task.keras_metrics(),
                          jit_compile=config.jit_compile)

    callbacks = _callbacks(config, task, output, state, eval_data, data.labels) + list(callbacks)
    if config.verbose:
        print(f"kbert: {train_data.num_examples} training examples, {train_data.num_batches} batches/epoch, "
              f"{config.epochs} epochs; evaluation: {eval_data.num_examples if eval_data else 'none'}; "
              f"labels: {list(data.labels.names)}; {strategy.num_replicas_in_sync} replica(s)")
    trainable.fit(train_data.dataset, epochs=config.epochs, callbacks=callbacks, verbose=config.verbose, shuffle=False)

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
    save_hf_checkpoint(task, model, output, text_pair=data.text_pair,
                       kbert_info={"labels_kind": kind, "max_length": max_length})
    write_json(output / "metrics.json", metrics)
    write_json(output / "training_config.json", config.to_json())
    shutil.rmtree(state, ignore_errors=True)
    return TrainResult(output, metrics, history)


def _callbacks(config, task, output, state, eval_data, labels) -> list:
    callbacks = [keras.callbacks.BackupAndRestore(str(state / "backup"))]
    if eval_data is not None:
        monitor = config.monitor or task.monitor
        mode = "min" if monitor.endswith(("loss", "mse")) else "max"
        callbacks.append(Evaluation(eval_data.dataset, task.label_kind, list(labels.names)))
        callbacks.append(keras.callbacks.ModelCheckpoint(str(state / "best.weights.h5"), monitor=monitor, mode=mode,
                                                         save_best_only=True, save_weights_only=True))
        if config.early_stopping:
            callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=config.early_stopping))
    callbacks.append(HistoryFile(output))
    callbacks.append(keras.callbacks.TensorBoard(str(output / "logs")))
    return callbacks


def _list(texts):
    return None if texts is None else list(texts)

"""``kbert.train(...)``: fine-tune a checkpoint on labelled texts and write a Hugging Face checkpoint.

    data ─► validate every example and label (nothing is written before this passes)
         ─► task model (backbone + head) in the strategy's scope ─► AdamW, warm-up + linear decay
         ─► fit(tf.data) with evaluation, early stopping, keep-best, backup/resume, TensorBoard, curves
         ─► output/: config.json + model.safetensors + tokenizer (HF format), metrics.json,
            training_config.json, history.json, training_curves.png, the task's evaluation plots
            (confusion_matrix.png / entity_f1.png), logs/

The task (``config.task``, see :mod:`kbert.tasks.registry`) reads and validates the data, builds the
batches and the model, and picks the loss, metrics and monitored score; this module only runs it.

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

from kbert.atomic_files import write_json
from kbert.checkpoint import load_checkpoint
from kbert.checkpoint.hf_names import backbone_slots
from kbert.checkpoint.save import find_backbone, save_hf_checkpoint
from kbert.tasks import get_task
from kbert.tasks.base import PreparedTraining
from kbert.training.callbacks import EpochBackup, Evaluation, HistoryFile, KeepBest
from kbert.training.compile import compile_for_training
from kbert.training.config import TrainConfig
from kbert.training.optimizer import build_optimizer, warmup_steps
from kbert.training.strategy import make_strategy

logger = logging.getLogger(__name__)
STATE = ".kbert-state"  # inside the run folder: backup for resuming, best weights; removed when done


@dataclasses.dataclass(frozen=True)
class TrainResult:
    output: pathlib.Path  # the Hugging Face checkpoint folder
    metrics: dict  # final evaluation metrics (empty without evaluation data)
    history: list  # one dict per epoch
    plots: tuple = ()  # PNG figures of the final evaluation in the run folder (confusion matrix, per-type F1)


def train(config: TrainConfig | None = None, *, callbacks: tuple = (), **options) -> TrainResult:
    """Fine-tune; ``options`` are :class:`~kbert.training.config.TrainConfig` fields (or pass a config).

    ``callbacks`` are extra Keras callbacks, run after kbert's own (so they see the ``val_*`` metrics).
    """
    config = config or TrainConfig.from_options(**options)
    keras.utils.set_random_seed(config.seed)
    checkpoint = load_checkpoint(config.model)
    task_cls = get_task(config.task)
    max_length = min(config.max_length, checkpoint.tokenizer.model_max_length)
    # Every check on the data happens here, before anything is written.
    prepared = task_cls.prepare_training(config, checkpoint, max_length)

    output = pathlib.Path(config.output)
    state = output / STATE
    output.mkdir(parents=True, exist_ok=True)
    state.mkdir(exist_ok=True)

    strategy = make_strategy(config.strategy)
    plan = prepared.build()
    total_steps = plan.train.num_batches * config.epochs
    with strategy.scope():
        id2label = prepared.labels.id2label() if prepared.labels is not None else None
        task = task_cls(checkpoint, id2label=id2label, problem_type=prepared.problem_type)
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
        trainable, loss, metrics = task.training_model(model, plan.loss_options, config.task_options)
        compile_for_training(trainable, optimizer, loss, metrics, config.jit_compile)

    callbacks = _callbacks(config, task, output, state, plan.scorer) + list(callbacks)
    if config.verbose:
        print(summary(prepared, plan, config, strategy.num_replicas_in_sync))
    trainable.fit(plan.train.dataset, epochs=config.epochs, callbacks=callbacks, verbose=config.verbose,
                  shuffle=False)

    best = state / "best.weights.h5"
    if best.is_file():
        trainable.load_weights(best)
    metrics, plots = {}, []
    evaluation = next((c for c in callbacks if isinstance(c, Evaluation)), None)
    if evaluation is not None:
        if best.is_file():
            evaluation.on_epoch_end(-1)  # score the restored best weights
        metrics = evaluation.last.metrics
        plots = task.write_plots(evaluation.last, output)
    history = next(c for c in callbacks if isinstance(c, HistoryFile)).epochs
    info = {"text_pair": False, **prepared.checkpoint_info}
    save_hf_checkpoint(task, model, output, text_pair=info.pop("text_pair"),
                       kbert_info={"max_length": max_length, **info})
    write_json(output / "metrics.json", metrics)
    write_json(output / "training_config.json", config.to_json())
    shutil.rmtree(state, ignore_errors=True)
    return TrainResult(output, metrics, history, tuple(plots))


def summary(prepared: PreparedTraining, plan, config: TrainConfig, replicas: int) -> str:
    """The line ``kbert train`` prints before fitting: data sizes, labels with their row counts, replicas."""
    train_unit, eval_unit = prepared.units
    evaluation = f"{plan.eval_examples} {eval_unit}" if plan.scorer else "none"
    counts = prepared.label_counts
    names = prepared.labels.names if prepared.labels is not None else tuple(counts)
    labels = (", ".join(f"{name} ({counts[name]})" if name in counts else name for name in names)
              if counts else list(names) or "none")
    return (f"kbert: {plan.train.num_examples} training {train_unit}, {plan.train.num_batches} batches/epoch, "
            f"{config.epochs} epochs; evaluation: {evaluation}; labels: {labels}; {replicas} replica(s)")


def _callbacks(config, task, output, state, scorer) -> list:
    backup = EpochBackup(str(state / "backup"))
    callbacks = [backup]
    if scorer is not None:
        monitor = config.monitor or task.monitor
        mode = "min" if monitor.endswith(("loss", "mse")) else "max"
        callbacks.append(Evaluation(scorer))
        callbacks.append(KeepBest(str(state / "best.weights.h5"), monitor=monitor, mode=mode, backup=backup))
        if config.early_stopping:
            callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=config.early_stopping))
    callbacks.append(HistoryFile(output))
    callbacks.append(keras.callbacks.TensorBoard(str(output / "logs")))
    return callbacks

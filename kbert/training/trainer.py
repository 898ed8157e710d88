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
from kbert.checkpoint.save import find_backbone, model_slots, save_hf_checkpoint
from kbert.data.streaming import translated_errors
from kbert.modeling.mixed_precision import dtype_policy, float32_outputs, float32_softmax
from kbert.tasks import get_task
from kbert.tasks.base import PreparedTraining
from kbert.training.callbacks import EpochBackup, Evaluation, HistoryFile, KeepBest
from kbert.training.compile import compile_for_training
from kbert.training.config import TrainConfig
from kbert.training.multiworker_fit import prepare_fit
from kbert.training.optimizer import build_optimizer, decays, layer_learning_rate_scales, warmup_steps
from kbert.training.strategy import make_strategy, worker_role

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
    role = worker_role(config.strategy)  # TF_CONFIG checked before anything runs
    strategy = make_strategy(config.strategy, config.tpu)  # multi-worker: before TensorFlow runs any op
    run = TrainingRun(config)  # every check on the data happens here, before anything is written
    output = pathlib.Path(config.output)
    # The chief writes the run folder; another worker keeps its backups and scratch files in a folder of its own
    # (every worker restores its own backup on resume: all hold the same weights after each synchronous epoch).
    folder = output if role.is_chief else output / f"{STATE}-{role.name}"
    state = folder / STATE
    state.mkdir(parents=True, exist_ok=True)

    run.build(strategy)
    callbacks = run.callbacks(folder, state) + list(callbacks)
    if config.strategy == "multiworker":
        prepare_fit(run.trainable, run.plan.train.dataset)  # two Keras 3 failures under this strategy
    if config.verbose and role.is_chief:
        print(summary(run.prepared, run.plan, config, strategy.num_replicas_in_sync))
        resumed = resumed_epoch(state)
        if resumed is not None and run.plan.train.repeats:
            print(f"kbert: resuming at epoch {resumed + 1}: the streamed input restarts at its first rows (the epoch "
                  f"restarts; its data position is not restored)")
    train_data = run.plan.train
    with translated_errors():  # a bad streamed row stops fit: kbert's DataError naming shard and line
        run.trainable.fit(train_data.dataset, epochs=config.epochs, callbacks=callbacks,
                          steps_per_epoch=train_data.num_batches if train_data.repeats else None,
                          verbose=config.verbose if role.is_chief else 0, shuffle=False)
    if not role.is_chief:
        shutil.rmtree(folder, ignore_errors=True)
        return TrainResult(output, {}, [], ())
    result = run.finish(callbacks, output, best=state / "best.weights.h5")
    shutil.rmtree(state, ignore_errors=True)
    return result


class TrainingRun:
    """The parts of one training run, in the order :func:`train` uses them; ``kbert.tuning`` builds its
    trials from the same parts (a trial is a run whose hyperparameters the tuner picks).

    ``TrainingRun(config)`` seeds Keras, loads the checkpoint and reads and validates all data (nothing is
    written); :meth:`build` makes the batches, the task model and its optimizer in a strategy's scope;
    :meth:`callbacks` gives kbert's callbacks; :meth:`finish` restores the best weights, scores them and
    writes the Hugging Face checkpoint.
    """

    def __init__(self, config: TrainConfig, checkpoint=None, prepared: PreparedTraining | None = None):
        self.config = config
        keras.utils.set_random_seed(config.seed)
        self.checkpoint = checkpoint if checkpoint is not None else load_checkpoint(config.model)
        self.task_cls = get_task(config.task)
        self.max_length = min(config.max_length, self.checkpoint.tokenizer.model_max_length)
        self.prepared = prepared if prepared is not None else self.task_cls.prepare_training(
            config, self.checkpoint, self.max_length)

    def build(self, strategy, schedule_epochs: int | None = None) -> None:
        """Batches (``plan``), ``task``, ``model`` (task outputs) and ``trainable`` (what ``fit`` trains),
        compiled with AdamW whose schedule spans ``schedule_epochs`` (default: ``config.epochs``)."""
        config = self.config
        self.plan = self.prepared.build()
        total_steps = self.plan.train.num_batches * (schedule_epochs or config.epochs)
        with strategy.scope(), dtype_policy(config.precision):
            self.task = self.new_task()
            self.model = float32_outputs(self.task.build_model(dropout=config.dropout))
            if config.precision != "float32":  # attention dropout would put Keras's softmax in 16 bits
                float32_softmax(self.model)
            backbone = find_backbone(self.model)
            if config.freeze_backbone:
                backbone.trainable = False
            slots = model_slots(self.task, self.model)
            no_decay = [s.variable for s in slots if not decays(s.hf_name)]
            optimizer = build_optimizer(learning_rate=config.learning_rate,
                                        warmup=warmup_steps(config.warmup, total_steps), total_steps=total_steps,
                                        weight_decay=config.weight_decay, clip_norm=config.clip_norm,
                                        no_decay_variables=no_decay,
                                        learning_rate_scales=layer_learning_rate_scales(
                                            slots, config.layer_lr_decay, self.checkpoint.config.num_hidden_layers,
                                            self.checkpoint.family))
            self.trainable, loss, metrics = self.task.training_model(self.model, self.plan.loss_options,
                                                                     config.task_options)
            compile_for_training(self.trainable, optimizer, loss, metrics, config.jit_compile)

    def new_task(self):
        """The task for this run's data (its labels and problem type); builds no model."""
        id2label = self.prepared.labels.id2label() if self.prepared.labels is not None else None
        return self.task_cls(self.checkpoint, id2label=id2label, problem_type=self.prepared.problem_type)

    @property
    def monitor(self) -> str:
        """The watched validation score: ``config.monitor``, else the task's (which may depend on its labels)."""
        if self.config.monitor:
            return self.config.monitor
        return (self.task if hasattr(self, "task") else self.new_task()).monitor

    @property
    def monitor_mode(self) -> str:
        """``min`` for losses and errors, else ``max``."""
        return "min" if self.monitor.endswith(("loss", "mse")) else "max"

    def scoring_callbacks(self) -> list:
        """The evaluation callback (``val_*`` logs after every epoch) and early stopping on :attr:`monitor`;
        none without evaluation data. A tuner's trials use these alone."""
        if self.plan.scorer is None:
            return []
        callbacks = [Evaluation(self.plan.scorer)]
        if self.config.early_stopping:
            callbacks.append(keras.callbacks.EarlyStopping(monitor=self.monitor, mode=self.monitor_mode,
                                                           patience=self.config.early_stopping))
        return callbacks

    def callbacks(self, output: pathlib.Path, state: pathlib.Path) -> list:
        """The per-epoch backup for resuming (in ``state``), :meth:`scoring_callbacks`, keep-best (its weights
        in ``state``), ``history.json`` with the curves, and TensorBoard logs (in ``output``)."""
        backup = EpochBackup(str(state / "backup"))
        keep_best = ([KeepBest(str(state / "best.weights.h5"), monitor=self.monitor, mode=self.monitor_mode,
                               backup=backup)] if self.plan.scorer is not None else [])
        return [backup, *self.scoring_callbacks(), *keep_best, HistoryFile(output),
                keras.callbacks.TensorBoard(str(output / "logs"))]

    def finish(self, callbacks: list, output: pathlib.Path, best: pathlib.Path | None = None) -> TrainResult:
        """Load ``best`` weights if that file exists, score them, write plots, the HF checkpoint and JSON files."""
        if best is not None and best.is_file():
            self.trainable.load_weights(best)
        metrics, plots = {}, []
        evaluation = next((c for c in callbacks if isinstance(c, Evaluation)), None)
        if evaluation is not None:
            if evaluation.model is None:  # a callback that never ran in fit
                evaluation.set_model(self.trainable)
            if evaluation.last is None or (best is not None and best.is_file()):
                evaluation.on_epoch_end(-1)  # score the restored best weights (or weights never scored)
            metrics = evaluation.last.metrics
            plots = self.task.write_plots(evaluation.last, output)
        history = next((c.epochs for c in callbacks if isinstance(c, HistoryFile)), [])
        self.save(output)
        write_json(output / "metrics.json", metrics)
        write_json(output / "training_config.json", self.config.to_json())
        return TrainResult(output, metrics, history, tuple(plots))

    def save(self, output: pathlib.Path) -> None:
        """The model's Hugging Face checkpoint (config.json with kbert's section, weights, tokenizer files)."""
        info = {"text_pair": False, **self.prepared.checkpoint_info}
        save_hf_checkpoint(self.task, self.model, output, text_pair=info.pop("text_pair"),
                           kbert_info={"max_length": self.max_length, **info})


def resumed_epoch(state: pathlib.Path) -> int | None:
    """The epoch a re-run resumes at (read from the backup :class:`EpochBackup` keeps in ``state``), else None."""
    import json

    metadata = state / "backup" / "training_metadata.json"
    try:
        return int(json.loads(metadata.read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def summary(prepared: PreparedTraining, plan, config: TrainConfig, replicas: int) -> str:
    """The line ``kbert train`` prints before fitting: data sizes, labels with their row counts, replicas."""
    train_unit, eval_unit = prepared.units
    evaluation = f"{plan.eval_examples} {eval_unit}" if plan.scorer else "none"
    counts = prepared.label_counts
    names = prepared.labels.names if prepared.labels is not None else tuple(counts)
    labels = (", ".join(f"{name} ({counts[name]})" if name in counts else name for name in names)
              if counts else list(names) or "none")
    train = plan.train
    rows = "uncounted" if train.num_examples is None else train.num_examples
    source = f" ({train.source})" if train.source else ""
    return (f"kbert: {rows} training {train_unit}{source}, {train.num_batches} batches/epoch, "
            f"{config.epochs} epochs; evaluation: {evaluation}; labels: {labels}; {replicas} replica(s)")

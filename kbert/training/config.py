"""Every fine-tuning option in one frozen dataclass (the CLI flags and TOML recipes map onto it).

Options every task shares are fields; a task's own options (declared in its package's ``SPEC``) live
in ``task_options``, checked and completed with their defaults by the task's spec.
:meth:`TrainConfig.from_options` sorts keyword arguments into the two.

Example:
    >>> from kbert.training.config import TrainConfig
    >>> config = TrainConfig(train="train.tsv", output="runs/sst2", epochs=1)
    >>> config.learning_rate, config.warmup, config.batch_size
    (5e-05, 0.1, 32)
    >>> TrainConfig.from_options(train="wnut.conll", output="runs/ner", task="ner", stride=16).task_options
    {'tag_column': None, 'label_all_pieces': False, 'stride': 16}
    >>> TrainConfig(train="t.tsv", output="o", batch_size=0)
    Traceback (most recent call last):
    ...
    kbert.errors.TrainingError: batch_size must be a positive integer, got 0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from kbert.errors import KbertError, TrainingError
from kbert.tasks.registry import DEFAULT_TRAIN_TASK, get_spec

STRATEGIES = ("default", "mirrored", "multiworker", "tpu")  # kbert.training.strategy
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")  # Keras dtype policies


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    train: Any  # a file path, shards (glob, "a.tsv,b.tsv" or a list), "tfds:NAME[split]", or a list of RawExample
    output: str  # the run folder: HF checkpoint + metrics + logs + curves
    task: str = DEFAULT_TRAIN_TASK  # a registered task name (kbert.tasks.task_names())
    model: str | None = "minilm"  # checkpoint folder, "minilm" or "hf://org/name"
    eval: Any = None  # evaluation data, same forms as train; None: no per-epoch evaluation
    format: str | None = None  # csv, tsv, jsonl, conll, conllu, squad (default: from the file extension)
    encoding: str = "utf-8"  # of the data files (a UTF-8 byte-order mark is accepted)
    text_column: str | int | None = None  # default: the reader's conventions (text, sentence, ...)
    text_pair_column: str | int | None = None
    label_column: str | int | None = None
    labels: tuple[str, ...] | None = None  # label order; default: the checkpoint's id2label, else sorted data labels
    label_names: dict[str, str] | None = None  # rename the labels found in the data: {"0": "entailment", ...}
    strict_labels: bool = False  # inferred labels: a label seen once fails the run (default: a warning)
    task_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # the task's own (its SPEC)
    train_limit: int | None = None  # use only the first N training examples
    eval_limit: int | None = None
    epochs: int = 3
    batch_size: int = 32  # global batch (split across replicas under a strategy)
    learning_rate: float = 5e-5  # peak, after warm-up
    warmup: float = 0.1  # < 1: fraction of all steps; >= 1: number of steps
    weight_decay: float = 0.01  # AdamW, never on biases and LayerNorm
    dropout: float | None = None  # classifier dropout; default: the checkpoint's hidden_dropout_prob
    max_length: int = 128  # tokens per example, special tokens included
    seed: int = 42
    freeze_backbone: bool = False  # feature-extractor mode: only the head trains
    layer_lr_decay: float | None = None  # layer-wise LR decay: layer i of L trains at lr * decay ** (L - i)
    clip_norm: float | None = 1.0  # global gradient-norm clipping (HF Trainer's max_grad_norm)
    strategy: str = "default"  # mirrored (local GPUs / logical CPUs), multiworker (TF_CONFIG), tpu: kbert.training.strategy
    tpu: str | None = None  # strategy "tpu": the TPU's name or grpc:// address (default: from the environment)
    precision: str = "float32"  # mixed_float16 (loss scaling) / mixed_bfloat16: float32 variables, heads' outputs
    early_stopping: int | None = None  # stop after this many epochs without improvement of `monitor`
    monitor: str | None = None  # default: the task's (val_macro_f1, val_micro_f1, val_pearson)
    download: bool = False  # allow TFDS to download datasets (never implicit)
    stream: bool | None = None  # read train with tf.data as it trains (kbert.data.streaming); None: for shards,
    # globs, TFRecord and files over 32 MiB; False: read and tokenize every row first
    steps_per_epoch: int | None = None  # streamed input: steps an epoch (default: rows / batch_size, counted)
    shuffle_buffer: int = 10_000  # streamed input: rows in the shuffle buffer (0: no shuffling)
    bucket_by_length: bool = True  # batch examples of similar length (less padding); False: random batches
    jit_compile: bool | str = "auto"  # XLA for the train step: Keras decides ("auto"), or True / False
    verbose: int = 1  # Keras progress bar (0 silent, 1 bar, 2 one line per epoch)

    def __post_init__(self):
        def positive(name, value, kind=int):
            if not isinstance(value, kind) or isinstance(value, bool) or value <= 0:
                raise TrainingError(f"{name} must be a positive {'integer' if kind is int else 'number'}, got {value!r}")

        positive("epochs", self.epochs)
        positive("batch_size", self.batch_size)
        positive("max_length", self.max_length)
        positive("learning_rate", self.learning_rate, (int, float))
        for name in ("train_limit", "eval_limit", "early_stopping", "steps_per_epoch"):
            if getattr(self, name) is not None:
                positive(name, getattr(self, name))
        if not isinstance(self.shuffle_buffer, int) or isinstance(self.shuffle_buffer, bool) or self.shuffle_buffer < 0:
            raise TrainingError(f"shuffle_buffer must be a number of rows >= 0, got {self.shuffle_buffer!r}")
        if self.label_names is not None and not (isinstance(self.label_names, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.label_names.items())):
            raise TrainingError(f"label_names must map label strings to names, got {self.label_names!r}")
        if self.max_length < 3:
            raise TrainingError(f"max_length must leave room for [CLS], [SEP] and text, got {self.max_length}")
        if not (isinstance(self.warmup, (int, float)) and self.warmup >= 0):
            raise TrainingError(f"warmup must be a fraction in [0, 1) or a number of steps, got {self.warmup!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise TrainingError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise TrainingError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.layer_lr_decay is not None and not (isinstance(self.layer_lr_decay, (int, float))
                                                    and 0 < self.layer_lr_decay <= 1):
            raise TrainingError(f"layer_lr_decay must be in (0, 1], got {self.layer_lr_decay!r}")
        if self.clip_norm is not None and self.clip_norm <= 0:
            raise TrainingError(f"clip_norm must be positive (or None for no clipping), got {self.clip_norm!r}")
        if self.strategy not in STRATEGIES:
            raise TrainingError(f"strategy must be one of {list(STRATEGIES)}, got {self.strategy!r}")
        if self.tpu is not None and self.strategy != "tpu":
            raise TrainingError(f"tpu={self.tpu!r} goes with strategy 'tpu', not {self.strategy!r}")
        if self.precision not in PRECISIONS:
            raise TrainingError(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if not self.output:
            raise TrainingError("an output folder is required")
        spec = get_spec(self.task)
        if not spec.trainable:
            raise TrainingError(f"task {self.task!r} has nothing to train")
        try:
            object.__setattr__(self, "task_options", spec.resolve("train", dict(self.task_options)))
        except KbertError as err:
            raise TrainingError(str(err)) from None

    @classmethod
    def from_options(cls, **options) -> "TrainConfig":
        """A config from keyword arguments: fields by name, anything else a task option of ``task``."""
        fields = {f.name for f in dataclasses.fields(cls)}
        task_options = {**options.pop("task_options", {}), **{k: options.pop(k) for k in list(options) if k not in fields}}
        return cls(**options, task_options=task_options)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        """JSON-safe view for ``training_config.json`` (in-memory data is summarised; task options inline)."""
        out = {}
        for field in dataclasses.fields(self):
            if field.name == "task_options":
                out.update(self.task_options)
                continue
            value = getattr(self, field.name)
            out[field.name] = value if isinstance(value, (str, int, float, bool, type(None))) else (
                list(value) if isinstance(value, tuple) else dict(value) if isinstance(value, dict)
                else f"<{type(value).__name__} of {len(value)}>")
        return out

"""What every task provides: its Keras model, training data and scores, pipeline outputs and serving outputs.

A task is one package under ``kbert/tasks/`` (see :mod:`kbert.tasks.registry`). The generic layers
call only the hooks below and never name a task:

    kbert.pipeline (pipelines.py):  check_parameters ─► parse_inputs ─► [tokenizer + model, batched]
                     ─► postprocess (postprocess_windows for tasks that split long texts) ─► package
    kbert.train:     prepare_training (read + validate everything; nothing written) ─► PreparedTraining.build()
                     ─► build_model ─► loss / keras_metrics / monitor ─► fit ─► head_slots (saved as HF names)
    kbert evaluate:  evaluate_data ─► EvaluationReport (metrics) ─► write_plots
    kbert.export:    build_model ─► serving_outputs (TF ops only) ─► export_metadata;
                     recipes read the SavedModel's answers back with answers_from_serving
    kbert.serving.Client called like the pipeline: check_serving_parameters ─► parse_call ─► [served model]
                     ─► pipeline_outputs_from_serving ─► package (parse_call and package need no checkpoint)

``postprocess`` works on plain numpy arrays of ONE example so that it is testable without a model.
Task-specific options (CLI flags, recipe keys) are declared in the package's ``SPEC``
(:class:`~kbert.tasks.spec.TaskSpec`), which imports no TensorFlow.

Example (the smallest task: the backbone's hidden states, nothing to train):
    >>> import keras
    >>> from kbert.tasks.base import Task
    >>> class HiddenStates(Task):
    ...     name = "hidden-states"
    ...     token_level_outputs = ("hidden",)
    ...     def build_model(self):
    ...         backbone = self.checkpoint.build_backbone()
    ...         hidden = backbone(backbone.input)["sequence_output"]  # (B, T, H)
    ...         return keras.Model(backbone.input, {"hidden": hidden})
    ...     def postprocess(self, output, **params):
    ...         return output.outputs["hidden"].shape
    >>> import kbert
    >>> task = HiddenStates(kbert.load_checkpoint("tests/fixtures/checkpoints/tiny-uncased-cls"))
    >>> kbert.Pipeline(task)("I love Paris")
    (5, 32)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from kbert.errors import InputError, TrainingError


@dataclasses.dataclass(frozen=True)
class Example:
    """One input as the pipeline sees it: a text and an optional second text.

    Pre-split input (``is_split_into_words``) keeps its ``words`` and where each starts in ``text``.
    """

    text: str
    text_pair: str | None = None
    words: tuple[str, ...] | None = None
    word_starts: tuple[int, ...] | None = None


@dataclasses.dataclass(frozen=True)
class ExampleOutput:
    """Model outputs of one example, padding removed.

    ``outputs`` holds the task model's outputs (token-level ones cut to ``len(token_ids)``);
    ``token_ids``/``starts``/``ends``/``sequence_ids`` describe the tokens (offsets are character
    offsets; special tokens have sequence id -1).
    """

    example: Example
    outputs: dict[str, np.ndarray]
    token_ids: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    sequence_ids: np.ndarray


@dataclasses.dataclass(frozen=True)
class EvaluationReport:
    """Scores of a model on labelled data: ``metrics`` (JSON-safe) and what the task's plots need."""

    metrics: dict[str, Any]
    details: Any = None  # task-specific (e.g. true and predicted label ids for a confusion matrix)


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """The batches a run trains on and how its evaluation data is scored (built once the run folder exists)."""

    train: Any  # kbert.batching.dataset.TrainingData
    scorer: Callable[[Any], EvaluationReport] | None  # keras model -> report on the evaluation data
    eval_examples: int | None = None
    loss_options: dict = dataclasses.field(default_factory=dict)  # keyword arguments of the task's loss()


@dataclasses.dataclass(frozen=True)
class PreparedTraining:
    """Validated training data: its labels, a summary for the user, and ``build()`` for the batches."""

    labels: Any  # kbert.data.labels.LabelSet: id order of the head; None for a head without labels (QA spans)
    problem_type: str | None  # Hugging Face config.problem_type of the trained model
    build: Callable[[], TrainingPlan]
    label_counts: dict[str, int] = dataclasses.field(default_factory=dict)  # training rows per label
    units: tuple[str, str] = ("examples", "examples")  # what train batches / evaluation hold
    checkpoint_info: dict = dataclasses.field(default_factory=dict)  # saved in config.json's "kbert" section


class Task:
    """Base class of kbert tasks (registered through their package's ``SPEC``, see :mod:`kbert.tasks.registry`)."""

    name: ClassVar[str]  # equal to the SPEC's name
    token_level_outputs: ClassVar[tuple[str, ...]] = ()  # outputs shaped (B, T, ...)
    accepts_pairs: ClassVar[bool] = True
    call_parameters: ClassVar[tuple[str, ...]] = ()  # keyword arguments of pipeline calls
    input_fields: ClassVar[tuple[str, ...]] = ("text",)  # required fields of a `kbert predict --input` JSON line
    optional_input_fields: ClassVar[tuple[str, ...]] = ("text_pair",)
    hf_head: ClassVar[str | None] = None  # architecture suffix, e.g. "ForSequenceClassification"; None: no head

    # What saving a trained model needs (config.json's id2label/label2id, problem_type, architectures):
    id2label: dict[int, str]  # the head's labels in id order; {} for a task without labelled outputs
    problem_type: str | None  # Hugging Face config.problem_type of the saved model; None: decided by transformers

    def __init__(self, checkpoint, id2label: dict[int, str] | None = None, problem_type: str | None = None):
        """``checkpoint``: a :class:`~kbert.checkpoint.loader.Checkpoint`; ``id2label`` and ``problem_type``: the
        labels and kind of the head to build (training passes the data's; default: none, or the checkpoint's
        where a subclass says so)."""
        self.checkpoint = checkpoint
        self.config = checkpoint.config
        self.id2label = dict(id2label or {})
        self.problem_type = problem_type

    @property
    def num_labels(self) -> int:
        """Outputs of the head (the labels)."""
        return len(self.id2label)

    def require_labels(self, id2label: dict[int, str] | None) -> dict[int, str]:
        """``id2label`` if given, else the checkpoint's; a task with a classifier head cannot do without."""
        from kbert.errors import CorruptCheckpointError

        labels = id2label or self.config.id2label
        if not labels:
            raise CorruptCheckpointError(
                f"{self.checkpoint.path}: {self.name} needs labels (id2label in config.json or given)")
        return labels

    @classmethod
    def has_head_for(cls, checkpoint) -> bool:
        """Whether ``checkpoint`` carries a trained head of this task (its architecture and weights)."""
        return cls.hf_head is not None and checkpoint.trained_head(cls.hf_head) is not None

    @classmethod
    def can_evaluate(cls, checkpoint) -> bool:
        """Whether ``kbert evaluate`` can score ``checkpoint`` with this task (default: it has the trained head)."""
        return cls.has_head_for(checkpoint)

    # --- training ------------------------------------------------------------------------------
    @classmethod
    def prepare_training(cls, config, checkpoint, max_length: int) -> PreparedTraining:
        """Read and validate all of ``config``'s training and evaluation data; write nothing.

        ``config`` is a :class:`~kbert.training.config.TrainConfig` (task options in
        ``config.task_options``). Errors are :class:`~kbert.errors.KbertError` naming file and line.
        """
        raise TrainingError(f"kbert train does not train task {cls.name!r}")

    def loss(self, **options):
        """The loss ``compile()`` uses (``options``: the plan's ``loss_options``)."""
        raise NotImplementedError

    def keras_metrics(self) -> list:
        """Cheap streaming metrics for the progress bar (task metrics come from the evaluation callback)."""
        return []

    def training_model(self, model, loss_options: dict, task_options: dict):
        """``(keras_model, loss, metrics)`` that ``fit`` trains: by default ``model``'s logits with :meth:`loss`
        (``loss_options``: the plan's) and :meth:`keras_metrics`. A task whose training step differs (a
        bi-encoder's ranking loss over the batch) returns its own model, with ``loss=None``."""
        import keras

        trainable = keras.Model(model.input, model.output["logits"], name=model.name)
        return trainable, self.loss(**loss_options), self.keras_metrics()

    monitor: ClassVar[str] = "val_loss"  # metric that early stopping and keep-best watch

    @property
    def head_layout(self):
        """How the checkpoint's family lays out this task's head (:class:`~kbert.models.family.HeadLayout`)."""
        return self.checkpoint.family.head_layout(self.hf_head, self.config)

    def head_layers(self) -> dict[str, str]:
        """Hugging Face prefix → Keras layer name of every layer of the head (saved and loaded by these)."""
        if self.hf_head is None:
            return {}
        return {prefix: prefix.replace(".", "_") for prefix in self.head_layout.prefixes}

    def head_slots(self, model) -> list:
        """The head's variables with their Hugging Face names, for saving a checkpoint."""
        from kbert.models.weights import head_layer_slots

        return [slot for hf_prefix, layer in self.head_layers().items()
                for slot in head_layer_slots(hf_prefix, model.get_layer(layer))]

    # --- evaluation ----------------------------------------------------------------------------
    def evaluate_data(self, data, *, model, read_options: dict, task_options: dict, batch_size: int, max_length: int,
                      limit: int | None) -> EvaluationReport:
        """Score ``model`` (this task's :meth:`build_model`, in the precision evaluated) on labelled ``data``
        (``kbert evaluate``)."""
        raise TrainingError(f"kbert evaluate does not score task {self.name!r}")

    def write_extra_files(self, folder) -> list[str]:
        """Files a saved checkpoint needs besides config, weights and tokenizer (their names; default none)."""
        return []

    def write_plots(self, report: EvaluationReport, folder) -> list[str]:
        """PNG figures of an evaluation (confusion matrix, per-type F1...) in ``folder``; their paths."""
        return []

    # --- model ---------------------------------------------------------------------------------
    def build_model(self, dropout: float | None = None):
        """A functional Keras model: backbone inputs (``token_ids``, ``segment_ids``, ``padding_mask``) → dict of
        named output tensors (``logits`` for a trainable head). ``dropout``: the head's rate (None: the family's,
        as transformers picks it; tasks without a head ignore it)."""
        raise NotImplementedError

    # --- pipeline ------------------------------------------------------------------------------
    def parse_inputs(self, inputs: Any, params: dict[str, Any] | None = None) -> list[Example]:
        """Validate pipeline inputs and return them as examples (``params``: the checked call parameters);
        by default :meth:`parse_call`, which a served model's client uses too."""
        return self.parse_call(inputs, params)

    @classmethod
    def parse_call(cls, inputs: Any, params: dict[str, Any] | None = None) -> list[Example]:
        """The examples of a call's inputs, as given (needs no checkpoint: ``kbert.serving.Client`` uses it).

        Accepts a ``str``, a ``{"text": ..., "text_pair": ...}`` dict, or a list of either.
        """
        if inputs is None:
            raise InputError(f"{cls.name}: no inputs given")
        single = isinstance(inputs, (str, dict))
        items = [inputs] if single else inputs
        if not isinstance(items, (list, tuple)):
            raise InputError(f"{cls.name}: inputs must be a str, a dict with 'text' (and 'text_pair') or a list "
                             f"of them; got {type(inputs).__name__}")
        if not items:
            raise InputError(f"{cls.name}: got an empty list of inputs")
        return [cls._parse_one(item, i) for i, item in enumerate(items)]

    @classmethod
    def _parse_one(cls, item: Any, index: int) -> Example:
        where = f"{cls.name}: input {index}"
        if isinstance(item, str):
            return Example(_check_encodable(item, where))
        if isinstance(item, dict):
            unknown = set(item) - {"text", "text_pair"}
            if unknown or "text" not in item:
                raise InputError(f"{where}: a dict input needs the key 'text' and may have 'text_pair'; "
                                 f"got keys {sorted(item)}")
            if "text_pair" in item and not cls.accepts_pairs:
                raise InputError(f"{where}: {cls.name} does not take text pairs")
            text, pair = item["text"], item.get("text_pair")
            for key, value in (("text", text), ("text_pair", pair)):
                if value is not None and not isinstance(value, str):
                    raise InputError(f"{where}: {key!r} must be a str, got {type(value).__name__} {value!r:.60}")
            return Example(_check_encodable(text, where), pair if pair is None else _check_encodable(pair, where))
        raise InputError(f"{where} is {type(item).__name__} {item!r:.60}; expected a str"
                         + (" or a dict with 'text' and 'text_pair'" if cls.accepts_pairs else ""))

    def input_of_record(self, record: dict) -> Any:
        """The pipeline input of one ``kbert predict --input`` record (its ``input_fields``)."""
        return record if record.get("text_pair") is not None else record["text"]

    def check_parameters(self, params: dict[str, Any]) -> dict[str, Any]:
        """Reject keyword arguments the task does not know (never drop them silently)."""
        unknown = sorted(set(params) - set(self.call_parameters))
        if unknown:
            raise InputError(f"{self.name}: unknown argument(s) {unknown}; accepted: {list(self.call_parameters)}")
        return params

    def postprocess(self, output: ExampleOutput, **params) -> Any:
        """The Hugging Face-shaped result of one example."""
        raise NotImplementedError

    def window_stride(self, params: dict[str, Any]) -> int | None:
        """Overlap of the windows long inputs are split into; ``None``: inputs are truncated (one window each)."""
        return None

    def window_length(self, params: dict[str, Any]) -> int | None:
        """Tokens per window for this call (special tokens included); ``None``: the pipeline's ``max_length``."""
        return None

    def postprocess_windows(self, windows: list[ExampleOutput], **params) -> Any:
        """The result of one example from all its windows (one unless :meth:`window_stride` gives a stride)."""
        return self.postprocess(windows[0], **params)

    @classmethod
    def package_one(cls, result: Any, params: dict[str, Any]) -> Any:
        """One example's result as Hugging Face's pipeline gives it within a list of inputs."""
        return result

    @classmethod
    def package(cls, results: list[Any], inputs: Any, params: dict[str, Any]) -> Any:
        """Nest per-example results (each through :meth:`package_one`) as Hugging Face's pipeline returns them
        (``inputs`` as given)."""
        results = [cls.package_one(r, params) for r in results]
        return results[0] if isinstance(inputs, (str, dict)) else results

    def model_with_head(self, name: str, dropout: float | None = None):
        """The backbone with this task's head as the checkpoint's family lays it out (pooled output, first token
        or every token; see :meth:`classifier_head`): a functional model ``inputs → {"logits"}``."""
        import keras

        layout = self.head_layout
        backbone = self.checkpoint.build_backbone(use_pooler=layout.features == "pooled")
        outputs = backbone(backbone.input)  # nested, so the backbone is one layer of the model
        if layout.features == "pooled":
            features = outputs["pooled_output"]  # (B, H)
        elif layout.features == "first_token":
            features = outputs["sequence_output"][:, 0, :]  # (B, H)
        elif layout.features == "mean":  # over the non-padding tokens, as ModernBERT's classifier_pooling="mean"
            mask = keras.ops.cast(backbone.input["padding_mask"], outputs["sequence_output"].dtype)[:, :, None]
            features = keras.ops.sum(outputs["sequence_output"] * mask, axis=1) / keras.ops.sum(mask, axis=1)
        else:
            features = outputs["sequence_output"]  # (B, T, H)
        return keras.Model(backbone.input, {"logits": self.classifier_head(features, dropout)}, name=name)

    def classifier_head(self, features, dropout: float | None = None):
        """Hugging Face's head of this task on ``features``, laid out as the family's ``*For*`` class does
        (:meth:`head_layout`): dropout, an optional hidden Dense (RoBERTa's ``classifier.dense`` + tanh,
        DistilBERT's ``pre_classifier`` + ReLU ...) with an optional LayerNorm (ModernBERT's ``head.norm``),
        dropout, the output Dense.

        ``dropout`` defaults to the family's choice (``classifier_dropout`` when the config sets it, 0.0
        included, else ``hidden_dropout_prob``). New Dense layers are drawn from normal(0,
        ``initializer_range``) with zero bias, as ``_init_weights``; a trained head in the checkpoint is loaded
        instead (:meth:`load_head`). Layer names are :meth:`head_layers`' values. Returns the logits,
        ``features.shape[:-1] + (num_labels,)``.
        """
        import keras

        from kbert.modeling.activations import get_activation
        from kbert.modeling.backbone import hf_initializer

        layout = self.head_layout
        if dropout is None:
            dropout = self.checkpoint.family.head_dropout(self.config, self.hf_head)
        stddev = self.config.extra.get("initializer_range", 0.02)
        names = self.head_layers()
        # Layers (and their initializers) are made in this order: each draws its seed from Keras' global
        # generator when made, so the order decides a seeded run's weights and dropout masks.
        x = features
        if layout.dropout and (layout.dropout_first or not layout.hidden):
            x = keras.layers.Dropout(dropout, name=f"{names[layout.prefixes[0]]}_dropout")(x)
        layers = {}
        if layout.hidden:
            hf_prefix, activation = layout.hidden
            layers[hf_prefix] = keras.layers.Dense(self.config.hidden_size, activation=get_activation(activation),
                                                   use_bias=layout.hidden_bias, name=names[hf_prefix],
                                                   kernel_initializer=hf_initializer(stddev))
            x = layers[hf_prefix](x)
            if layout.norm:
                norm_prefix, epsilon, center = layout.norm
                layers[norm_prefix] = keras.layers.LayerNormalization(epsilon=epsilon, center=center,
                                                                      name=names[norm_prefix])
                x = layers[norm_prefix](x)
            if layout.dropout:
                x = keras.layers.Dropout(dropout, name=f"{names[hf_prefix]}_output_dropout")(x)
        layers[layout.output] = keras.layers.Dense(self.num_labels, name=names[layout.output],
                                                   kernel_initializer=hf_initializer(stddev))
        logits = layers[layout.output](x)
        self.load_head(layers)
        return logits

    def load_head(self, layers: dict) -> None:
        """Copy the checkpoint's trained head into ``layers`` (Hugging Face prefix → Dense layer; the last
        one gives the labels).

        Only a head saved by this task's Hugging Face architecture is used (a sequence head never
        fills a token head); its size must match ``self.num_labels``. Without one, the layers stay new.
        """
        from kbert.checkpoint.loader import assign
        from kbert.errors import CorruptCheckpointError
        from kbert.models.weights import head_layer_slots

        tensors = self.checkpoint.trained_head(self.hf_head)
        if tensors is None:
            return
        output = list(layers)[-1]
        rows = tensors.get(f"{output}.weight", np.zeros((0,))).shape[0]
        if rows != self.num_labels:
            names = [self.id2label[i] for i in range(len(self.id2label))]
            raise CorruptCheckpointError(
                f"{self.checkpoint.path}: the {output} head has {rows} outputs but {self.num_labels} labels are "
                f"configured {names}")
        assign([slot for hf_prefix, layer in layers.items() for slot in head_layer_slots(hf_prefix, layer)], tensors,
               source=str(self.checkpoint.path))

    # --- export --------------------------------------------------------------------------------
    def serving_signature(self, keras_model, *, max_length: int, text_pair: bool = False):
        """``(function, input_signature)`` of the SavedModel's ``serving_default``: raw ``text`` (and
        ``text_pair``) strings in, :meth:`serving_outputs` out, tokenized in the graph."""
        import tensorflow as tf

        tokenizer = self.checkpoint.tokenizer

        def serve(text, pair=None):
            encoding = tokenizer.encode(text, pair, max_length=max_length)
            inputs = {**encoding.padded(pad_id=tokenizer.pad_id), "text": text}
            outputs = keras_model({k: inputs[k] for k in ("token_ids", "segment_ids", "padding_mask")},
                                  training=False)
            return self.serving_outputs(outputs, inputs)

        text_spec = tf.TensorSpec([None], tf.string, name="text")
        if text_pair:
            return (lambda text, text_pair: serve(text, text_pair),
                    [text_spec, tf.TensorSpec([None], tf.string, name="text_pair")])
        return (lambda text: serve(text)), [text_spec]

    def serving_outputs(self, outputs: dict, inputs: dict) -> dict:
        """Graph-only (TF ops) outputs of the serving signature, from the model outputs."""
        raise NotImplementedError

    def export_metadata(self) -> dict:
        """What ``assets.extra/kbert.json`` records about the task besides its name (labels, ...)."""
        return {}

    @classmethod
    def answers_from_serving(cls, texts: list, outputs: dict[str, list], metadata: dict) -> list[dict]:
        """Readable answers from a SavedModel's outputs (as lists) for ``texts`` (recipes' [predict])."""
        raise NotImplementedError

    # --- a served export called like the pipeline (kbert.serving.Client) ---------------------------
    serving_call_parameters: ClassVar[tuple[str, ...]] = ()  # the call parameters the export's outputs can honour

    @classmethod
    def check_serving_parameters(cls, params: dict[str, Any], metadata: dict) -> dict[str, Any]:
        """A client call's parameters, checked against what the export (``metadata``: its ``kbert.json``) can give;
        by default only :attr:`serving_call_parameters` pass, unchanged."""
        fixed = sorted(set(params) & set(cls.call_parameters) - set(cls.serving_call_parameters))
        if fixed:
            raise InputError(f"{cls.name} export: {fixed} cannot be applied to the served outputs (the export fixed "
                             f"them); a call takes {list(cls.serving_call_parameters)}")
        unknown = sorted(set(params) - set(cls.serving_call_parameters))
        if unknown:
            raise InputError(f"{cls.name}: unknown argument(s) {unknown}; accepted: "
                             f"{list(cls.serving_call_parameters)}")
        return params

    @classmethod
    def pipeline_outputs_from_serving(cls, examples: list[Example], outputs: dict[str, list], metadata: dict,
                                      params: dict[str, Any]) -> list:
        """What the pipeline gives for each of ``examples`` (before :meth:`package`), from the export's outputs
        (as lists) and the call's checked parameters: by default :meth:`answers_from_serving` without the inputs
        it repeats (``text``, ``question``...)."""
        echoed = {"text", "text_pair", *cls.input_fields, *cls.optional_input_fields}
        records = [e.text if e.text_pair is None else (e.text, e.text_pair) for e in examples]
        return [{k: v for k, v in answer.items() if k not in echoed}
                for answer in cls.answers_from_serving(records, outputs, metadata)]


def _check_encodable(text: str, where: str) -> str:
    """Reject strings that cannot be UTF-8 encoded (lone surrogates), which TensorFlow cannot take."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InputError(f"{where}: not valid Unicode (lone surrogate {text[err.start]!r} at index {err.start})") from None
    return text


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))

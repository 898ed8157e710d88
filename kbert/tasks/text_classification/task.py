"""The text-classification task class (single texts or pairs): multi-class, and through ``problem_type``
multi-hot labels and regression.

The head is the family's ``*ForSequenceClassification`` head (BERT: dropout → Dense ``classifier`` on the
pooled output; RoBERTa: ``classifier.dense`` → tanh → ``classifier.out_proj`` on ``<s>``; DistilBERT:
``pre_classifier`` → ReLU → ``classifier`` ...: :meth:`kbert.models.family.Family.head_layout`), so weights
round-trip in every family. Outputs follow
the ``text-classification`` pipeline of transformers v4 exactly (see :meth:`package`).

Example:
    >>> import numpy as np
    >>> from kbert.tasks.text_classification.task import scores_to_dicts
    >>> scores_to_dicts(np.array([0.1, 0.7, 0.2]), {0: "neg", 1: "pos", 2: "neu"}, top_k=2)
    [{'label': 'pos', 'score': 0.7}, {'label': 'neu', 'score': 0.2}]
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kbert.errors import InputError
from kbert.tasks.base import EvaluationReport, ExampleOutput, Task, sigmoid, softmax

FUNCTIONS = ("softmax", "sigmoid", "none")
_LEGACY = object()  # top_k not given: Hugging Face's legacy output shape


def default_function(problem_type: str | None, num_labels: int) -> str:
    """The score function Hugging Face applies when the caller names none."""
    if problem_type == "regression":
        return "none"
    if problem_type == "multi_label_classification" or num_labels == 1:
        return "sigmoid"
    return "softmax"


def apply_function(logits: np.ndarray, function: str) -> np.ndarray:
    if function == "softmax":
        return softmax(logits)
    if function == "sigmoid":
        return sigmoid(logits)
    return logits


def scores_to_dicts(scores: np.ndarray, id2label: dict[int, str], top_k=_LEGACY):
    """One example's scores as ``{'label', 'score'}`` dicts, shaped as Hugging Face does."""
    if top_k is _LEGACY:
        best = int(np.argmax(scores))
        return {"label": id2label[best], "score": float(scores[best])}
    dicts = [{"label": id2label[i], "score": float(s)} for i, s in enumerate(scores)]
    dicts.sort(key=lambda d: d["score"], reverse=True)
    return dicts if top_k is None else dicts[:top_k]


class TextClassification(Task):
    """Sequence classification / regression on the pooled ``[CLS]`` output."""

    name = "text-classification"
    call_parameters = ("top_k", "function_to_apply")
    hf_head = "ForSequenceClassification"

    fixed_problem_type: str | None = None  # set by the variants that always train one kind of label

    def __init__(self, checkpoint, id2label: dict[int, str] | None = None, problem_type: str | None = None):
        problem_type = self.fixed_problem_type or problem_type or checkpoint.config.problem_type
        if problem_type == "regression" and not (id2label or checkpoint.config.id2label):
            id2label = {0: "LABEL_0"}  # one output; Hugging Face's default name
        super().__init__(checkpoint, problem_type=problem_type)
        self.id2label = self.require_labels(id2label)

    @property
    def label_kind(self) -> str:
        """How labels are encoded for training: ``class`` ids, ``multi_label`` multi-hot, or ``regression``."""
        return {"regression": "regression", "multi_label_classification": "multi_label"}.get(self.problem_type, "class")

    @classmethod
    def label_kind_for(cls, checkpoint) -> str:
        """The label kind this task trains from ``checkpoint``: the fixed or the checkpoint's ``problem_type``."""
        return {"regression": "regression", "multi_label_classification": "multi_label"}.get(
            cls.fixed_problem_type or checkpoint.config.problem_type, "class")

    # --- training ------------------------------------------------------------------------------
    @classmethod
    def prepare_training(cls, config, checkpoint, max_length):
        from kbert.tasks.text_classification.training_data import prepare

        return prepare(cls, config, checkpoint, max_length)

    def loss(self):
        """The loss ``compile()`` uses by default, as Hugging Face picks it from ``problem_type``."""
        if self.label_kind == "regression":
            return keras.losses.MeanSquaredError()
        if self.label_kind == "multi_label":
            return keras.losses.BinaryCrossentropy(from_logits=True)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def keras_metrics(self) -> list:
        """Cheap streaming metrics for the progress bar (F1, Pearson... come from the evaluation callback)."""
        if self.label_kind == "class":
            return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        if self.label_kind == "multi_label":
            return [keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)]  # logits: 0 is p = 0.5
        return []

    @property
    def monitor(self) -> str:
        """The validation metric that early stopping and "keep the best model" watch (higher is better)."""
        return {"class": "val_macro_f1", "multi_label": "val_micro_f1", "regression": "val_pearson"}[self.label_kind]

    def build_model(self, dropout: float | None = None) -> keras.Model:
        return self.model_with_head("text_classifier", dropout)  # logits (B, num_labels)

    # --- evaluation ----------------------------------------------------------------------------
    def evaluate_data(self, data, *, model, read_options, task_options, batch_size, max_length,
                      limit) -> EvaluationReport:
        from kbert.data.labels import LabelSet, rename_labels
        from kbert.data.sources import load_examples, pair_columns
        from kbert.tasks.text_classification.scoring import score
        from kbert.batching.dataset import make_dataset

        kind = self.label_kind
        examples, _ = load_examples(data, label_type=kind, limit=limit, **read_options)
        trained = self.config.extra.get("kbert", {})
        if trained.get("label_names") and kind != "regression":  # the data's labels as renamed in training
            examples = rename_labels(examples, trained["label_names"])
        labels = LabelSet(tuple(self.id2label[i] for i in range(self.num_labels)), kind)
        targets = labels.encode(examples)
        texts, pairs = pair_columns(examples, "the evaluation data")
        if kind == "regression":
            targets = targets.reshape(-1, 1)
        dataset = make_dataset(self.checkpoint.tokenizer, texts, pairs, targets, batch_size=batch_size,
                               max_length=max_length).dataset
        return score(kind, model, dataset, list(labels.names))

    def write_plots(self, report, folder):
        from kbert.tasks.text_classification.scoring import write_plots

        return write_plots(report, folder)

    # --- pipeline ------------------------------------------------------------------------------
    def check_parameters(self, params):
        params = self._checked_call(super().check_parameters(params))
        return {**params, "function_to_apply": params["function_to_apply"] or default_function(self.problem_type,
                                                                                               self.num_labels)}

    @classmethod
    def _checked_call(cls, params):
        """``top_k`` (``_LEGACY`` when not given) and ``function_to_apply`` (``None`` when not given) checked."""
        top_k = params.get("top_k", _LEGACY)
        if top_k is not _LEGACY and top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
            raise InputError(f"{cls.name}: top_k must be a positive int or None, got {top_k!r}")
        function = params.get("function_to_apply")
        if function is not None:
            function = str(getattr(function, "value", function)).lower()
            if function not in FUNCTIONS:
                raise InputError(f"{cls.name}: function_to_apply must be one of {list(FUNCTIONS)}, got {function!r}")
        return {"top_k": top_k, "function_to_apply": function}

    def postprocess(self, output: ExampleOutput, top_k=_LEGACY, function_to_apply="softmax"):
        scores = apply_function(output.outputs["logits"].astype(np.float64), function_to_apply)
        return scores_to_dicts(scores, self.id2label, top_k)

    @classmethod
    def package(cls, results, inputs, params):
        # transformers v4: a single *string* without top_k comes back wrapped in a list; a single
        # pair dict does not; a list of inputs gives one result per input.
        if isinstance(inputs, str) and params["top_k"] is _LEGACY:
            return [results[0]]
        return super().package(results, inputs, params)

    # --- export --------------------------------------------------------------------------------
    def serving_outputs(self, outputs, inputs):
        logits = outputs["logits"]  # (B, labels)
        function = default_function(self.problem_type, self.num_labels)
        scores = {"softmax": tf.nn.softmax, "sigmoid": tf.sigmoid, "none": tf.identity}[function](logits)
        best = tf.argmax(scores, axis=-1, output_type=tf.int32)
        labels = tf.constant([self.id2label[i] for i in range(self.num_labels)])
        return {"label": tf.gather(labels, best), "score": tf.reduce_max(scores, axis=-1),
                "scores": scores, "logits": logits}

    def export_metadata(self):
        return {"labels": self.id2label, "function_to_apply": default_function(self.problem_type, self.num_labels)}

    @classmethod
    def answers_from_serving(cls, texts, outputs, metadata):
        return [{"text": t, "label": label, "score": s} for t, label, s in zip(texts, outputs["label"], outputs["score"])]

    serving_call_parameters = call_parameters

    @classmethod
    def check_serving_parameters(cls, params, metadata):
        return cls._checked_call(super().check_serving_parameters(params, metadata))

    @classmethod
    def pipeline_outputs_from_serving(cls, examples, outputs, metadata, params):
        """The pipeline's ``{'label', 'score'}`` (or ``top_k`` of them) per text, from the export's ``logits`` with
        the call's ``function_to_apply`` (default: the export's, recorded in its metadata; exports without it
        give their ``scores``)."""
        id2label = {int(i): label for i, label in metadata["labels"].items()}
        function = params["function_to_apply"] or metadata.get("function_to_apply")
        rows = ([apply_function(np.asarray(row, np.float64), function) for row in outputs["logits"]] if function
                else [np.asarray(row, np.float64) for row in outputs["scores"]])
        return [scores_to_dicts(scores, id2label, params["top_k"]) for scores in rows]

"""The token-classification task class (NER, part of speech): a label for every token, grouped as Hugging Face does.

The head is Hugging Face's ``BertForTokenClassification``: dropout → Dense on the sequence output,
stored as ``classifier.weight``/``classifier.bias`` (checkpoints usually have no pooler). Pipeline
outputs are transformers' ``token-classification`` pipeline's, for every ``aggregation_strategy``
(see :mod:`kbert.tasks.token_classification.aggregation`); the export adds grouped entities computed in
the graph (:mod:`kbert.tasks.token_classification.entity_groups_graph`).

Example:
    >>> is_entity_scheme(["O", "B-PER", "I-PER"]), is_entity_scheme(["NOUN", "VERB", "ADJ"])
    (True, False)
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kbert.errors import InputError
from kbert.tasks.base import EvaluationReport, Example, Task
from kbert.tasks.token_classification import aggregation
from kbert.tasks.token_classification.entity_groups_graph import simple_entity_groups
from kbert.tasks.token_classification.features import IGNORE_INDEX
from kbert.tasks.token_classification.loss import TokenCrossEntropy

ENTITY_PREFIXES = ("B-", "I-", "E-", "S-", "L-", "U-")


def is_entity_scheme(names) -> bool:
    """True when the labels are entity tags (``O`` and ``B-X``/``I-X``/...), False for plain tags such as POS."""
    names = list(names)
    return any(n != "O" for n in names) and all(n == "O" or n.startswith(ENTITY_PREFIXES) for n in names)


class LabelledTokenAccuracy(keras.metrics.Metric):
    """Accuracy over the tokens that carry a label (``IGNORE_INDEX`` positions are skipped)."""

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = keras.ops.cast(y_true, "int32")
        labelled = keras.ops.cast(keras.ops.not_equal(y_true, IGNORE_INDEX), "float32")
        hits = keras.ops.cast(keras.ops.equal(keras.ops.argmax(y_pred, axis=-1), y_true), "float32") * labelled
        self.correct.assign_add(keras.ops.sum(hits))
        self.count.assign_add(keras.ops.sum(labelled))

    def result(self):
        return keras.ops.divide_no_nan(self.correct, self.count)


class TokenClassification(Task):
    """A label per token (Dense on the sequence output), entities grouped as Hugging Face's pipeline does."""

    name = "token-classification"
    token_level_outputs = ("logits",)
    accepts_pairs = False
    call_parameters = ("aggregation_strategy", "ignore_labels", "stride", "is_split_into_words", "delimiter")
    hf_head = "ForTokenClassification"

    def __init__(self, checkpoint, id2label: dict[int, str] | None = None, problem_type: str | None = None):
        super().__init__(checkpoint)
        self.id2label = self.require_labels(id2label)
        self.problem_type = None  # Hugging Face ignores problem_type for token classification

    @property
    def label_names(self) -> list[str]:
        return [self.id2label[i] for i in range(self.num_labels)]

    @property
    def scheme(self) -> str:
        """``entities`` (scored with seqeval's entity F1) or ``tags`` (POS: scored per word)."""
        return "entities" if is_entity_scheme(self.label_names) else "tags"

    # --- training ------------------------------------------------------------------------------
    @classmethod
    def prepare_training(cls, config, checkpoint, max_length):
        from kbert.tasks.token_classification.training_data import prepare

        return prepare(cls, config, checkpoint, max_length)

    def loss(self, labelled_tokens_per_batch: float | None = None):
        """Cross-entropy over labelled tokens.

        By default the mean over the batch's labelled tokens, as ``BertForTokenClassification`` computes
        it. ``kbert.train`` passes ``labelled_tokens_per_batch`` when batches are length buckets: then
        the sum divided by that fixed count, so every token weighs the same as in random batches
        (:class:`~kbert.tasks.token_classification.loss.TokenCrossEntropy`).
        """
        if labelled_tokens_per_batch is not None:
            return TokenCrossEntropy(labelled_tokens_per_batch)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE_INDEX)

    def keras_metrics(self) -> list:
        return [LabelledTokenAccuracy()]

    @property
    def monitor(self) -> str:
        return "val_entity_f1" if self.scheme == "entities" else "val_accuracy"

    def build_model(self, dropout: float | None = None) -> keras.Model:
        return self.model_with_head("token_classifier", dropout)  # logits (B, T, num_labels)

    # --- evaluation ----------------------------------------------------------------------------
    def evaluate_data(self, data, *, model, read_options, task_options, batch_size, max_length,
                      limit) -> EvaluationReport:
        from kbert.data.labels import LabelSet
        from kbert.tasks.token_classification.scoring import score_tagged
        from kbert.tasks.token_classification.training_data import DEFAULT_STRIDE, load_tagged, tagged_dataset

        sentences = load_tagged(data, format=read_options.get("format"), tag_column=task_options.get("tag_column"),
                                encoding=read_options.get("encoding", "utf-8"),
                                limit=limit)
        stride = self.config.extra.get("kbert", {}).get("stride")
        tagged = tagged_dataset(self.checkpoint.tokenizer, sentences, LabelSet(tuple(self.label_names)),
                                batch_size=batch_size, max_length=max_length,
                                stride=DEFAULT_STRIDE if stride is None else stride, training=False)
        return score_tagged(model, tagged, self.label_names, self.scheme)

    def write_plots(self, report, folder):
        from kbert.tasks.token_classification.scoring import write_plots

        return write_plots(report, folder)

    # --- pipeline ------------------------------------------------------------------------------
    def parse_inputs(self, inputs, params=None):
        if (params or {}).get("is_split_into_words"):
            return self._parse_word_lists(inputs, params["delimiter"])
        return super().parse_inputs(inputs, params)

    def _parse_word_lists(self, inputs, delimiter: str) -> list[Example]:
        single = isinstance(inputs, (list, tuple)) and all(isinstance(w, str) for w in inputs)
        items = [inputs] if single else inputs
        if not isinstance(items, (list, tuple)) or not items:
            raise InputError(f"{self.name}: with is_split_into_words=True, inputs must be a list of words or a list "
                             f"of such lists; got {type(inputs).__name__}")
        examples = []
        for i, words in enumerate(items):
            if not isinstance(words, (list, tuple)) or not all(isinstance(w, str) for w in words):
                raise InputError(f"{self.name}: input {i} must be a list of str words, got {words!r:.60}")
            # Tokenized as words joined by spaces (the same pieces as tokenizing each word, as HF does);
            # offsets are moved to the text joined with `delimiter` in postprocess_windows.
            text, word_starts = aggregation.words_to_text(words, " ")
            examples.append(Example(text, words=tuple(words), word_starts=tuple(word_starts)))
        return examples

    def check_parameters(self, params):
        params = super().check_parameters(params)
        given = params.get("aggregation_strategy")
        strategy = aggregation.check_aggregation_strategy(given)
        stride = aggregation.check_stride(params.get("stride"), given, self.checkpoint.tokenizer.model_max_length)
        ignore = self._ignore_labels(params.get("ignore_labels"))
        delimiter = params.get("delimiter", " ")
        if not isinstance(delimiter, str):
            raise InputError(f"{self.name}: delimiter must be a str, got {delimiter!r}")
        if params.get("is_split_into_words") and not self.checkpoint.tokenizer.takes_split_words:
            raise InputError(f"{self.name}: is_split_into_words=True needs a tokenizer with add_prefix_space=True "
                             f"(transformers refuses pre-split words otherwise); set it in "
                             f"{self.checkpoint.path}/tokenizer_config.json")
        return {"aggregation_strategy": strategy, "ignore_labels": list(ignore), "stride": stride,
                "is_split_into_words": bool(params.get("is_split_into_words", False)), "delimiter": delimiter}

    @classmethod
    def _ignore_labels(cls, ignore) -> list[str]:
        if ignore is None:
            return list(aggregation.DEFAULT_IGNORE_LABELS)
        if isinstance(ignore, str) or not all(isinstance(x, str) for x in ignore):
            raise InputError(f"{cls.name}: ignore_labels must be a list of label names, got {ignore!r}")
        return list(ignore)

    def window_stride(self, params) -> int | None:
        return params["stride"]

    def postprocess_windows(self, windows, aggregation_strategy="none", ignore_labels=("O",), stride=None,
                            is_split_into_words=False, delimiter=" "):
        tokenizer = self.checkpoint.tokenizer
        example = windows[0].example
        text, word_starts = example.text, example.word_starts
        moved = example.words is not None and delimiter != " "
        if moved:
            text, word_starts = aggregation.words_to_text(example.words, delimiter)
        token_windows = []
        for w in windows:
            special = w.sequence_ids < 0
            starts, ends = w.starts, w.ends
            if moved:  # offsets into the text joined with the delimiter
                word = np.searchsorted(example.word_starts, starts, side="right") - 1
                shift = np.where(special, 0, np.asarray(word_starts)[word] - np.asarray(example.word_starts)[word])
                starts, ends = starts + shift, ends + shift
            token_windows.append(aggregation.TokenWindow(
                token_ids=w.token_ids, tokens=tokenizer.convert_ids_to_tokens(w.token_ids), starts=starts, ends=ends,
                special=special, logits=w.outputs["logits"]))
        return aggregation.token_entities(text, token_windows, self.id2label,
                                          aggregation_strategy=aggregation_strategy, ignore_labels=ignore_labels,
                                          unk_token_id=tokenizer.unk_id, word_starts=word_starts,
                                          decoder_cleanup=tokenizer.decoder_cleanup,
                                          decode_tokens=None if tokenizer.word_aware else tokenizer.convert_tokens_to_string)

    @classmethod
    def package(cls, results, inputs, params):
        # transformers: one string -> its entities; a list -> one list per input. A flat word list
        # (is_split_into_words) is one input, yet comes back nested: [[...]].
        if params.get("is_split_into_words"):
            return results
        return super().package(results, inputs, params)

    # --- export --------------------------------------------------------------------------------
    def serving_outputs(self, outputs, inputs, max_entities: int = 64):
        logits = outputs["logits"]  # (B, T, L)
        probabilities = tf.nn.softmax(logits, axis=-1)
        labels = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        scores = tf.reduce_max(probabilities, axis=-1)
        real = (inputs["sequence_ids"] >= 0) & (inputs["padding_mask"] > 0)
        names = tf.constant(self.label_names)
        tokenizer = self.checkpoint.tokenizer
        token_strings = tf.gather(tf.constant(tokenizer.vocabulary), inputs["token_ids"])
        groups = simple_entity_groups(texts=inputs["text"], token_strings=token_strings, token_ids=inputs["token_ids"],
                                      unk_id=tokenizer.unk_id, labels=labels, scores=scores, starts=inputs["starts"],
                                      ends=inputs["ends"], real=real, id2label=self.id2label,
                                      max_entities=max_entities, cleanup=tokenizer.decoder_cleanup,
                                      join_tokens=None if tokenizer.word_aware else tokenizer.join_tokens)
        return {"entity": labels, "entity_label": tf.gather(names, labels), "score": scores,
                "start": inputs["starts"], "end": inputs["ends"], "mask": tf.cast(real, tf.int32),
                "logits": logits, "token": token_strings, "token_id": inputs["token_ids"], **groups}

    def export_metadata(self):
        tokenizer = self.checkpoint.tokenizer
        return {"labels": self.id2label, "scheme": self.scheme, "unk_id": tokenizer.unk_id,
                "decoder_cleanup": tokenizer.decoder_cleanup, "word_aware": tokenizer.word_aware}

    @classmethod
    def answers_from_serving(cls, texts, outputs, metadata):
        """Entity tags: ``{'text', 'entities': [...]}`` (the in-graph ``simple`` groups); other tags such as
        part of speech: ``{'text', 'tags': [...]}``, one per real token."""
        answers = []
        for b, text in enumerate(texts):
            if metadata.get("scheme") == "tags":
                tags = [{"word": text[outputs["start"][b][i]:outputs["end"][b][i]], "tag": outputs["entity_label"][b][i],
                         "score": outputs["score"][b][i]} for i, real in enumerate(outputs["mask"][b]) if real]
                answers.append({"text": text, "tags": tags})
            else:
                answers.append({"text": text, "entities": cls._served_groups(outputs, b)})
        return answers

    @staticmethod
    def _served_groups(outputs, b: int) -> list[dict]:
        """The export's ``simple`` groups of text ``b``, keyed as the pipeline's."""
        return [{"entity_group": outputs["entity_group"][b][k], "score": outputs["entity_score"][b][k],
                 "word": outputs["entity_word"][b][k], "start": outputs["entity_start"][b][k],
                 "end": outputs["entity_end"][b][k]} for k in range(outputs["entity_count"][b])]

    serving_call_parameters = ("aggregation_strategy", "ignore_labels")

    @classmethod
    def check_serving_parameters(cls, params, metadata):
        """``aggregation_strategy``: ``simple`` from the export's groups (which leave out ``O``, so ``ignore_labels``
        must name it); the others from its per-token outputs (``first``/``average``/``max`` need a WordPiece
        tokenizer, whose words the tokens tell)."""
        params = super().check_serving_parameters(params, metadata)
        strategy = aggregation.check_aggregation_strategy(params.get("aggregation_strategy"))
        ignore = cls._ignore_labels(params.get("ignore_labels"))
        if strategy == "simple" and "O" not in ignore:
            raise InputError(f"{cls.name} export: its simple groups leave out 'O'; ignore_labels={ignore} would keep "
                             f"them (give aggregation_strategy='none' or a list with 'O')")
        if strategy != "simple" and "unk_id" not in metadata:
            raise InputError(f"{cls.name} export: aggregation_strategy={strategy!r} needs the per-token strings of an "
                             f"export by a newer kbert; export the model again, or give aggregation_strategy='simple'")
        if strategy in aggregation.WORD_STRATEGIES and not metadata.get("word_aware"):
            raise InputError(f"{cls.name} export: aggregation_strategy={strategy!r} needs a WordPiece tokenizer "
                             f"(this one's tokens do not tell words); give 'none' or 'simple'")
        return {"aggregation_strategy": strategy, "ignore_labels": ignore}

    @classmethod
    def pipeline_outputs_from_serving(cls, examples, outputs, metadata, params):
        """The pipeline's entity list per text: the export's groups for ``simple``, else the pipeline's own
        aggregation (:func:`~kbert.tasks.token_classification.aggregation.token_entities`) of the served tokens."""
        strategy, ignore = params["aggregation_strategy"], params["ignore_labels"]
        if strategy == "simple":
            return [[group for group in cls._served_groups(outputs, b) if group["entity_group"] not in ignore]
                    for b in range(len(examples))]
        id2label = {int(i): label for i, label in metadata["labels"].items()}
        results = []
        for b, example in enumerate(examples):
            window = aggregation.TokenWindow(
                token_ids=np.asarray(outputs["token_id"][b]), tokens=outputs["token"][b],
                starts=np.asarray(outputs["start"][b]), ends=np.asarray(outputs["end"][b]),
                special=np.asarray(outputs["mask"][b]) == 0, logits=np.asarray(outputs["logits"][b], np.float32))
            results.append(aggregation.token_entities(example.text, [window], id2label, aggregation_strategy=strategy,
                                                      ignore_labels=ignore, unk_token_id=metadata["unk_id"],
                                                      decoder_cleanup=metadata["decoder_cleanup"]))
        return results

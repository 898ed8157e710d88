"""The question-answering task class: a span head on the sequence output, answers as transformers gives them.

The head is Hugging Face's ``BertForQuestionAnswering``: one Dense(2) on every token's hidden state,
stored as ``qa_outputs.weight``/``qa_outputs.bias`` (no pooler), giving start and end logits. The
pipeline windows the context as transformers 4.57's ``QuestionAnsweringPipeline`` does (question
first, ``only_second`` truncation, ``max_seq_len`` tokens, ``doc_stride`` shared tokens) and decodes
answers with :mod:`kbert.tasks.question_answering.postprocess`.

Example:
    >>> import kbert
    >>> qa = kbert.pipeline("question-answering", model="tests/fixtures/checkpoints/tiny-uncased-qa")
    >>> answer = qa(question="Where does Sinan live?", context="Sinan lives in California.")
    >>> sorted(answer), answer["answer"] == "Sinan lives in California."[answer["start"]:answer["end"]]
    (['answer', 'end', 'score', 'start'], True)
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from kbert.errors import InputError, ServingConfigError
from kbert.tasks.base import Example, Task, _check_encodable
from kbert.tasks.question_answering import postprocess, scoring_options
from kbert.tokenizer.subword import SECOND
from kbert.tokenizer.tracing import own_function

DEFAULT_MAX_SEQ_LEN = 384  # transformers: min(model_max_length, 384)
DEFAULT_MAX_ANSWER_LEN = 15
DEFAULT_MAX_QUESTION_LEN = 64  # accepted as transformers does; its fast-tokenizer path never truncates the question
EXPORT_TOP_K = 5  # answers per question in the SavedModel's top_k_* outputs
HF_QA_LABELS = {0: "LABEL_0", 1: "LABEL_1"}  # what transformers writes for a 2-output head without labels


class QuestionAnswering(Task):
    """Extractive QA: start and end logits per token; answers are character spans of the context."""

    name = "question-answering"
    token_level_outputs = ("logits",)
    call_parameters = ("question", "context", "top_k", "doc_stride", "max_answer_len", "max_seq_len",
                       "max_question_len", "handle_impossible_answer", "align_to_words")
    hf_head = "ForQuestionAnswering"
    input_fields = ("question", "context")
    optional_input_fields = ()

    def __init__(self, checkpoint, id2label: dict[int, str] | None = None, problem_type: str | None = None):
        super().__init__(checkpoint, id2label or checkpoint.config.id2label or HF_QA_LABELS, problem_type)

    @property
    def num_labels(self) -> int:
        return 2

    # --- model ---------------------------------------------------------------------------------
    def build_model(self, dropout: float | None = None) -> keras.Model:
        """Backbone (no pooler) → the family's span head (``qa_outputs``, Dense(2)) → ``logits`` ``(B, T, 2)``:
        start, end. ``BertForQuestionAnswering`` has no dropout before its head; DistilBERT's has."""
        return self.model_with_head("question_answering", dropout)

    # --- training ------------------------------------------------------------------------------
    @classmethod
    def prepare_training(cls, config, checkpoint, max_length):
        from kbert.tasks.question_answering.training_data import prepare

        return prepare(cls, config, checkpoint, max_length)

    def loss(self, **options):
        from kbert.tasks.question_answering.loss import SpanLoss

        return SpanLoss(**options)

    monitor = "val_f1"

    def evaluate_data(self, data, *, model, read_options, task_options, batch_size, max_length, limit):
        from kbert.tasks.question_answering.training_data import evaluation_windows
        from kbert.tasks.question_answering.scoring import score_squad
        from kbert.tasks.question_answering.squad_files import read_qa_examples

        # options not given: the checkpoint's training settings (config.json "kbert"), then the defaults
        trained = self.config.extra.get("kbert", {})
        defaults = {o.name: o.default for o in scoring_options(lambda value: value)}
        options = {name: task_options.get(name, trained.get(name, default)) for name, default in defaults.items()}
        examples = read_qa_examples(data, format=read_options.get("format"), limit=limit,
                                    download=read_options.get("download", False),
                                    encoding=read_options.get("encoding", "utf-8"))
        windows = evaluation_windows(self.checkpoint.tokenizer, examples, max_length=max_length,
                                     doc_stride=options["doc_stride"], batch_size=batch_size)
        return score_squad(model, windows, examples, **_scoring_options(options))

    # --- pipeline ------------------------------------------------------------------------------
    @classmethod
    def parse_call(cls, inputs, params=None):
        """transformers' forms: ``question=, context=`` (strings, or lists, or many questions on one
        context), a ``{"question", "context"}`` dict, a list of them, or ``(question, context)``."""
        params = params or {}
        question, context = params.get("question"), params.get("context")
        if inputs is None:
            if question is None or context is None:
                raise InputError(f"{cls.name}: give question= and context= (or a dict / list of dicts)")
            if isinstance(question, str) and isinstance(context, str):
                items = [{"question": question, "context": context}]
            elif isinstance(question, list) and isinstance(context, str):
                items = [{"question": q, "context": context} for q in question]
            elif isinstance(question, list) and isinstance(context, list):
                if len(question) != len(context):
                    raise InputError(f"{cls.name}: {len(question)} questions but {len(context)} contexts")
                items = [{"question": q, "context": c} for q, c in zip(question, context)]
            else:
                raise InputError(f"{cls.name}: question= and context= must be strings or lists of strings, got "
                                 f"{type(question).__name__} and {type(context).__name__}")
        elif question is not None or context is not None:
            raise InputError(f"{cls.name}: give the inputs either positionally or as question=/context=, not both")
        elif isinstance(inputs, tuple) and len(inputs) == 2 and all(isinstance(x, str) for x in inputs):
            items = [{"question": inputs[0], "context": inputs[1]}]
        elif isinstance(inputs, dict):
            items = [inputs]
        elif isinstance(inputs, (list, tuple)):
            items = list(inputs)
        else:
            raise InputError(f"{cls.name}: inputs must be question=/context=, a dict with 'question' and 'context' "
                             f"or a list of such dicts; got {type(inputs).__name__}")
        if not items:
            raise InputError(f"{cls.name}: got an empty list of inputs")
        return [cls._parse_item(item, i) for i, item in enumerate(items)]

    @classmethod
    def _parse_item(cls, item, index: int) -> Example:
        where = f"{cls.name}: input {index}"
        if not isinstance(item, dict) or set(item) != {"question", "context"}:
            got = sorted(item) if isinstance(item, dict) else type(item).__name__
            raise InputError(f"{where} must be a dict with exactly the keys 'question' and 'context', got {got}")
        for key in ("question", "context"):
            value = item[key]
            if not isinstance(value, str):
                raise InputError(f"{where}: {key!r} must be a str, got {type(value).__name__} {value!r:.60}")
            if not value:
                raise InputError(f"{where}: {key!r} is empty")
        return Example(_check_encodable(item["question"], where), _check_encodable(item["context"], where))

    def input_of_record(self, record):
        return record

    def check_parameters(self, params):
        params = super().check_parameters(params)
        max_model = self.checkpoint.tokenizer.model_max_length
        max_seq_len = _integer(params, "max_seq_len", min(max_model, DEFAULT_MAX_SEQ_LEN), self.name, minimum=4)
        if max_seq_len > max_model:
            raise InputError(f"{self.name}: max_seq_len={max_seq_len} is more than the model's {max_model} positions")
        doc_stride = _integer(params, "doc_stride", min(max_seq_len // 2, 128), self.name, minimum=0)
        if doc_stride > max_seq_len:
            raise InputError(f"{self.name}: doc_stride ({doc_stride}) is larger than max_seq_len ({max_seq_len})")
        checked = {
            "top_k": _integer(params, "top_k", 1, self.name),
            "max_answer_len": _integer(params, "max_answer_len", DEFAULT_MAX_ANSWER_LEN, self.name),
            "max_seq_len": max_seq_len, "doc_stride": doc_stride,
            "max_question_len": _integer(params, "max_question_len", DEFAULT_MAX_QUESTION_LEN, self.name),
            "handle_impossible_answer": bool(params.get("handle_impossible_answer", False)),
            "align_to_words": bool(params.get("align_to_words", True)),
        }
        for key in ("question", "context"):
            if key in params:
                checked[key] = params[key]
        return checked

    def window_stride(self, params) -> int:
        return params["doc_stride"]

    def window_length(self, params) -> int:
        return params["max_seq_len"]

    def postprocess_windows(self, windows, *, top_k=1, max_answer_len=DEFAULT_MAX_ANSWER_LEN,
                            handle_impossible_answer=False, align_to_words=True, **_):
        context = windows[0].example.text_pair
        word_starts = None if self._word_aware else self._word_starts(context)
        qa_windows = [self.qa_window(w.outputs["logits"], w.token_ids, w.starts, w.ends, w.sequence_ids,
                                     word_starts=word_starts) for w in windows]
        return postprocess.answer_question(qa_windows, context, top_k=top_k, max_answer_len=max_answer_len,
                                           handle_impossible_answer=handle_impossible_answer,
                                           align_to_words=align_to_words)

    def qa_window(self, logits, token_ids, starts, ends, sequence_ids, word_starts=None) -> "postprocess.QAWindow":
        """One window for :func:`~kbert.tasks.question_answering.postprocess.answer_question`.

        ``word_starts``: where the context's pre-tokenizer words start (byte-level tokenizers, see
        :meth:`_word_starts`); WordPiece words come from the ``##`` pieces instead.
        """
        if word_starts is None:
            word_ids = context_word_ids(token_ids, sequence_ids, self._continuation())
        else:
            word_ids = np.where(sequence_ids == SECOND, np.searchsorted(word_starts, starts, side="right") - 1, -1)
        return postprocess.QAWindow(start_logits=np.asarray(logits[:, 0], np.float32),
                                    end_logits=np.asarray(logits[:, 1], np.float32), starts=starts, ends=ends,
                                    sequence_ids=sequence_ids, word_ids=word_ids)

    @property
    def _word_aware(self) -> bool:
        """WordPiece (a ``##`` continuation prefix) tells words from the tokens alone; byte-level BPE does not."""
        return self.checkpoint.tokenizer.word_aware

    @functools.cache
    def _continuation(self) -> np.ndarray:
        """``(V,)`` bool: the vocabulary's pieces that continue the word before them."""
        return self.checkpoint.tokenizer.continues_word()

    def _word_starts(self, context: str) -> np.ndarray:
        """Sorted character offsets where the pre-tokenizer's words of ``context`` start (HF's ``word_ids``
        are these words: a token's word is the last one starting at or before the token)."""
        return self._word_starts_graph(tf.constant([context], tf.string))[0].numpy()

    @functools.cached_property
    def _word_starts_graph(self):
        """Traced ``(B,)`` strings → ragged ``(B, (words))`` word start offsets (one trace, ~1 ms a call)."""
        tokenizer = self.checkpoint.tokenizer

        def word_starts(texts):
            return tokenizer.word_starts(texts)

        return own_function(word_starts, input_signature=[tf.TensorSpec([None], tf.string)])

    @classmethod
    def package_one(cls, result, params):
        return result[0] if len(result) == 1 else result  # transformers: one answer comes as a dict, not a list

    @classmethod
    def package(cls, results, inputs, params):
        # transformers: one question (however given, a list of one included) comes back alone
        results = [cls.package_one(r, params) for r in results]
        return results[0] if len(results) == 1 else results

    # --- export --------------------------------------------------------------------------------
    def serving_signature(self, keras_model, *, max_length: int, text_pair: bool = False,
                          top_k: int = EXPORT_TOP_K):
        """Raw ``question`` and ``context`` strings in; windows, the model and span decoding in the graph.

        Windows as the pipeline's defaults make them (``max_seq_len`` min(384, ``max_length``),
        ``doc_stride`` min(max_seq_len // 2, 128)); answers by
        :func:`~kbert.tasks.question_answering.answers_graph.answers_for_every_top_k`: ``answer``/``start``/
        ``end``/``score`` ``(B,)`` are the pipeline's default call (``top_k=1``; ``""``, -1, -1, 0 when no span
        scores above 0); ``top_k_*[b, k - 1]`` ``(B, top_k, top_k)`` and ``count[b, k - 1]`` ``(B, top_k)`` are
        ``pipe(..., top_k=k)``'s answers, padded, for every ``k`` up to ``top_k`` (the pipeline's candidates grow
        with ``k``: its ``top_k=3`` answers are not the first three of ``top_k=5``'s). A checkpoint trained with
        ``version_2_with_negative`` offers the empty answer (``handle_impossible_answer``). What the pipeline
        refuses, the graph refuses with an ``InvalidArgument`` error (:func:`refuse_what_the_pipeline_refuses`):
        an empty question or context, unequal counts.
        """
        from kbert.tasks.question_answering.answers_graph import answers_for_every_top_k

        tokenizer = self.checkpoint.tokenizer
        max_seq_len = min(max_length, DEFAULT_MAX_SEQ_LEN)
        doc_stride = min(max_seq_len // 2, 128)
        continuation = tf.constant(self._continuation())
        word_aware = self._word_aware
        impossible = bool(self.config.extra.get("kbert", {}).get("version_2_with_negative", False))

        def serve(question, context):
            with tf.control_dependencies(refuse_what_the_pipeline_refuses(self.name, question, context)):
                question, context = tf.identity(question), tf.identity(context)
            encoding = tokenizer.encode(question, context, max_length=max_seq_len, stride=doc_stride,
                                        truncation="only_second")
            dense = encoding.padded(pad_id=tokenizer.pad_id)
            logits = keras_model({k: dense[k] for k in ("token_ids", "segment_ids", "padding_mask")},
                                 training=False)["logits"]
            in_context = tf.equal(dense["sequence_ids"], SECOND)
            if word_aware:
                starts_word = in_context & ~tf.gather(continuation, dense["token_ids"])
                word_ids = tf.cumsum(tf.cast(starts_word, tf.int32), axis=1)
            else:  # the last pre-tokenizer word of the window's context starting at or before each token
                word_starts = tf.gather(tokenizer.word_starts(context),
                                        encoding.sample_index).to_tensor(default_value=2 ** 30)
                # a last column past every offset: searchsorted reshapes to (-1, width), which fails on width 0
                word_starts = tf.pad(word_starts, [[0, 0], [0, 1]], constant_values=2 ** 30)
                word_ids = tf.searchsorted(word_starts, dense["starts"], side="right", out_type=tf.int32) - 1
            word_ids = tf.where(in_context, word_ids, -1)
            windows = dict(start_logits=logits[..., 0], end_logits=logits[..., 1],
                           sequence_ids=dense["sequence_ids"], starts=dense["starts"], ends=dense["ends"],
                           word_ids=word_ids, sample_index=encoding.sample_index,
                           num_examples=tf.shape(question)[0], contexts=context,
                           handle_impossible_answer=impossible)
            ranked = answers_for_every_top_k(**windows, top_k=top_k)
            keys = ("answer", "start", "end", "score")
            return {**{k: ranked[k][:, 0, 0] for k in keys}, "count": ranked["count"],  # top_k=1: the default call
                    **{f"top_k_{k}": ranked[k] for k in keys}}

        strings = [tf.TensorSpec([None], tf.string, name="question"), tf.TensorSpec([None], tf.string, name="context")]
        return serve, strings

    def export_metadata(self):
        return {"inputs": ["question", "context"], "top_k": EXPORT_TOP_K}

    @classmethod
    def answers_from_serving(cls, texts, outputs, metadata):
        """``{'question', 'answer', 'start', 'end', 'score'}`` per ``{question, context}`` record."""
        return [{"question": record["question"] if isinstance(record, dict) else record,
                 "answer": outputs["answer"][b], "start": outputs["start"][b], "end": outputs["end"][b],
                 "score": outputs["score"][b]} for b, record in enumerate(texts)]

    serving_call_parameters = ("question", "context", "top_k")

    @classmethod
    def check_serving_parameters(cls, params, metadata):
        """``top_k`` up to the answers the export keeps per question (``metadata["top_k"]``)."""
        params = super().check_serving_parameters(params, metadata)
        top_k, kept = _integer(params, "top_k", 1, cls.name), metadata.get("top_k", EXPORT_TOP_K)
        if top_k > kept:
            raise InputError(f"{cls.name} export: top_k={top_k} is more than the {kept} answers per question it keeps")
        return {**params, "top_k": top_k}

    @classmethod
    def pipeline_outputs_from_serving(cls, examples, outputs, metadata, params):
        """Per question the pipeline's answers ``{'score', 'start', 'end', 'answer'}``: the export's best one, or
        its ``top_k_*`` answers for that ``top_k`` (those with a score above 0, see ``serving_signature``)."""
        keys = ("score", "start", "end", "answer")
        if params["top_k"] == 1:
            return [[{k: outputs[k][b] for k in keys}] for b in range(len(examples))]
        row = params["top_k"] - 1
        if any(not isinstance(counts, list) for counts in outputs["count"]):
            raise ServingConfigError(f"{cls.name} export: its 'count' output has one number per question, not one per "
                                     "top_k (an export made before its top_k_* outputs held every top_k's answers); "
                                     "export the checkpoint again")
        return [[{k: outputs[f"top_k_{k}"][b][row][i] for k in keys} for i in range(counts[row])]
                for b, counts in enumerate(outputs["count"])]

def context_word_ids(token_ids: np.ndarray, sequence_ids: np.ndarray, continuation: np.ndarray) -> np.ndarray:
    """The word of every context token (-1 elsewhere), as the BERT pre-tokenizer splits words.

    WordPiece marks every piece after a word's first with ``##``, so a new word starts at every
    context token without it; a window that starts inside a word gives its leading pieces a word of
    their own. Only equality of the ids matters (``align_to_words`` spans a token's whole word).

    >>> context_word_ids(np.array([1, 5, 6, 7]), np.array([-1, 1, 1, 1]), np.array([0, 0, 0, 0, 0, 0, 1, 0], bool))
    array([-1,  1,  1,  2])
    """
    context = sequence_ids == SECOND
    words = np.cumsum(context & ~continuation[token_ids])  # leading pieces of a word cut by the window: 0
    return np.where(context, words, -1)


def refuse_what_the_pipeline_refuses(task_name: str, question, context) -> list:
    """In-graph checks of a serving request (TF ops): as many questions as contexts and none of them empty,
    as :meth:`QuestionAnswering.parse_inputs` demands, else an ``InvalidArgument`` error that says which input
    (``question-answering: input 1: the question is empty``)."""
    questions, contexts = tf.size(question), tf.size(context)
    checks = [tf.debugging.Assert(tf.equal(questions, contexts), [tf.strings.format(
        task_name + ": {} questions but {} contexts", (questions, contexts))])]
    for key, texts in (("question", question), ("context", context)):
        empty = tf.equal(tf.strings.length(texts), 0)
        first = tf.reduce_min(tf.where(empty, tf.range(tf.size(texts)), tf.size(texts)))
        checks.append(tf.debugging.Assert(~tf.reduce_any(empty), [tf.strings.format(
            f"{task_name}: input {{}}: the {key} is empty", first)]))
    return checks


def _integer(params, key, default, task_name, minimum: int = 1) -> int:
    value = params.get(key)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{task_name}: {key} must be an integer >= {minimum}, got {value!r}")
    return value


def _scoring_options(task_options) -> dict:
    return {"version_2": bool(task_options.get("version_2_with_negative", False)),
            "max_answer_len": task_options.get("max_answer_len", 30),
            "null_score_diff_threshold": task_options.get("null_score_diff_threshold", 0.0)}

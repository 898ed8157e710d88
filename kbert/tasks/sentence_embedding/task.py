"""The sentence-embedding task class: what ``SentenceTransformer(folder).encode(texts)`` returns, on Keras.

The model folder's sentence-transformers files decide everything (see
:mod:`kbert.tasks.sentence_embedding.config`): the pooling (mean over the attention mask, CLS, max, ...,
computed in the graph), whether vectors are L2-normalised (a ``Normalize`` module), the truncation
(``max_seq_length`` of ``sentence_bert_config.json``, e.g. 256 for all-MiniLM-L6-v2, not the tokenizer's 512),
lower-casing and prompts. **A plain Hugging Face folder (no modules.json) gets mean pooling without
normalisation**, as ``SentenceTransformer`` gives it.

Call parameters (also accepted by ``kbert.pipeline(...)`` as defaults):

* ``normalize``: ``None`` (default: as the model says), ``True`` or ``False``;
* ``return_tensors``: numpy instead of lists of floats (a list of texts gives one ``(N, D)`` array);
* ``max_seq_length``: tokens per text, special tokens included (default: the model's); it is what truncates
  here, so the pipeline's own ``max_length`` does not apply to this task;
* ``prompt_name`` / ``prompt``: a prompt of ``config_sentence_transformers.json`` or a literal one, put
  before every text (default: its ``default_prompt_name``, usually none).

``batch_size`` is the pipeline's, as for every task. The SavedModel's ``serving_default`` returns
``embedding`` (normalised as the model says, default prompt applied) for raw ``text`` strings; exported with a
corpus index it also has a ``search`` signature (:mod:`kbert.semantic_search.search_graph`).

Example:
    >>> import kbert
    >>> embed = kbert.pipeline("sentence-embedding")          # the embedded all-MiniLM-L6-v2
    >>> vector = embed("I love Paris")                      # a str: one vector (list of floats)
    >>> len(vector), round(sum(v * v for v in vector), 4)   # MiniLM normalises
    (384, 1.0)
    >>> embed(["A cat sleeps.", ""], return_tensors=True).shape
    (2, 384)
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kbert.errors import InputError
from kbert.tasks.base import Example, ExampleOutput, Task
from kbert.tasks.sentence_embedding.config import SentenceEmbeddingConfig
from kbert.tasks.sentence_embedding.pooling import SentencePooling

NORM_EPSILON = 1e-12  # torch.nn.functional.normalize's: v / max(||v||, eps)


def l2_normalize(vector: np.ndarray) -> np.ndarray:
    """``vector / max(||vector||, 1e-12)`` along the last axis, as sentence-transformers' Normalize.

    >>> l2_normalize(np.array([3.0, 4.0], "float32")).tolist()
    [0.6000000238418579, 0.800000011920929]
    """
    norm = np.linalg.norm(vector, axis=-1, keepdims=True)
    return (vector / np.maximum(norm, NORM_EPSILON)).astype(vector.dtype)


class SentenceEmbedding(Task):
    """One vector per text, as sentence-transformers computes it for the checkpoint's folder."""

    name = "sentence-embedding"
    accepts_pairs = False
    call_parameters = ("normalize", "return_tensors", "max_seq_length", "prompt_name", "prompt")
    optional_input_fields = ()

    def __init__(self, checkpoint):
        super().__init__(checkpoint)
        self.sentence_config = SentenceEmbeddingConfig.from_folder(checkpoint.path)
        declared = self.sentence_config.embedding_dimension
        if declared is not None and declared != self.config.hidden_size:
            from kbert.errors import CorruptCheckpointError

            raise CorruptCheckpointError(f"{checkpoint.path}: the Pooling config declares embedding_dimension "
                                         f"{declared} but the encoder's hidden_size is {self.config.hidden_size}")
        self._serving_max_length: int | None = None

    @property
    def dimension(self) -> int:
        """Length of the vectors (hidden size times the number of pooling modes)."""
        return self.config.hidden_size * len(self.sentence_config.pooling)

    @property
    def max_seq_length(self) -> int:
        """Tokens per text by default: the model's ``max_seq_length``, at most the tokenizer's maximum."""
        limit = self.checkpoint.tokenizer.model_max_length
        return min(self.sentence_config.max_seq_length or limit, limit)

    def describe(self) -> dict:
        """JSON-safe summary of how this task embeds (recorded with exports and vector indexes)."""
        return {**self.sentence_config.describe(), "max_seq_length": self.max_seq_length, "dimension": self.dimension}

    # --- model ---------------------------------------------------------------------------------
    def build_model(self, dropout: float | None = None) -> keras.Model:
        backbone = self.checkpoint.build_backbone(use_pooler=False)
        inputs = backbone.input
        hidden = backbone(inputs)["sequence_output"]  # (B, T, H)
        pooled = SentencePooling(self.sentence_config.pooling, name="pooling")(hidden, inputs["padding_mask"])
        return keras.Model(inputs, {"sentence_embedding": pooled}, name="sentence_embedder")  # (B, D)

    # --- pipeline ------------------------------------------------------------------------------
    def check_parameters(self, params):
        params = super().check_parameters(params)
        normalize = params.get("normalize")
        if normalize is not None and not isinstance(normalize, bool):
            raise InputError(f"{self.name}: normalize must be True, False or None (the model's choice), "
                             f"got {normalize!r}")
        length = params.get("max_seq_length")
        limit = self.checkpoint.tokenizer.model_max_length
        if length is not None and (not isinstance(length, int) or isinstance(length, bool) or not 3 <= length <= limit):
            raise InputError(f"{self.name}: max_seq_length must be an integer from 3 to {limit} (the tokenizer's "
                             f"maximum), got {length!r}")
        prompt, prompt_name = params.get("prompt"), params.get("prompt_name")
        if prompt is not None and prompt_name is not None:
            raise InputError(f"{self.name}: give prompt or prompt_name, not both")
        if prompt is not None and not isinstance(prompt, str):
            raise InputError(f"{self.name}: prompt must be a str, got {type(prompt).__name__}")
        try:
            resolved = self.sentence_config.prompt_for(prompt_name, prompt)
        except KeyError:
            raise InputError(f"{self.name}: prompt_name {prompt_name!r} is not one of the model's prompts "
                             f"{sorted(self.sentence_config.prompts)}") from None
        if resolved and not self.sentence_config.include_prompt:
            raise InputError(f"{self.name}: the model's Pooling excludes prompt tokens (include_prompt=false), "
                             f"which kbert does not support; call without a prompt")
        return {"normalize": self.sentence_config.normalize if normalize is None else normalize,
                "return_tensors": bool(params.get("return_tensors", False)),
                "max_seq_length": self.max_seq_length if length is None else length,
                "prompt": resolved or None}

    def parse_inputs(self, inputs, params=None):
        examples = super().parse_inputs(inputs, params)
        prompt = (params or {}).get("prompt")
        return [Example(self.model_text(e.text, prompt)) for e in examples]

    def model_text(self, text: str, prompt: str | None = None) -> str:
        """The string the tokenizer gets for ``text``: the prompt before it, lower-cased if the model says so."""
        text = (prompt or "") + text
        return text.lower() if self.sentence_config.do_lower_case else text

    def window_length(self, params):
        return params["max_seq_length"]

    def postprocess(self, output: ExampleOutput, normalize=False, return_tensors=False, max_seq_length=None,
                    prompt=None):
        vector = output.outputs["sentence_embedding"]  # (D,)
        if normalize:
            vector = l2_normalize(vector)
        return vector if return_tensors else vector.tolist()

    @classmethod
    def package(cls, results, inputs, params):
        """A str gives one vector, a list one vector per text (never an empty one); with ``return_tensors`` a list
        gives one ``(N, D)`` float32 array, as ``SentenceTransformer.encode``."""
        if params.get("return_tensors") and not isinstance(inputs, (str, dict)):
            return np.stack(results)
        return super().package(results, inputs, params)

    # --- export --------------------------------------------------------------------------------
    def serving_signature(self, keras_model, *, max_length: int, text_pair: bool = False):
        """``text`` -> ``embedding``; truncation at the smaller of ``max_length`` and the model's ``max_seq_length``,
        the default prompt and lower-casing applied in the graph."""
        return self.embedding_signature(keras_model, max_length=max_length, prompt=self.sentence_config.prompt_for())

    def query_prompt(self) -> str | None:
        """The prompt of search queries, as ``encode_query`` picks it: the ``query`` prompt, else the default."""
        prompts = self.sentence_config.prompts
        return self.sentence_config.prompt_for("query" if "query" in prompts else None)

    def embedding_signature(self, keras_model, *, max_length: int, prompt: str | None):
        """``(function, input_signature)``: ``text`` -> ``{"embedding"}`` with ``prompt`` put before every text."""
        self._serving_max_length = min(max_length, self.max_seq_length)
        function, signature = super().serving_signature(keras_model, max_length=self._serving_max_length)
        lower = self.sentence_config.do_lower_case

        def serve(text):
            if prompt:
                text = tf.strings.join([tf.fill(tf.shape(text), prompt), text])
            if lower:
                text = tf.strings.lower(text, encoding="utf-8")
            return function(text)

        return serve, signature

    serving_normalizes: bool | None = None  # None: as the model says (its Normalize module); True: always

    def serving_outputs(self, outputs, inputs):
        vector = outputs["sentence_embedding"]  # (B, D)
        if self.sentence_config.normalize if self.serving_normalizes is None else self.serving_normalizes:
            vector = tf.math.l2_normalize(vector, axis=-1, epsilon=NORM_EPSILON ** 2)
        return {"embedding": vector}

    @classmethod
    def answers_from_serving(cls, texts, outputs, metadata):
        return [{"text": t, "embedding": vector} for t, vector in zip(texts, outputs["embedding"])]

    serving_call_parameters = ("normalize", "return_tensors")

    @classmethod
    def check_serving_parameters(cls, params, metadata):
        """``normalize`` (default: the export's vectors as they are, which for sentence-embedding is the model's
        choice, as the pipeline's default) and ``return_tensors``; the prompt and length are the export's."""
        params = super().check_serving_parameters(params, metadata)
        normalize = params.get("normalize")
        if normalize is not None and not isinstance(normalize, bool):
            raise InputError(f"{cls.name}: normalize must be True, False or None (the model's choice), "
                             f"got {normalize!r}")
        if normalize is False and cls._served_unit_vectors(metadata):
            raise InputError(f"{cls.name} export: it serves unit vectors; normalize=False cannot undo that")
        return {"normalize": bool(normalize), "return_tensors": bool(params.get("return_tensors", False))}

    @classmethod
    def _served_unit_vectors(cls, metadata) -> bool:
        return bool(metadata.get("normalize")) if cls.serving_normalizes is None else cls.serving_normalizes

    @classmethod
    def pipeline_outputs_from_serving(cls, examples, outputs, metadata, params):
        """One vector (list of floats) per text, as the pipeline and ``SentenceTransformer.encode`` give it."""
        vectors = [np.asarray(vector, np.float32) for vector in outputs["embedding"]]
        if params["normalize"] and not cls._served_unit_vectors(metadata):
            vectors = [l2_normalize(vector) for vector in vectors]
        return [vector if params["return_tensors"] else vector.tolist() for vector in vectors]

    def export_metadata(self) -> dict:
        return {**self.describe(), "max_length": self._serving_max_length or self.max_seq_length,
                "prompt": self.sentence_config.prompt_for()}

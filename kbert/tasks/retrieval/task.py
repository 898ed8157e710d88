"""The retrieval task class: a sentence-embedding model that ``kbert train`` fine-tunes on (query, document) pairs.

Inference and export are the sentence-embedding task's (:mod:`kbert.tasks.sentence_embedding.task`): the same
vectors as sentence-transformers for the folder; the exported ``embedding`` is always L2-normalised (the
query encoder of a cosine index), whether or not the model has a ``Normalize`` module. Training adds what :mod:`kbert.tasks.retrieval` lists; the
checkpoint written is a sentence-transformers folder with the starting model's pooling, normalisation and
``max_seq_length`` (a plain HF folder gets mean pooling, as ``SentenceTransformer`` would give it).

Example:
    >>> import kbert
    >>> task = kbert.tasks.get_task("retrieval")(kbert.load_checkpoint("minilm"))
    >>> task.monitor, task.sentence_config.pooling, task.sentence_config.normalize
    ('val_mrr@10', ('mean',), True)
"""

from __future__ import annotations

from kbert.tasks.base import EvaluationReport
from kbert.tasks.sentence_embedding.task import SentenceEmbedding


class Retrieval(SentenceEmbedding):
    """Bi-encoder retrieval: queries and documents embedded by one encoder, trained with in-batch negatives."""

    name = "retrieval"
    hf_head = "Model"  # BertModel / RobertaModel: the bare encoder, as sentence-transformers saves it
    monitor = "val_mrr@10"
    serving_normalizes = True  # the exported query encoder gives unit vectors: inner product = cosine

    def __init__(self, checkpoint, id2label=None, problem_type=None):
        super().__init__(checkpoint)  # a bare encoder: no labels, no problem_type

    @classmethod
    def has_head_for(cls, checkpoint) -> bool:
        return False  # nothing tells a sentence-embedding folder from one trained for retrieval

    @classmethod
    def can_evaluate(cls, checkpoint) -> bool:
        return True  # any encoder can be scored (the untuned model is the baseline)

    def head_layers(self) -> dict[str, str]:
        return {}

    # --- training ------------------------------------------------------------------------------
    @classmethod
    def prepare_training(cls, config, checkpoint, max_length):
        from kbert.tasks.retrieval.training_data import prepare

        return prepare(cls, config, checkpoint, min(max_length, cls(checkpoint).max_seq_length))

    def build_model(self, dropout: float | None = None):
        """The sentence encoder (``dropout`` is unused: there is no head; the encoder keeps its own)."""
        return super().build_model()

    def training_model(self, model, loss_options: dict, task_options: dict):
        from kbert.tasks.retrieval.bi_encoder_training import BiEncoderTraining
        from kbert.tasks.retrieval.ranking_loss import RankingLoss

        loss = RankingLoss.from_options(scale=task_options["scale"], symmetric=task_options["symmetric"])
        return BiEncoderTraining(model, loss, mini_batch_size=task_options.get("mini_batch_size"),
                                 mask_duplicates=not task_options["keep_duplicates"]), None, []

    def write_extra_files(self, folder) -> list[str]:
        """sentence-transformers' module files: the trained folder loads in ``SentenceTransformer(folder)``."""
        return self.sentence_config.save(folder, self.config.hidden_size)

    # --- evaluation ----------------------------------------------------------------------------
    def evaluate_data(self, data, *, model, read_options, task_options, batch_size, max_length,
                      limit) -> EvaluationReport:
        from kbert.tasks.retrieval.pairs import read_pairs
        from kbert.tasks.retrieval.scoring import RetrievalSet, score

        examples = read_pairs(data, format=read_options.get("format"), query_column=read_options.get("text_column"),
                              positive_column=read_options.get("text_pair_column"), limit=limit,
                              encoding=read_options.get("encoding", "utf-8"))
        held_out = RetrievalSet.from_examples(examples).with_texts(self.model_text)
        return score(model, held_out, self.checkpoint.tokenizer, batch_size=batch_size,
                     max_length=min(max_length, self.max_seq_length))

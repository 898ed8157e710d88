"""Retrieval training batches: (query, positive[, negatives]) rows ─► one table of distinct texts ─► batches.

    rows ─► distinct texts (each tokenized once; its position is its text id) ─► (query id, document ids) per row
         ─► shuffle(seed, every epoch) ─► batch ─► gather the token ids of the batch's texts and pad

A batch is ``{"query": inputs (B, Tq), "documents": inputs ((1 + n) B, Td), "query_ids" (B,), "document_ids"
((1 + n) B,)}``, documents laid out ``[positives; negatives_1; ...; negatives_n]`` (sentence-transformers'
order). Batches are random, not grouped by length: which texts share a batch decides the in-batch negatives,
and grouping by length would make them easier (similar lengths, often similar sources). Equal texts share a
text id, which is how the loss masks duplicates.

Example:
    >>> from kbert.checkpoint import load_checkpoint
    >>> from kbert.tasks.retrieval.pairs import RetrievalExample
    >>> tokenizer = load_checkpoint("tests/fixtures/checkpoints/tiny-uncased-cls").tokenizer
    >>> rows = [RetrievalExample("oil", "crude rose", ("team won",)), RetrievalExample("goal", "team won", ("crude rose",))]
    >>> data = pair_batches(tokenizer, rows, batch_size=2, max_length=16)
    >>> batch = next(iter(data.dataset))
    >>> batch["query"]["token_ids"].shape[0], batch["documents"]["token_ids"].shape[0], batch["document_ids"].numpy().tolist()
    (2, 4, [2, 3, 3, 2])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from kbert.errors import TrainingError
from kbert.tasks.base import EvaluationReport, PreparedTraining, TrainingPlan
from kbert.tasks.retrieval.pairs import RetrievalExample, read_pairs
from kbert.batching.dataset import TrainingData, tokenize_texts


def text_ids(examples: Sequence[RetrievalExample]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(texts, query_ids (N,), document_ids (N, 1 + n))``: the distinct texts and each row's positions in them."""
    table: dict[str, int] = {}
    queries = np.array([table.setdefault(e.query, len(table)) for e in examples], np.int32)
    documents = np.array([[table.setdefault(t, len(table)) for t in (e.positive, *e.negatives)] for e in examples],
                         np.int32)
    return list(table), queries, documents


def pair_batches(tokenizer, examples: Sequence[RetrievalExample], *, batch_size: int, max_length: int,
                 shuffle: bool = False, seed: int = 0, text_for_model: Callable[[str], str] = str) -> TrainingData:
    """Batches of query and document inputs (see the module docstring); ``text_for_model`` maps a text to what
    the tokenizer gets (the model's lower-casing)."""
    texts, queries, documents = text_ids(examples)
    tokens, _ = tokenize_texts(tokenizer, [text_for_model(t) for t in texts], None, max_length=max_length)
    pad_id = tokenizer.pad_id

    def inputs(ids):
        rows = tf.gather(tokens, ids)  # ragged (B, (T))
        token_ids = rows.to_tensor(default_value=pad_id)
        return {"token_ids": token_ids, "segment_ids": tf.zeros_like(token_ids),
                "padding_mask": tf.ones_like(rows).to_tensor(default_value=0)}

    def batch(query_ids, document_ids):  # (B,), (B, 1 + n)
        flat = tf.reshape(tf.transpose(document_ids), [-1])  # [positives; negatives_1; ...]
        return {"query": inputs(query_ids), "documents": inputs(flat), "query_ids": query_ids, "document_ids": flat}

    dataset = tf.data.Dataset.from_tensor_slices((queries, documents))
    if shuffle:
        dataset = dataset.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
    num_batches = -(-len(examples) // batch_size)
    dataset = dataset.batch(batch_size).map(batch).apply(tf.data.experimental.assert_cardinality(num_batches))
    return TrainingData(dataset.prefetch(tf.data.AUTOTUNE), len(examples), num_batches)


def prepare(task_cls, config, checkpoint, max_length: int) -> PreparedTraining:
    """Read and check every row of ``config.train`` / ``config.eval`` (nothing is written)."""
    from kbert.tasks.retrieval.scoring import RetrievalSet, score
    from kbert.tasks.sentence_embedding.config import SentenceEmbeddingConfig

    options = config.task_options
    read = dict(format=config.format, query_column=config.text_column, positive_column=config.text_pair_column,
                encoding=config.encoding)
    train = read_pairs(config.train, limit=config.train_limit, **read)
    evaluation = read_pairs(config.eval, limit=config.eval_limit, **read) if config.eval is not None else None
    mini_batch = options.get("mini_batch_size")
    if mini_batch is not None and mini_batch > config.batch_size:
        raise TrainingError(f"mini_batch_size {mini_batch} is larger than the batch size {config.batch_size}; "
                            f"it is the number of texts per forward pass within one batch")
    if len(train) < 2 or config.batch_size < 2:
        raise TrainingError(f"in-batch negatives need at least 2 rows per batch (got {len(train)} rows and "
                            f"batch_size {config.batch_size})")
    lower = SentenceEmbeddingConfig.from_folder(checkpoint.path).do_lower_case
    text_for_model = str.lower if lower else str
    tokenizer = checkpoint.tokenizer

    def build() -> TrainingPlan:
        data = pair_batches(tokenizer, train, batch_size=config.batch_size, max_length=max_length, shuffle=True,
                            seed=config.seed, text_for_model=text_for_model)
        if evaluation is None:
            return TrainingPlan(data, None)
        held_out = RetrievalSet.from_examples(evaluation).with_texts(text_for_model)

        def scorer(model) -> EvaluationReport:
            encoder = getattr(model, "encoder", model)  # the training model wraps the encoder
            return score(encoder, held_out, tokenizer, batch_size=config.batch_size, max_length=max_length)

        return TrainingPlan(data, scorer, len(held_out.queries))

    negatives = len(train[0].negatives)
    info = {"retrieval": {"rows": len(train), "hard_negatives": negatives, **options}}
    return PreparedTraining(None, None, build, units=("pairs", "queries"), checkpoint_info=info)

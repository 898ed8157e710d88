"""Embed texts with a sentence-embedding model, build a vector index of a corpus file and search it.

What ``kbert embed``, ``kbert index`` and ``kbert search`` run. Queries and documents are embedded as
``SentenceTransformer.encode_query`` / ``encode_document`` do: with the model's ``query`` prompt, and its
``document`` (else ``passage``, else ``corpus``) prompt, when it has them (all-MiniLM-L6-v2 has none). Corpora
are read twice, row by row: once to check every row (a bad row fails before any embedding), then in chunks that
are embedded and added to the index as they come. A search can re-rank the bi-encoder's best ``rerank_depth``
documents with a cross-encoder (:mod:`kbert.semantic_search.rerank`).

Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "news.jsonl").write_text('{"id": "a", "text": "Stocks fell sharply"}\\n'
    ...                                        '{"id": "b", "text": "The team won the final"}\\n')
    >>> summary = build_index("minilm", folder / "news.jsonl", folder / "index")
    >>> summary["documents"], summary["dimension"]
    (2, 384)
    >>> [hit["id"] for hit in search_index(folder / "index", ["football match"], k=2)[0]]
    ['b', 'a']
"""

from __future__ import annotations

import os
import pathlib
import warnings
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from kbert.errors import DataWarning, InputError
from kbert.hints import option, parameter
from kbert.progress import progress, progress_bars
from kbert.semantic_search.corpus import Document, read_corpus
from kbert.vector_index import IndexMismatchError, VectorIndex, check_positive

CHUNK_SIZE = 1024  # texts embedded per pipeline call (sorted by length within it)
DOCUMENT_PROMPTS = ("document", "passage", "corpus")
APPROXIMATE = ("hnsw", "ivf")
RERANK_DEPTH = 50  # documents a cross-encoder re-scores per query by default (k when k is larger)
RRF_K = 60  # reciprocal rank fusion's constant (Cormack, Clarke and Buettcher, SIGIR 2009; Elasticsearch's default)
FUSIONS = ("rrf",)


def model_name(model, checkpoint) -> str:
    """How indexes and exports name a model: ``"minilm"`` for the embedded default, else its resolved folder."""
    from kbert.checkpoint.resolve import DEFAULT_ALIASES, DEFAULT_MODEL

    default = model is None or (isinstance(model, str) and model.lower() in DEFAULT_ALIASES)
    return DEFAULT_MODEL if default else str(checkpoint.path.resolve())


class Embedder:
    """A sentence-embedding model for retrieval: lists of texts in, ``(N, D)`` float32 vectors out.

    Args:
        model: checkpoint folder, ``"minilm"`` / ``None`` (the embedded default) or ``hf://org/name``.
        batch_size: texts per forward pass.
        max_seq_length: tokens per text (default: the model's ``max_seq_length``).
        normalize: default: as the model says (a ``Normalize`` module).
        precision: ``"float32"`` or ``"bfloat16"`` (where native: :mod:`kbert.precision`).
    """

    def __init__(self, model: str | os.PathLike | None = None, *, batch_size: int = 32,
                 max_seq_length: int | None = None, normalize: bool | None = None, precision: str = "float32"):
        from kbert.checkpoint import load_checkpoint
        from kbert.pipelines import Pipeline
        from kbert.tasks.sentence_embedding.task import SentenceEmbedding

        checkpoint = load_checkpoint(model)
        self.task = SentenceEmbedding(checkpoint)
        self.params = {k: v for k, v in (("normalize", normalize), ("max_seq_length", max_seq_length)) if v is not None}
        self.settings = self.task.check_parameters(dict(self.params))  # bad values fail here
        self.pipeline = Pipeline(self.task, batch_size=batch_size, precision=precision)
        self.name = model_name(model, checkpoint)

    @property
    def dimension(self) -> int:
        return self.task.dimension

    def prompt_name(self, role: str) -> str | None:
        """The prompt of ``role`` (``"query"`` or ``"document"``), as ``encode_query``/``encode_document`` pick it."""
        prompts = self.task.sentence_config.prompts
        candidates = ("query",) if role == "query" else DOCUMENT_PROMPTS
        return next((name for name in candidates if name in prompts), None)

    def encode(self, texts: Sequence[str], role: str | None = None) -> np.ndarray:
        """``(len(texts), dimension)`` float32 vectors; ``role`` ``"query"``/``"document"`` picks the prompt."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        prompt_name = self.prompt_name(role) if role else None
        params = {**self.params, **({"prompt_name": prompt_name} if prompt_name else {})}
        return self.pipeline(texts, return_tensors=True, **params).astype(np.float32, copy=False)

    def encode_chunks(self, texts: Iterable[str], role: str | None = None,
                      chunk_size: int = CHUNK_SIZE) -> Iterator[np.ndarray]:
        """Vectors of ``texts`` chunk by chunk (an iterable of any length: nothing is held beyond a chunk)."""
        for chunk in _chunks(texts, chunk_size):
            yield self.encode(chunk, role)

    def describe(self) -> dict:
        """What an index records about the model: its name or path and how it embeds."""
        return {"model": self.name, **self.task.describe(), "normalize": self.settings["normalize"],
                "max_seq_length": self.settings["max_seq_length"]}


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _with_bar(chunks: Iterable, total_items: int, chunk_size: int, description: str) -> Iterable:
    """``chunks`` with one progress bar on a terminal (the pipeline's own per-call bars stay off)."""
    with progress_bars(description):
        return progress(chunks, total=-(-total_items // chunk_size), unit="chunk")


def embed_texts(embedder: Embedder, texts: Sequence[str], output: str | os.PathLike, *,
                chunk_size: int = CHUNK_SIZE) -> dict:
    """Write the vectors of ``texts`` to the ``.npy`` file ``output`` chunk by chunk; a summary."""
    output = pathlib.Path(output)
    if output.suffix != ".npy":
        raise InputError(f"{output}: the output must be a .npy file")
    if not texts:
        raise InputError("no texts to embed")
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{output.name}.tmp")
    array = np.lib.format.open_memmap(staging, mode="w+", dtype=np.float32, shape=(len(texts), embedder.dimension))
    try:
        done = 0
        for vectors in _with_bar(embedder.encode_chunks(texts, chunk_size=chunk_size), len(texts), chunk_size,
                                 "embedding"):
            array[done:done + len(vectors)] = vectors
            done += len(vectors)
        array.flush()
        del array
        os.replace(staging, output)
    finally:
        staging.unlink(missing_ok=True)
    return {"output": str(output), "count": len(texts), "dimension": embedder.dimension,
            "normalized": embedder.settings["normalize"], "model": embedder.name}


def build_index(model: str | os.PathLike | None, corpus: str | os.PathLike, output: str | os.PathLike, *,
                text_columns: Sequence[str | int] | None = None, id_column: str | int | None = None,
                format: str | None = None, encoding: str = "utf-8", approximate: str | None = None,
                ivf_lists: int | None = None, batch_size: int = 32, max_seq_length: int | None = None,
                chunk_size: int = CHUNK_SIZE, precision: str = "float32") -> dict:
    """Embed every document of ``corpus`` with ``model`` and save the index to the folder ``output``.

    ``approximate``: ``None`` (exact search), ``"hnsw"`` or ``"ivf"`` (with ``ivf_lists``, default
    ``sqrt(documents)``: see :mod:`kbert.vector_index`). ``precision``: the embedder's (:class:`Embedder`).
    Returns a JSON-safe summary.
    """
    output = pathlib.Path(output)
    if output.exists() and (not output.is_dir() or (any(output.iterdir()) and not (output / "index.json").is_file())):
        raise InputError(f"{output}: exists and is not a vector index folder; choose a new folder")
    if approximate not in (None, *APPROXIMATE):
        raise InputError(f"approximate must be one of {list(APPROXIMATE)} or None (exact), got {approximate!r}")
    if ivf_lists is not None and approximate != "ivf":
        raise InputError(f"{parameter('ivf_lists')} applies to {option('approximate', 'ivf')} indexes, "
                         f"not to {approximate or 'exact'} ones")
    if ivf_lists is not None:
        check_positive(ivf_lists, "ivf_lists")
    read = dict(text_columns=text_columns, id_column=id_column, format=format, encoding=encoding)
    count = sum(1 for _ in read_corpus(corpus, **read))  # every row checked before anything is embedded
    embedder = Embedder(model, batch_size=batch_size, max_seq_length=max_seq_length, precision=precision)
    index = VectorIndex(embedder.dimension, kind=approximate or "exact", metric="cosine", ivf_lists=ivf_lists,
                        model={**embedder.describe(), "corpus": str(pathlib.Path(corpus).resolve()),
                               "text_columns": [str(c) for c in text_columns or ["text"]]})
    chunks = _chunks(read_corpus(corpus, **read), chunk_size)
    for documents in _with_bar(chunks, count, chunk_size, "indexing"):
        vectors = embedder.encode([d.text for d in documents], role="document")
        index.add(vectors, ids=[d.id for d in documents], documents=[_record(d) for d in documents])
    index.save(output)
    ivf = {key: index.describe()[key] for key in ("ivf_lists_used", "nprobe")} if index.kind == "ivf" else {}
    return {"index": str(output), "documents": len(index), "dimension": index.dimension, "kind": index.kind,
            **ivf, "model": embedder.name}


def _record(document: Document) -> dict:
    return {"text": document.text, **{k: v for k, v in document.metadata.items() if k not in ("id", "text")}}


def search_index(index: str | os.PathLike | VectorIndex, queries: Sequence[str], *, k: int = 10,
                 model: str | os.PathLike | None = None, embedder: Embedder | None = None,
                 nprobe: int | None = None, rerank=None, rerank_depth: int | None = None,
                 fusion: str | None = None) -> list[list[dict]]:
    """The ``k`` best documents of each query: ``{"rank", "id", "score", "text", ...metadata}`` dicts.

    ``model`` defaults to the one the index was built with; one giving vectors of another dimension is an
    :class:`~kbert.vector_index.IndexMismatchError`. ``nprobe``: lists an IVF index scans (default: its own).

    ``rerank`` (a :class:`~kbert.semantic_search.rerank.Reranker` or a cross-encoder checkpoint folder) re-scores the
    bi-encoder's best ``rerank_depth`` documents (default ``max(k, 50)``; at least ``k``) and keeps the ``k``
    best: ``score`` is then the cross-encoder's, ``retrieval_score`` / ``retrieval_rank`` the bi-encoder's.
    ``fusion="rrf"`` orders them by reciprocal rank fusion of the two rankings instead (see :func:`rerank_hits`).
    """
    if isinstance(queries, str):
        queries = [queries]
    if not queries or not all(isinstance(q, str) for q in queries):
        raise InputError(f"queries must be a non-empty list of strings, got {queries!r:.80}")
    depth = _search_depth(k, rerank, rerank_depth)  # bad values fail before any model loads
    _check_fusion(fusion, rerank)
    index = index if isinstance(index, VectorIndex) else VectorIndex.load(index)
    built_with = index.model.get("model")
    if embedder is None:
        embedder = Embedder(model if model is not None else built_with,
                            max_seq_length=index.model.get("max_seq_length") if model is None else None)
    if embedder.dimension != index.dimension:
        raise IndexMismatchError(f"model {embedder.name} gives {embedder.dimension}-dimensional vectors but the "
                                 f"index holds {index.dimension}-dimensional ones (made by {built_with})")
    if built_with is not None and embedder.name != built_with:
        warnings.warn(f"the index was built with {built_with}, the queries are embedded with {embedder.name}",
                      DataWarning, stacklevel=2)
    found = index.search(embedder.encode(queries, role="query"), k=depth, nprobe=nprobe)
    hits = [[{"rank": rank, "id": doc_id, "score": score,
              **{key: value for key, value in index.document(position).items() if key != "id"}}
             for rank, (doc_id, score, position) in enumerate(zip(ids, scores, positions), start=1)]
            for ids, scores, positions in zip(found.ids, found.scores, found.positions)]
    return hits if rerank is None else rerank_hits(rerank, queries, hits, k, fusion=fusion)


def _search_depth(k: int, rerank, rerank_depth: int | None) -> int:
    """Documents to retrieve per query: ``k``, or the re-ranker's depth."""
    if rerank is None:
        if rerank_depth is not None:
            raise InputError("rerank_depth goes with rerank (a cross-encoder to re-score the documents)")
        return k
    if rerank_depth is None:
        return max(k, RERANK_DEPTH)
    if not isinstance(rerank_depth, int) or isinstance(rerank_depth, bool) or rerank_depth < k:
        raise InputError(f"rerank_depth must be an int of at least k ({k}), got {rerank_depth!r}")
    return rerank_depth


def _check_fusion(fusion: str | None, rerank) -> None:
    if fusion is None:
        return
    if fusion not in FUSIONS:
        raise InputError(f"fusion must be one of {list(FUSIONS)} or None, got {fusion!r}")
    if rerank is None:
        raise InputError("fusion goes with rerank (it fuses the bi-encoder's ranking with the cross-encoder's)")


def rerank_hits(rerank, queries: Sequence[str], hits: list[list[dict]], k: int,
                fusion: str | None = None) -> list[list[dict]]:
    """``hits`` (per query, best first) re-scored by the cross-encoder ``rerank``, the ``k`` best of each kept.

    Each hit's ``rerank_score`` is the cross-encoder's score, ``retrieval_score`` / ``retrieval_rank`` the
    bi-encoder's. Without ``fusion``, ``score`` is the cross-encoder's and orders the hits. With
    ``fusion="rrf"``, ``score`` is the reciprocal rank fusion of the two rankings,
    ``1 / (RRF_K + retrieval_rank) + 1 / (RRF_K + rerank_rank)``: no weight to tune, and it keeps what the
    bi-encoder got right where a cross-encoder trained on little data is the weaker ranker (AG News in the
    README's retrieval benchmark, where re-ranking alone lowered MRR@10).
    """
    from kbert.semantic_search.rerank import Reranker

    _check_fusion(fusion, rerank)

    reranker = rerank if isinstance(rerank, Reranker) else Reranker(rerank)
    missing = next((hit["id"] for row in hits for hit in row if not isinstance(hit.get("text"), str)), None)
    if missing is not None:
        raise InputError(f"document {missing!r} has no text in the index; re-ranking reads the documents' texts "
                         f"(build the index with `kbert index`, or add documents with a 'text')")
    scores = iter(reranker.score_pairs([(query, hit["text"]) for query, row in zip(queries, hits) for hit in row]))
    reranked = []
    for row in hits:
        scored = [{**hit, "score": score, "rerank_score": score, "retrieval_score": hit["score"],
                   "retrieval_rank": hit["rank"]} for hit, score in zip(row, scores)]
        scored.sort(key=lambda hit: -hit["rerank_score"])  # stable: ties keep the bi-encoder's order
        if fusion == "rrf":
            for rerank_rank, hit in enumerate(scored, start=1):
                hit["rerank_rank"] = rerank_rank
                hit["score"] = 1.0 / (RRF_K + hit["retrieval_rank"]) + 1.0 / (RRF_K + rerank_rank)
            scored.sort(key=lambda hit: (-hit["score"], hit["retrieval_rank"]))
        reranked.append([{**hit, "rank": rank} for rank, hit in enumerate(scored[:k], start=1)])
    return reranked

"""A vector index over FAISS that keeps each vector's document (id, text, metadata) and saves to a folder.

* ``kind="exact"``: ``faiss.IndexFlatIP``, every vector compared (the true top k);
* ``kind="hnsw"``: ``faiss.IndexHNSWFlat`` with inner product, approximate (``hnsw_m`` links per vector,
  ``ef_construction`` / ``ef_search`` candidate lists: larger is slower and closer to exact);
* ``kind="ivf"``: ``faiss.IndexIVFFlat`` with inner product, approximate: k-means splits the vectors into
  ``ivf_lists`` lists and a query scans the ``nprobe`` lists nearest to it (more is slower and closer to exact;
  ``search(..., nprobe=N)`` overrides the stored default).

**How an IVF index is trained.** The lists must be learnt before any vector goes in, and a corpus's first chunk
is no fair sample of it (files are often sorted by date or topic), so the vectors added are held back until the
index is first searched or saved; then k-means runs on (a sample of at most 256 per list of) all of them, and
they are added. The number of lists is fixed then, from the ``N`` vectors held: ``ivf_lists=None`` (default)
takes ``round(sqrt(N))``; any value is lowered to ``N // 39`` (at least 1), as FAISS wants 39 training points
per list. ``describe()`` records both (``ivf_lists``: asked, ``ivf_lists_used``: trained). Vectors added after
that go into the lists learnt (as FAISS does; build a new index to re-learn them).

``metric="cosine"`` (default) L2-normalises every added and query vector, so scores are cosine similarities;
``"inner_product"`` uses the vectors as they are. Vectors are added in chunks of any size; the documents go
to a spool file on disk as they come (only the ids stay in memory), so corpora whose texts do not fit in memory
can be indexed as long as their vectors do (384 float32 = 1.5 kB per document for MiniLM).

A saved index is a folder::

    index.faiss        the FAISS index (faiss.write_index)
    index.json         kind, metric, dimension, count, FAISS version and the model that made the vectors
    ids.json           the document ids, in vector order
    documents.jsonl    one JSON object per vector: {"id", "text", ...metadata}
    offsets.npy        byte offset of each line of documents.jsonl (documents are read only when shown)

Example:
    >>> import numpy as np, tempfile
    >>> index = VectorIndex(3)
    >>> index.add(np.eye(3, dtype="float32"), ids=["x", "y", "z"], documents=[{"text": t} for t in "abc"])
    >>> found = index.search(np.array([[0.1, 1.0, 0.0]], "float32"), k=2)
    >>> found.ids, [round(s, 3) for s in found.scores[0]]
    ([['y', 'x']], [0.995, 0.1])
    >>> folder = tempfile.mkdtemp() + "/index"
    >>> index.save(folder).name
    'index'
    >>> again = VectorIndex.load(folder)
    >>> len(again), again.document(found.positions[0][0])
    (3, {'id': 'y', 'text': 'b'})
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pathlib
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from typing import Any

import faiss
import numpy as np

from kbert.errors import InputError, KbertError

INDEX_KINDS = ("exact", "hnsw", "ivf")
METRICS = ("cosine", "inner_product")
FORMAT = 1
FILES = ("index.faiss", "index.json", "ids.json", "documents.jsonl", "offsets.npy")
SETTINGS = ("hnsw_m", "ef_construction", "ef_search", "ivf_lists", "nprobe")  # index.json keys given to __init__
IVF_MIN_POINTS_PER_LIST = 39  # FAISS's k-means warns below this many training points per centroid
IVF_MAX_POINTS_PER_LIST = 256  # and samples down to this many (faiss.ClusteringParameters defaults)


def ivf_lists_for(count: int, requested: int | None) -> int:
    """The number of IVF lists trained on ``count`` vectors: ``requested`` (default ``round(sqrt(count))``),
    at most ``count // 39`` and at least 1.

    >>> ivf_lists_for(10_000, None), ivf_lists_for(10_000, 1000), ivf_lists_for(20, 8)
    (100, 256, 1)
    """
    wanted = round(count ** 0.5) if requested is None else requested
    return max(1, min(wanted, count // IVF_MIN_POINTS_PER_LIST))


class IndexNotFoundError(KbertError, FileNotFoundError):
    """A folder that holds no saved vector index (or misses one of its files)."""


class IndexMismatchError(KbertError, ValueError):
    """Vectors (or a model) that do not fit an index: another dimension, another model."""


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """Per query, the hits best first: document ``ids``, ``scores`` and ``positions`` (vector numbers, for
    :meth:`VectorIndex.document`). A query gets fewer than ``k`` hits only when the index holds fewer."""

    ids: list[list[str]]
    scores: list[list[float]]
    positions: list[list[int]]


class VectorIndex:
    """FAISS vectors + their documents; ``add`` in chunks, ``search``, ``save`` / ``load`` a folder."""

    def __init__(self, dimension: int, *, kind: str = "exact", metric: str = "cosine", hnsw_m: int = 32,
                 ef_construction: int = 200, ef_search: int = 128, ivf_lists: int | None = None, nprobe: int = 10,
                 model: dict | None = None):
        if not isinstance(dimension, int) or isinstance(dimension, bool) or dimension < 1:
            raise InputError(f"dimension must be a positive int, got {dimension!r}")
        if kind not in INDEX_KINDS:
            raise InputError(f"index kind must be one of {list(INDEX_KINDS)}, got {kind!r}")
        if metric not in METRICS:
            raise InputError(f"metric must be one of {list(METRICS)}, got {metric!r}")
        for name, value in (("hnsw_m", hnsw_m), ("ef_construction", ef_construction), ("ef_search", ef_search),
                            ("nprobe", nprobe), ("ivf_lists", 1 if ivf_lists is None else ivf_lists)):
            check_positive(value, name)
        self.dimension, self.kind, self.metric = dimension, kind, metric
        self.settings = {"hnsw_m": hnsw_m, "ef_construction": ef_construction, "ef_search": ef_search,
                         "ivf_lists": ivf_lists, "nprobe": nprobe}
        self.model = dict(model or {})  # what made the vectors (kbert.semantic_search.indexing records it)
        if kind == "exact":
            self._faiss = faiss.IndexFlatIP(dimension)
        elif kind == "hnsw":
            self._faiss = faiss.IndexHNSWFlat(dimension, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            self._faiss.hnsw.efConstruction = ef_construction
            self._faiss.hnsw.efSearch = ef_search
        else:
            self._faiss = None  # built by _train_ivf once the vectors are all in (see the module docstring)
        self._pending: list[np.ndarray] = []  # IVF: prepared vectors waiting for the lists to be learnt
        self._ids: list[str] = []
        self._offsets: list[int] = []
        self._documents: io.BufferedRandom | io.BufferedReader = tempfile.TemporaryFile("w+b")
        self._spooled = True  # False: _documents is a saved folder's file, opened read-only

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"VectorIndex({self.dimension}, kind={self.kind!r}, metric={self.metric!r}, documents={len(self)})"

    # --- adding ----------------------------------------------------------------------------------
    def add(self, vectors, ids: Sequence[str] | None = None, documents: Sequence[dict] | None = None) -> None:
        """Add ``(N, dimension)`` vectors with their ``ids`` (default: their positions as strings) and
        ``documents`` (JSON-safe dicts, e.g. ``{"text": ..., "title": ...}``; default ``{}``)."""
        vectors = self._check_vectors(vectors, "added vectors")
        n = vectors.shape[0]
        ids = [str(len(self) + i) for i in range(n)] if ids is None else list(ids)
        documents = [{} for _ in range(n)] if documents is None else list(documents)
        if len(ids) != n or len(documents) != n:
            raise InputError(f"{n} vectors but {len(ids)} ids and {len(documents)} documents")
        bad = next((i for i in ids if not isinstance(i, str)), None)
        if bad is not None:
            raise InputError(f"document ids must be strings, got {type(bad).__name__} {bad!r}")
        lines = []
        for doc_id, document in zip(ids, documents):
            if not isinstance(document, dict):
                raise InputError(f"document {doc_id!r}: expected a dict, got {type(document).__name__}")
            try:
                lines.append(json.dumps({"id": doc_id, **{k: v for k, v in document.items() if k != "id"}},
                                        ensure_ascii=False).encode("utf-8") + b"\n")
            except (TypeError, ValueError) as err:
                raise InputError(f"document {doc_id!r} is not JSON-safe ({err})") from None
        spool = self._writable_spool()
        spool.seek(0, os.SEEK_END)
        for line in lines:
            self._offsets.append(spool.tell())
            spool.write(line)
        if self._faiss is None:
            self._pending.append(self._prepared(vectors))
        else:
            self._faiss.add(self._prepared(vectors))
        self._ids.extend(ids)

    def _train_ivf(self) -> None:
        """Learn the IVF lists from the vectors held back (a sample of at most 256 per list), then add them."""
        if self._faiss is not None or not self._pending:
            return
        count = sum(len(chunk) for chunk in self._pending)
        lists = ivf_lists_for(count, self.settings["ivf_lists"])
        fraction = min(1.0, IVF_MAX_POINTS_PER_LIST * lists / count)
        rng = np.random.default_rng(0)
        sample = np.concatenate([chunk[rng.random(len(chunk)) < fraction] for chunk in self._pending])
        native = faiss.index_factory(self.dimension, f"IVF{lists},Flat", faiss.METRIC_INNER_PRODUCT)
        native.train(sample)  # ~256 per list when there are more; all of them otherwise
        native.nprobe = self.settings["nprobe"]
        while self._pending:
            native.add(self._pending.pop(0))
        self._faiss = native

    def _writable_spool(self):
        if not self._spooled:  # a loaded index: copy its documents before appending (the folder stays as saved)
            copy = tempfile.TemporaryFile("w+b")
            self._documents.seek(0)
            shutil.copyfileobj(self._documents, copy)
            self._documents.close()
            self._documents, self._spooled = copy, True
        return self._documents

    def _check_vectors(self, vectors, what: str) -> np.ndarray:
        array = np.asarray(vectors, dtype=np.float32)
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != self.dimension:
            raise IndexMismatchError(f"{what} have shape {tuple(np.shape(vectors))}; this index holds "
                                     f"{self.dimension}-dimensional vectors" + self._model_hint())
        if not np.isfinite(array).all():
            raise InputError(f"{what} contain NaN or infinite values")
        return np.ascontiguousarray(array)

    def _model_hint(self) -> str:
        return f" made by {self.model['model']}" if self.model.get("model") else ""

    def _prepared(self, vectors: np.ndarray) -> np.ndarray:
        if self.metric == "cosine":
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    # --- searching -------------------------------------------------------------------------------
    def search(self, query_vectors, k: int = 10, *, nprobe: int | None = None) -> SearchResult:
        """The ``k`` best documents of each query vector (``(Q, dimension)`` or one ``(dimension,)`` vector);
        ``nprobe``: lists scanned by an IVF index (default: its own ``nprobe``)."""
        check_positive(k, "k")
        if nprobe is not None:
            check_positive(nprobe, "nprobe")
            if self.kind != "ivf":
                raise InputError(f"nprobe applies to ivf indexes; this one is {self.kind}")
        queries = self._check_vectors(query_vectors, "query vectors")
        if not len(self):
            return SearchResult([[] for _ in queries], [[] for _ in queries], [[] for _ in queries])
        self._train_ivf()
        params = faiss.SearchParametersIVF(nprobe=nprobe) if nprobe is not None else None
        scores, positions = self._faiss.search(self._prepared(queries), min(k, len(self)), params=params)  # (Q, k')
        result = SearchResult([], [], [])
        for row_scores, row_positions in zip(scores, positions):
            keep = row_positions >= 0  # FAISS pads with -1 when it finds fewer
            result.positions.append([int(p) for p in row_positions[keep]])
            result.scores.append([float(s) for s in row_scores[keep]])
            result.ids.append([self._ids[p] for p in result.positions[-1]])
        return result

    def document(self, position: int) -> dict[str, Any]:
        """The document stored with vector ``position`` (``{"id", ...}``)."""
        if not 0 <= position < len(self):
            raise InputError(f"position {position} is not in this index of {len(self)} documents")
        self._documents.seek(self._offsets[position])
        return json.loads(self._documents.readline().decode("utf-8"))

    @property
    def ids(self) -> list[str]:
        """Document ids in vector order."""
        return list(self._ids)

    def vectors(self) -> np.ndarray:
        """``(N, dimension)`` float32: the vectors as searched (L2-normalised for a cosine index), in id order."""
        if not len(self):
            return np.zeros((0, self.dimension), np.float32)
        self._train_ivf()
        return self._faiss.reconstruct_n(0, len(self))

    # --- saving ----------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """What ``index.json`` records: kind, metric, dimension, count, settings (an IVF index: also the
        ``ivf_lists_used``, ``None`` until it is trained), FAISS version and model."""
        trained = {}
        if self.kind == "ivf":
            trained["ivf_lists_used"] = self._faiss.nlist if self._faiss is not None else None
        return {"format": FORMAT, "kind": self.kind, "metric": self.metric, "dimension": self.dimension,
                "count": len(self), **self.settings, **trained, "faiss_version": faiss.__version__,
                "model": self.model}

    def save(self, folder: str | os.PathLike) -> pathlib.Path:
        """Write the index to ``folder`` (created; an index saved there before is replaced whole, any other
        non-empty folder is refused). Written beside it first, then renamed into place."""
        folder = pathlib.Path(folder)
        if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not (folder / "index.json").is_file())):
            raise InputError(f"{folder}: exists and is not a vector index folder; choose a new folder")
        if self.kind == "ivf" and not len(self):
            raise InputError(f"{folder}: an ivf index learns its lists from its vectors; add some before saving")
        self._train_ivf()
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            faiss.write_index(self._faiss, str(staging / "index.faiss"))
            (staging / "ids.json").write_text(json.dumps(self._ids, ensure_ascii=False), encoding="utf-8")
            np.save(staging / "offsets.npy", np.asarray(self._offsets, dtype=np.int64))
            with open(staging / "documents.jsonl", "wb") as out:
                self._documents.seek(0)
                shutil.copyfileobj(self._documents, out)
            (staging / "index.json").write_text(json.dumps(self.describe(), indent=2), encoding="utf-8")
            old = None
            if folder.exists():
                old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
                os.rename(folder, old)
            os.rename(staging, folder)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "VectorIndex":
        """The index saved in ``folder`` (its documents are read from there when asked for)."""
        folder = pathlib.Path(folder)
        if not folder.is_dir():
            raise IndexNotFoundError(f"{folder}: no such index folder")
        missing = [name for name in FILES if not (folder / name).is_file()]
        if missing:
            raise IndexNotFoundError(f"{folder}: not a vector index (missing {', '.join(missing)}); "
                                     f"build one with `kbert index`")
        try:
            meta = json.loads((folder / "index.json").read_text(encoding="utf-8"))
            ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
            offsets = np.load(folder / "offsets.npy")
            native = faiss.read_index(str(folder / "index.faiss"))
        except (OSError, ValueError, RuntimeError) as err:
            raise IndexNotFoundError(f"{folder}: unreadable index files ({err})") from None
        if meta.get("format") != FORMAT:
            raise IndexNotFoundError(f"{folder}/index.json: format {meta.get('format')!r}, expected {FORMAT}")
        index = cls(int(meta["dimension"]), kind=meta["kind"], metric=meta["metric"], model=meta.get("model"),
                    **{k: meta[k] for k in SETTINGS if k in meta})  # indexes saved before IVF lack its keys
        if not (native.d == index.dimension and native.ntotal == len(ids) == len(offsets) == meta["count"]):
            raise IndexNotFoundError(f"{folder}: inconsistent files ({native.ntotal} vectors of dimension {native.d}, "
                                     f"{len(ids)} ids, {len(offsets)} documents, index.json says {meta['count']} "
                                     f"of dimension {meta['dimension']})")
        if index.kind == "hnsw":
            native.hnsw.efSearch = index.settings["ef_search"]
        elif index.kind == "ivf":
            native.nprobe = index.settings["nprobe"]
        index._documents.close()
        index._faiss, index._ids, index._offsets = native, list(ids), offsets.tolist()
        index._documents, index._spooled = open(folder / "documents.jsonl", "rb"), False
        return index

    def close(self) -> None:
        """Close the documents file (also done when the index is garbage-collected)."""
        self._documents.close()

    def __del__(self):
        documents = getattr(self, "_documents", None)
        if documents is not None:
            documents.close()


def check_positive(value, name: str) -> None:
    """Refuse anything but a positive int (``bool`` included) as ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{name} must be a positive int, got {value!r}")

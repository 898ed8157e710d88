"""TensorFlow Datasets as a training source: ``tfds:glue/sst2`` → :class:`RawExample` list.

Users name a dataset as ``tfds:NAME`` with an optional split in brackets, ``tfds:glue/sst2[validation]``
(any TFDS split expression works inside the brackets: ``tfds:imdb_reviews[train[:10%]]``,
``tfds:glue/rte[train+validation]``); without one the split is ``train``. A small registry
(:data:`DATASETS`) says which features hold the text, the optional second text and the label of
each supported dataset; the label names come from the builder's own ``ClassLabel`` so the trainer
keeps the dataset's label order (``glue/sst2`` → ``["negative", "positive"]``).

Unlabelled splits: GLUE's ``test`` splits (and ``imdb_reviews``' ``unsupervised`` split) store the
label ``-1`` (``-1.0`` for ``glue/stsb``); those examples get ``label=None``.

Nothing is downloaded unless asked: with ``download=False`` (the default) a dataset that is not
prepared under ``data_dir`` (TFDS's default: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``)
raises :class:`DataError` telling the user to run again with downloading enabled
(``kbert train ... --download``).

Example:
    >>> from kbert.data.tfds_sources import is_tfds_name, parse_tfds_name
    >>> is_tfds_name("tfds:glue/sst2"), is_tfds_name("train.csv")
    (True, False)
    >>> parse_tfds_name("tfds:glue/sst2[validation]")
    ('glue/sst2', 'validation')
    >>> parse_tfds_name("tfds:imdb_reviews")
    ('imdb_reviews', None)
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Literal

import numpy as np

from kbert.data.examples import RawExample, RawLabel
from kbert.errors import DataError

PREFIX = "tfds:"
DEFAULT_SPLIT = "train"
_BATCH = 512  # examples per tf.data batch while reading (reading one by one is ~50x slower)

LabelKind = Literal["class", "regression"]


@dataclasses.dataclass(frozen=True)
class TfdsFeatures:
    """Which TFDS features make up an example.

    ``label_kind`` ``None`` means: infer it from the feature (``ClassLabel``, integer or string →
    ``"class"``, float → ``"regression"``). ``unlabelled_value`` is the stored label that marks an
    unlabelled example (GLUE and IMDB use ``-1``); such examples get ``label=None``.
    """

    text: str
    text_pair: str | None = None
    label: str | None = "label"
    label_kind: LabelKind | None = None
    unlabelled_value: float | None = None


def _glue(text: str, text_pair: str | None = None, kind: LabelKind = "class") -> TfdsFeatures:
    return TfdsFeatures(text, text_pair, "label", kind, unlabelled_value=-1)


#: The datasets kbert reads without being told their feature names (``tfds:`` + key).
DATASETS: dict[str, TfdsFeatures] = {
    "glue/sst2": _glue("sentence"),
    "glue/stsb": _glue("sentence1", "sentence2", "regression"),
    "glue/rte": _glue("sentence1", "sentence2"),
    "imdb_reviews": TfdsFeatures("text", None, "label", "class", unlabelled_value=-1),
    # The rest of GLUE has the same layout (MNLI's evaluation splits are validation_matched /
    # validation_mismatched, its test splits test_matched / test_mismatched).
    "glue/cola": _glue("sentence"),
    "glue/mrpc": _glue("sentence1", "sentence2"),
    "glue/qqp": _glue("question1", "question2"),
    "glue/qnli": _glue("question", "sentence"),
    "glue/mnli": _glue("premise", "hypothesis"),
    "glue/wnli": _glue("sentence1", "sentence2"),
}

_NAME_RE = re.compile(r"^(?P<name>[^\[\]\s]+)(?:\[(?P<split>.*)\])?$")


def is_tfds_name(source: object) -> bool:
    """Whether ``source`` names a TFDS dataset (``"tfds:..."``) rather than a file."""
    return isinstance(source, str) and source.startswith(PREFIX)


def parse_tfds_name(source: str) -> tuple[str, str | None]:
    """``"tfds:glue/sst2[validation]"`` → ``("glue/sst2", "validation")``; no brackets → split ``None``.

    The split is everything between the first ``[`` and the last ``]``, so TFDS slicing works:
    ``"tfds:glue/sst2[train[:10%]]"`` → ``("glue/sst2", "train[:10%]")``.
    """
    if not is_tfds_name(source):
        raise DataError(f"{source!r} is not a TFDS dataset name (expected {PREFIX}NAME or {PREFIX}NAME[SPLIT])")
    body = source[len(PREFIX):].strip()
    bracket = body.find("[")
    if bracket >= 0:
        name, rest = body[:bracket].strip(), body[bracket:]
        if not rest.endswith("]") or len(rest) < 3:
            raise DataError(f"{source!r}: malformed split; write {PREFIX}NAME[SPLIT], e.g. {PREFIX}glue/sst2[validation]")
        split: str | None = rest[1:-1].strip()
    else:
        name, split = body, None
    if not name or _NAME_RE.match(name) is None or split == "":
        raise DataError(f"{source!r}: malformed TFDS name; write {PREFIX}NAME or {PREFIX}NAME[SPLIT], "
                        f"e.g. {PREFIX}glue/sst2[validation]")
    return name, split


def supported_names() -> list[str]:
    """The ``tfds:`` names kbert reads without explicit feature names."""
    return [PREFIX + name for name in DATASETS]


def read_tfds(
    name: str,
    split: str | None = None,
    *,
    data_dir: str | None = None,
    download: bool = False,
    limit: int | None = None,
    features: TfdsFeatures | None = None,
) -> tuple[list[RawExample], list[str] | None]:
    """Reads a TFDS dataset split into raw examples plus the dataset's label names.

    Args:
        name: ``"tfds:glue/sst2"``, optionally with the split: ``"tfds:glue/sst2[validation]"``.
        split: the split when ``name`` has none (default ``"train"``); giving a different one in
            both places is an error.
        data_dir: TFDS data folder; ``None`` means TFDS's default (``$TFDS_DATA_DIR`` or
            ``~/tensorflow_datasets``).
        download: download and prepare the dataset if it is not there yet. ``False`` (the default)
            never touches the network: a dataset that is not prepared raises :class:`DataError`.
        limit: read at most this many examples (the first ones of the split, in TFDS order).
        features: feature names for a dataset outside :data:`DATASETS` (overrides the registry).

    Returns:
        ``(examples, label_names)``. ``label_names`` is the ``ClassLabel``'s names in the dataset's
        order for classification (``None`` for regression, or for class labels that are not a
        ``ClassLabel``). Examples whose stored label is the unlabelled marker (``-1`` in GLUE test
        splits and IMDB's ``unsupervised`` split) have ``label=None``. Each example's ``where`` is
        ``"tfds:NAME[SPLIT]#I"`` with ``I`` the 0-based position in the split as read.

    Raises:
        DataError: unknown dataset (the message lists the supported names), malformed name,
            unknown split, dataset not prepared with ``download=False``, download failure, a
            feature missing from the dataset or text that is not UTF-8.
    """
    ds_name, name_split = parse_tfds_name(name)
    if name_split is not None and split is not None and name_split != split:
        raise DataError(f"{name!r}: split given twice ({name_split!r} in the name, {split!r} as argument)")
    split = name_split or split or DEFAULT_SPLIT
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise DataError(f"{name!r}: limit must be a non-negative integer, got {limit!r}")
    spec = features or DATASETS.get(ds_name)
    if spec is None:
        raise DataError(f"unknown TFDS dataset {PREFIX}{ds_name}; supported: {', '.join(supported_names())} "
                        "(other TFDS datasets need explicit feature names)")
    source = f"{PREFIX}{ds_name}[{split}]"

    tfds = _import_tfds()
    builder = _builder(tfds, ds_name, data_dir, source)
    feature_dict = builder.info.features
    for role, feature in (("text", spec.text), ("text_pair", spec.text_pair), ("label", spec.label)):
        if feature is not None and feature not in feature_dict:
            raise DataError(f"{source}: no feature {feature!r} for the {role} "
                            f"(the dataset has {', '.join(sorted(feature_dict.keys()))})")
    label_kind, label_names = _label_kind_and_names(tfds, spec, feature_dict, source)

    ds = prepared_split(builder, split, source, download=download, data_dir=data_dir)

    keep = [f for f in (spec.text, spec.text_pair, spec.label) if f is not None]
    ds = ds.map(lambda ex: {k: ex[k] for k in keep})
    if limit is not None:
        ds = ds.take(limit)
    examples: list[RawExample] = []
    for batch in tfds.as_numpy(ds.batch(_BATCH)):
        texts = batch[spec.text]
        pairs = batch[spec.text_pair] if spec.text_pair is not None else None
        labels = batch[spec.label] if spec.label is not None else None
        for j in range(len(texts)):
            where = f"{source}#{len(examples)}"
            examples.append(RawExample(
                text=_text(texts[j], where),
                text_pair=_text(pairs[j], where) if pairs is not None else None,
                label=_label(labels[j], label_kind, label_names, spec, where) if labels is not None else None,
                where=where,
            ))
    return examples, label_names


# --- helpers -------------------------------------------------------------------------------------
def _import_tfds():
    try:
        import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    except ImportError as err:  # pragma: no cover - it is an install requirement
        raise DataError(f"reading {PREFIX} datasets needs tensorflow-datasets: {err}") from err
    return tfds


def _builder(tfds, ds_name: str, data_dir: str | None, source: str):
    try:
        return tfds.builder(ds_name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as err:
        raise DataError(f"{source}: TFDS has no dataset {ds_name!r}; supported: {', '.join(supported_names())}") from err
    except (ValueError, KeyError) as err:  # e.g. an unknown config: glue/nope
        raise DataError(f"{source}: {err}") from err


def _label_kind_and_names(tfds, spec: TfdsFeatures, feature_dict, source: str):
    if spec.label is None:
        return None, None
    feature = feature_dict[spec.label]
    names = list(feature.names) if isinstance(feature, tfds.features.ClassLabel) else None
    dtype = np.dtype(getattr(feature, "np_dtype", None) or feature.dtype.as_numpy_dtype)
    kind = spec.label_kind or ("regression" if np.issubdtype(dtype, np.floating) else "class")
    if kind == "regression" and names is not None:
        raise DataError(f"{source}: label feature {spec.label!r} is a ClassLabel, not a regression target")
    if kind == "regression" and not np.issubdtype(dtype, np.number):
        raise DataError(f"{source}: label feature {spec.label!r} ({dtype}) is not numeric")
    return kind, names


def _download_and_prepare(builder, source: str) -> None:
    if builder.is_prepared():
        return
    try:
        builder.download_and_prepare()
    except ImportError as err:
        # tensorflow-datasets 4.9.x imports `importlib_resources` while preparing but only declares
        # it for Python < 3.9.
        raise DataError(f"{source}: preparing the dataset failed: {err} (pip install importlib_resources)") from err
    except Exception as err:  # network, disk, checksum... all surface as one DataError
        raise DataError(f"{source}: download / prepare into {builder.data_dir} failed: {err}") from err


def _split_names(split: str) -> list[str]:
    """``"train[:10%]+validation"`` → ``["train", "validation"]``."""
    return [p for p in re.findall(r"[A-Za-z_][\w.-]*", re.sub(r"\[[^\]]*\]", "", split))]


def prepared_split(builder, split: str, source: str, *, download: bool, data_dir: str | None):
    """``builder``'s ``split`` as a ``tf.data`` dataset; downloads only with ``download`` (else a prepared
    copy in ``data_dir`` / ``$TFDS_DATA_DIR`` is needed), every failure a :class:`DataError` naming ``source``."""
    if download:
        _download_and_prepare(builder, source)
    _check_split(builder, split, source)
    try:
        return builder.as_dataset(split=split, shuffle_files=False)
    except AssertionError as err:  # TFDS's way of saying "no prepared data in data_dir"
        raise DataError(
            f"{source}: dataset not prepared in {builder.data_dir}; run again with downloading enabled "
            f"(kbert train ... --download, or download=True)"
            + ("" if data_dir else " or point data_dir / $TFDS_DATA_DIR at a folder that has it")
        ) from err
    except (ValueError, KeyError) as err:
        raise DataError(f"{source}: {err}") from err


def _check_split(builder, split: str, source: str) -> None:
    known = list(builder.info.splits.keys())  # empty until the dataset is prepared (then TFDS checks)
    if not known:
        return
    unknown = [s for s in _split_names(split) if s not in known]
    if unknown:
        raise DataError(f"{source}: unknown split {unknown[0]!r}; the dataset has {', '.join(known)}")


def _text(value: Any, where: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{where}: text is not valid UTF-8 ({err})") from err
    return str(value)


def _label(value: Any, kind: str | None, names: list[str] | None, spec: TfdsFeatures, where: str) -> RawLabel:
    if isinstance(value, bytes):
        return _text(value, where)
    if spec.unlabelled_value is not None and value == spec.unlabelled_value:
        return None
    if kind == "regression":
        return float(value)
    if names is not None:
        index = int(value)
        if not 0 <= index < len(names):
            raise DataError(f"{where}: label {index} is outside the {len(names)} classes {names}")
        return names[index]
    return str(value.item() if isinstance(value, np.generic) else value)

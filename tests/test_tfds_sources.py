"""TFDS sources: ``tfds:glue/sst2[validation]`` → RawExamples + label names, never touching the network.

Most tests use ``tfds.testing.mock_data``: it builds each dataset's builder from TFDS's own code
(the feature spec, so the real ``ClassLabel`` names) and generates random examples from that spec,
with no data files and no download. One module fixture prepares a real (tiny) ``glue/sst2`` in a
temporary folder from local TSV files, so reading prepared TFRecords, split checks and GLUE's
unlabelled test split (label ``-1``) are exercised on TFDS's real read path too.
"""

from __future__ import annotations

import importlib
import importlib.resources
import socket
import sys
from unittest import mock

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")
tf = pytest.importorskip("tensorflow")

from kbert.data.examples import RawExample  # noqa: E402
from kbert.data.tfds_sources import DATASETS, is_tfds_name, parse_tfds_name, read_tfds  # noqa: E402
from kbert.errors import DataError  # noqa: E402

FOUR = {
    # name: (has text_pair, label names (None: regression))
    "glue/sst2": (False, ["negative", "positive"]),
    "glue/stsb": (True, None),
    "glue/rte": (True, ["entailment", "not_entailment"]),
    "imdb_reviews": (False, ["neg", "pos"]),
}


@pytest.fixture(scope="module", autouse=True)
def no_network():
    """Any socket connection or DNS look-up in this module is a test failure."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket.socket, "connect_ex", refuse)
        mp.setattr(socket, "getaddrinfo", refuse)
        # TFDS's GCS look-ups go through TF's C++ filesystem, not Python sockets: answer them here.
        mp.setattr("tensorflow_datasets.core.utils.gcs_utils.exists", lambda path: False)
        yield


# --- names ---------------------------------------------------------------------------------------
def test_is_tfds_name():
    assert is_tfds_name("tfds:glue/sst2") and is_tfds_name("tfds:imdb_reviews[test]")
    assert not is_tfds_name("train.csv") and not is_tfds_name(None) and not is_tfds_name("glue/sst2")


@pytest.mark.parametrize("source, expected", [
    ("tfds:glue/sst2", ("glue/sst2", None)),
    ("tfds:glue/sst2[validation]", ("glue/sst2", "validation")),
    ("tfds:imdb_reviews[train[:10%]]", ("imdb_reviews", "train[:10%]")),
    ("tfds:glue/rte[train+validation]", ("glue/rte", "train+validation")),
])
def test_parse_tfds_name(source, expected):
    assert parse_tfds_name(source) == expected


@pytest.mark.parametrize("source", ["tfds:", "tfds:glue/sst2[", "tfds:glue/sst2[]", "tfds:[train]",
                                    "tfds:glue/sst2]", "tfds:glue sst2", "glue/sst2"])
def test_malformed_names(source):
    with pytest.raises(DataError):
        parse_tfds_name(source)


def test_unknown_dataset_lists_supported_names():
    with pytest.raises(DataError) as err:
        read_tfds("tfds:mnist")
    message = str(err.value)
    assert "tfds:mnist" in message
    for name in FOUR:
        assert f"tfds:{name}" in message


def test_registry_matches_tfds_feature_specs(tmp_path):
    """Every registry entry names features the real builder has (no data needed, no download)."""
    for name, spec in DATASETS.items():
        features = tfds.builder(name, data_dir=str(tmp_path)).info.features
        for feature in (spec.text, spec.text_pair, spec.label):
            assert feature is None or feature in features, (name, feature)
        is_class = isinstance(features[spec.label], tfds.features.ClassLabel)
        assert is_class == (spec.label_kind == "class"), name
    assert list(tmp_path.iterdir()) == []  # building the builders wrote nothing


# --- mocked datasets -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(FOUR))
def test_each_dataset_yields_raw_examples(name):
    has_pair, names = FOUR[name]
    with tfds.testing.mock_data(num_examples=4):
        examples, label_names = read_tfds(f"tfds:{name}")
    assert label_names == names
    assert len(examples) == 4
    for i, ex in enumerate(examples):
        assert isinstance(ex, RawExample)
        assert isinstance(ex.text, str) and ex.text
        assert (isinstance(ex.text_pair, str) and ex.text_pair) if has_pair else ex.text_pair is None
        if names is None:
            assert type(ex.label) is float
        else:
            assert ex.label in names
        assert ex.where == f"tfds:{name}[train]#{i}"


def test_stsb_labels_are_regression_floats():
    with tfds.testing.mock_data(num_examples=5):
        examples, label_names = read_tfds("tfds:glue/stsb", "validation")
    assert label_names is None
    assert all(type(ex.label) is float and 0.0 <= ex.label <= 1.0 for ex in examples)  # mock: U[0, 1)
    assert examples[0].where == "tfds:glue/stsb[validation]#0"


def test_limit():
    with tfds.testing.mock_data(num_examples=7):
        assert len(read_tfds("tfds:glue/sst2", limit=3)[0]) == 3
        assert len(read_tfds("tfds:glue/sst2", limit=0)[0]) == 0
        assert len(read_tfds("tfds:glue/sst2", limit=100)[0]) == 7
        full = read_tfds("tfds:glue/sst2")[0]
        assert read_tfds("tfds:glue/sst2", limit=3)[0] == full[:3]  # the first ones, in order
        for bad in (-1, 1.5, True):
            with pytest.raises(DataError, match="limit"):
                read_tfds("tfds:glue/sst2", limit=bad)


def test_split_in_name_or_argument():
    with tfds.testing.mock_data(num_examples=2):
        by_name, _ = read_tfds("tfds:glue/rte[validation]")
        by_arg, _ = read_tfds("tfds:glue/rte", split="validation")
        same, _ = read_tfds("tfds:glue/rte[validation]", split="validation")
        with pytest.raises(DataError, match="split given twice"):
            read_tfds("tfds:glue/rte[validation]", split="train")
    assert [ex.where for ex in by_name] == [ex.where for ex in by_arg] == [ex.where for ex in same] \
        == ["tfds:glue/rte[validation]#0", "tfds:glue/rte[validation]#1"]


def _fixed_dataset(rows):
    """An ``as_dataset_fn`` for ``mock_data`` that yields ``rows`` (a dict of columns) for any split."""

    def as_dataset(self, split, decoders=None, read_config=None, **kwargs):
        return tf.data.Dataset.from_tensor_slices(rows)

    return as_dataset


def test_glue_test_split_label_minus_one_is_unlabelled():
    rows = {"sentence1": [b"a", b"b", b"c"], "sentence2": [b"x", b"y", b"z"],
            "label": np.array([-1, 0, 1], np.int64), "idx": np.arange(3, dtype=np.int32)}
    with tfds.testing.mock_data(as_dataset_fn=_fixed_dataset(rows)):
        examples, names = read_tfds("tfds:glue/rte[test]")
    assert names == ["entailment", "not_entailment"]
    assert [ex.label for ex in examples] == [None, "entailment", "not_entailment"]

    rows = {"sentence1": [b"a", b"b"], "sentence2": [b"x", b"y"],
            "label": np.array([-1.0, 3.2], np.float32), "idx": np.arange(2, dtype=np.int32)}
    with tfds.testing.mock_data(as_dataset_fn=_fixed_dataset(rows)):
        examples, _ = read_tfds("tfds:glue/stsb[test]")
    assert examples[0].label is None and examples[1].label == pytest.approx(3.2)


def test_text_is_decoded_as_utf8():
    rows = {"text": ["café ☕ naïve".encode(), b"plain"], "label": np.array([1, 0], np.int64)}
    with tfds.testing.mock_data(as_dataset_fn=_fixed_dataset(rows)):
        examples, _ = read_tfds("tfds:imdb_reviews[test]")
    assert [(ex.text, ex.label) for ex in examples] == [("café ☕ naïve", "pos"), ("plain", "neg")]

    rows = {"text": [b"ok", b"bad \xff byte"], "label": np.array([1, 0], np.int64)}
    with tfds.testing.mock_data(as_dataset_fn=_fixed_dataset(rows)):
        with pytest.raises(DataError, match=r"tfds:imdb_reviews\[test\]#1.*UTF-8"):
            read_tfds("tfds:imdb_reviews[test]")


# --- not prepared: never downloads implicitly ----------------------------------------------------
def test_not_prepared_without_download_raises(tmp_path, monkeypatch):
    def no_download(self, *args, **kwargs):
        raise AssertionError("download_and_prepare must not be called with download=False")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    with pytest.raises(DataError) as err:
        read_tfds("tfds:glue/sst2[validation]", data_dir=str(tmp_path))
    message = str(err.value)
    assert "tfds:glue/sst2[validation]" in message and "not prepared" in message and "--download" in message
    assert str(tmp_path) in message
    assert list(tmp_path.iterdir()) == []


# --- a real prepared dataset, built offline from local files -------------------------------------
SST2_FILES = {
    "train.tsv": "sentence\tlabel\nit 's a charming journey \t1\nflat , tedious ☹\t0\nwell made\t1\n",
    "dev.tsv": "sentence\tlabel\nsmart and alive\t1\ndull\t0\n",
    "test.tsv": "index\tsentence\n0\tno label here\n1\tnor here\n",
}


@pytest.fixture(scope="module")
def prepared_sst2(tmp_path_factory):
    """``glue/sst2`` prepared by TFDS itself through ``read_tfds(download=True)``, from local TSVs.

    Only the download step is replaced (``download_and_extract`` returns the local folder).
    tensorflow-datasets 4.9.10 imports ``importlib_resources`` while preparing but declares it only
    for Python < 3.9; where the package is missing the standard library's module stands in for it.
    """
    src = tmp_path_factory.mktemp("sst2_src")
    (src / "SST-2").mkdir()
    for filename, text in SST2_FILES.items():
        (src / "SST-2" / filename).write_text(text, encoding="utf-8")
    data_dir = tmp_path_factory.mktemp("tfds_data")
    with pytest.MonkeyPatch.context() as mp:
        try:
            importlib.import_module("importlib_resources")
        except ImportError:
            mp.setitem(sys.modules, "importlib_resources", importlib.resources)
        with mock.patch.object(tfds.download.DownloadManager, "download_and_extract", lambda self, url: str(src)):
            examples, names = read_tfds("tfds:glue/sst2", data_dir=str(data_dir), download=True)
    return data_dir, examples, names


def test_download_prepares_then_reads(prepared_sst2):
    data_dir, examples, names = prepared_sst2
    assert names == ["negative", "positive"]
    # TFDS shuffles examples while preparing, so compare as sets; the positions are TFDS's order.
    assert {(ex.text, ex.label) for ex in examples} == {
        ("it 's a charming journey ", "positive"), ("flat , tedious ☹", "negative"), ("well made", "positive")}
    assert [ex.where for ex in examples] == [f"tfds:glue/sst2[train]#{i}" for i in range(3)]
    assert (data_dir / "glue" / "sst2").is_dir()


def test_prepared_dataset_reads_without_download(prepared_sst2, monkeypatch):
    data_dir, train, _ = prepared_sst2
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                        lambda *a, **k: pytest.fail("download_and_prepare called"))
    assert read_tfds("tfds:glue/sst2", data_dir=str(data_dir))[0] == train
    validation, _ = read_tfds("tfds:glue/sst2[validation]", data_dir=str(data_dir))
    assert sorted(ex.label for ex in validation) == ["negative", "positive"]
    test, names = read_tfds("tfds:glue/sst2[test]", data_dir=str(data_dir))
    assert names == ["negative", "positive"]
    assert len(test) == 2 and all(ex.label is None for ex in test)
    assert len(read_tfds("tfds:glue/sst2[train[:2]]", data_dir=str(data_dir))[0]) == 2
    assert len(read_tfds("tfds:glue/sst2[train+validation]", data_dir=str(data_dir))[0]) == 5


def test_prepared_dataset_unknown_split(prepared_sst2):
    data_dir = str(prepared_sst2[0])
    with pytest.raises(DataError, match=r"unknown split 'dev'.*train, validation, test"):
        read_tfds("tfds:glue/sst2[dev]", data_dir=data_dir)
    with pytest.raises(DataError, match=r"tfds:glue/sst2\[train\[:x\]\]"):
        read_tfds("tfds:glue/sst2[train[:x]]", data_dir=data_dir)


def test_download_failure_is_a_data_error(tmp_path):
    def fail(self, url):
        raise OSError("connection refused")

    with mock.patch.object(tfds.download.DownloadManager, "download_and_extract", fail), \
            pytest.MonkeyPatch.context() as mp:
        try:
            importlib.import_module("importlib_resources")
        except ImportError:
            mp.setitem(sys.modules, "importlib_resources", importlib.resources)
        with pytest.raises(DataError, match=r"tfds:glue/rte\[train\].*failed.*connection refused"):
            read_tfds("tfds:glue/rte", data_dir=str(tmp_path), download=True)

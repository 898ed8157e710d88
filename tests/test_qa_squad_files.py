"""SQuAD readers: v1.1 / v2.0 JSON, JSON lines, tfds:squad (mocked, and prepared offline) → validated QAExamples."""

from __future__ import annotations

import importlib
import importlib.resources
import json
import socket
import sys
from unittest import mock

import pytest

from conftest import data_dir
from kbert.errors import DataError
from kbert.tasks.question_answering.examples import QAExample
from kbert.tasks.question_answering.squad_files import read_qa_examples, split_by_title

CONTEXT = "Sinan lives in California. Tom lives in Paris."


def squad(*qas, context=CONTEXT, title="Cities", version="1.1", **paragraph):
    return {"version": version, "data": [{"title": title, "paragraphs": [{"context": context, "qas": list(qas),
                                                                          **paragraph}]}]}


def qa(qid, question="Where does Sinan live?", answers=(("California", 15),), **extra):
    return {"id": qid, "question": question, "answers": [{"text": t, "answer_start": s} for t, s in answers], **extra}


def write(tmp_path, name, content) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return str(path)


def jsonl(*items) -> str:
    return "".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items)


def row(qid="r1", question="Where does Tom live?", texts=("Paris",), starts=(40,), **extra):
    return {"id": qid, "title": "Cities", "question": question, "context": CONTEXT,
            "answers": {"text": list(texts), "answer_start": list(starts)}, **extra}


# --- round trips ---------------------------------------------------------------------------------
def test_v1_json(tmp_path):
    tom = qa("q2", "Where does Tom live?", [("Paris", 40), ("Paris.", 40)])
    path = write(tmp_path, "dev.json", squad(qa("q1"), tom))
    assert read_qa_examples(path) == [
        QAExample("q1", "Where does Sinan live?", CONTEXT, ("California",), (15,), False, "Cities"),
        QAExample("q2", "Where does Tom live?", CONTEXT, ("Paris", "Paris."), (40, 40), False, "Cities")]


def test_v2_json_impossible_questions_keep_plausible_answers_out(tmp_path):
    impossible = qa("q2", "Where does Ann live?", [], is_impossible=True,
                    plausible_answers=[{"text": "Paris", "answer_start": 40}])
    path = write(tmp_path, "dev.json", squad(qa("q1", is_impossible=False), impossible, version="v2.0"))
    first, second = read_qa_examples(path)
    assert (first.answers, first.is_impossible) == (("California",), False)
    assert (second.answers, second.answer_starts, second.is_impossible) == ((), (), True)


def test_jsonl_in_the_datasets_layout(tmp_path):
    path = write(tmp_path, "train.jsonl", jsonl(
        row(), "", {"question": "Who lives in Paris?", "context": CONTEXT, "answers": {"text": [], "answer_start": []}},
        row("r3", texts=["Paris", "in Paris"], starts=[40, 37])))
    first, second, third = read_qa_examples(path)
    assert first == QAExample("r1", "Where does Tom live?", CONTEXT, ("Paris",), (40,), False, "Cities")
    assert (second.id, second.is_impossible, second.answers, second.title) == ("line-3", True, (), "")
    assert third.answers == ("Paris", "in Paris") and third.answer_starts == (40, 37)


def test_format_option_overrides_the_extension(tmp_path):
    as_txt = write(tmp_path, "dev.txt", squad(qa("q1")))
    assert [e.id for e in read_qa_examples(as_txt, format="squad")] == ["q1"]
    lines_in_json = write(tmp_path, "dev.json", jsonl(row()))
    assert [e.id for e in read_qa_examples(lines_in_json, format="jsonl")] == ["r1"]
    with pytest.raises(DataError, match="cannot tell the format"):
        read_qa_examples(write(tmp_path, "dev.csv", "x"))
    with pytest.raises(DataError, match="unknown question-answering data format 'csv'"):
        read_qa_examples(as_txt, format="csv")
    with pytest.raises(DataError, match=r"dev\.json: expected SQuAD JSON.*should end in \.jsonl"):
        read_qa_examples(write(tmp_path, "dev.json", json.dumps(row())))


def test_limit_and_row_range(tmp_path):
    path = write(tmp_path, "dev.json", squad(*[qa(f"q{i}") for i in range(5)]))
    assert [e.id for e in read_qa_examples(path, limit=2)] == ["q0", "q1"]
    assert read_qa_examples(path, limit=0) == []
    assert [e.id for e in read_qa_examples(path + "[3:]")] == ["q3", "q4"]
    assert [e.id for e in read_qa_examples(path + "[1:4]", limit=2)] == ["q1", "q2"]
    for bad in (-1, 1.5, True):
        with pytest.raises(DataError, match="limit must be a non-negative integer"):
            read_qa_examples(path, limit=bad)


def test_a_list_of_examples_is_checked_too():
    good = QAExample("q1", "Where?", CONTEXT, ("California",), (15,))
    assert read_qa_examples([good]) == [good]
    with pytest.raises(DataError, match=r"list\[1\]: question 'q2': answer 0 'Paris' is not at answer_start 3"):
        read_qa_examples([good, QAExample("q2", "Where?", CONTEXT, ("Paris",), (3,))])
    with pytest.raises(DataError, match="QAExample objects only"):
        read_qa_examples([{"id": "q1"}])


# --- errors: each names the file and the question --------------------------------------------------
JSON_ERRORS = {
    "answer_start off": (squad(qa("q7", answers=[("California", 14)])),
                         r"question 'q7': answer 0 'California' is not at answer_start 14 of the context "
                         r"\(the context has ' Californi' there\)"),
    "answer past the end": (squad(qa("q7", answers=[("Paris", 900)])), r"question 'q7': answer 0 'Paris' is not at"),
    "no context": ({"data": [{"title": "T", "paragraphs": [{"qas": [qa("q7")]}]}]}, r"question 'q7': no context"),
    "empty context": (squad(qa("q7"), context="  \n"), r"question 'q7': the context is empty"),
    "empty question": (squad(qa("q7", question=" \t ")), r"question 'q7': the question is empty"),
    "no question": (squad({"id": "q7", "answers": []}), r"question 'q7': no question"),
    "impossible with answers": (squad(qa("q7", is_impossible=True), version="v2.0"),
                                r"question 'q7': is_impossible is true but the question has 1 answers"),
    "is_impossible not bool": (squad(qa("q7", is_impossible="yes")), r"question 'q7': is_impossible must be"),
    "answer without start": (squad({"id": "q7", "question": "?", "answers": [{"text": "Paris"}]}),
                             r"question 'q7': answer 0 must be an object with \"text\" and \"answer_start\""),
    "negative start": (squad(qa("q7", answers=[("Paris", -1)])), r"question 'q7': answer 0 answer_start must be"),
    "empty answer text": (squad(qa("q7", answers=[("", 3)])), r"question 'q7': answer 0 text must be a non-empty"),
    "duplicate id": (squad(qa("q7"), qa("q7")), r"question 'q7' appears twice"),
    "no answers field": (squad({"id": "q7", "question": "?"}), r"question 'q7': no 'answers' field"),
    "no id": (squad({"question": "?", "answers": []}), r"article 0 paragraph 0 question 0: no 'id' field"),
    "no paragraphs": ({"data": [{"title": "T"}]}, r"article 0: no 'paragraphs' field"),
    "no data": ({"version": "1.1"}, r"expected SQuAD JSON, an object with a \"data\" list"),
}


@pytest.mark.parametrize("case", JSON_ERRORS)
def test_squad_json_errors(tmp_path, case):
    content, message = JSON_ERRORS[case]
    path = write(tmp_path, "bad-dev.json", content)
    with pytest.raises(DataError, match=message) as err:
        read_qa_examples(path)
    assert str(err.value).startswith(path)


def test_malformed_json_names_line_and_column(tmp_path):
    path = write(tmp_path, "dev.json", '{"data": [\n  {"title": "T",\n   "paragraphs": [}\n]}')
    with pytest.raises(DataError, match=r"dev\.json:3:19: not valid JSON \(Expecting value\)"):
        read_qa_examples(path)
    with pytest.raises(DataError, match=r"empty\.json:1:1: not valid JSON"):
        read_qa_examples(write(tmp_path, "empty.json", ""))
    with pytest.raises(DataError, match=r"bom\.json: no questions"):
        read_qa_examples(write(tmp_path, "bom.json", "\ufeff" + json.dumps({"data": []})))
    with pytest.raises(DataError, match=r"nowhere\.json: no such file"):
        read_qa_examples(str(tmp_path / "nowhere.json"))


JSONL_ERRORS = {
    "lengths differ": (row("r9", texts=["Paris", "Tom"], starts=[40]),
                       r":2: question 'r9': 2 answer texts but 1 answer starts"),
    "answer_start off": (row("r9", starts=[41]), r":2: question 'r9': answer 0 'Paris' is not at answer_start 41"),
    "empty question": (row("r9", question=""), r":2: question 'r9': the question is empty"),
    "empty context": ({**row("r9"), "context": ""}, r":2: question 'r9': the context is empty"),
    "no context": ({k: v for k, v in row("r9").items() if k != "context"}, r":2: question 'r9': no 'context' field"),
    "no answers": ({k: v for k, v in row("r9").items() if k != "answers"}, r":2: question 'r9': no 'answers' field"),
    "answers as a list": ({**row("r9"), "answers": [{"text": "Paris", "answer_start": 40}]},
                          r":2: question 'r9': answers must be \{\"text\": \[...\], \"answer_start\": \[...\]\}"),
    "impossible with answers": (row("r9", is_impossible=True), r":2: question 'r9': is_impossible is true"),
    "not json": ('{"id": "r9", "question": ', r":2: not valid JSON \(Expecting value at column 26\)"),
    "not an object": ("[1, 2]", r":2: expected a JSON object"),
    "duplicate id": (row("r1"), r"question 'r1' appears twice"),
}


@pytest.mark.parametrize("case", JSONL_ERRORS)
def test_jsonl_errors_name_file_line_and_id(tmp_path, case):
    bad, message = JSONL_ERRORS[case]
    path = write(tmp_path, "train.jsonl", jsonl(row("r1"), bad))
    with pytest.raises(DataError, match=message) as err:
        read_qa_examples(path)
    assert str(err.value).startswith(path)


# --- split by article --------------------------------------------------------------------------------
def test_split_by_title_holds_out_whole_articles():
    qs = [QAExample(f"q{i}", "?", "c", ("c",), (0,), title=t) for i, t in enumerate("AAABBCCCCD")]
    train, held = split_by_title(qs, 0.2)
    assert [e.title for e in held] == ["C"] * 4 + ["D"] and {e.title for e in train} == {"A", "B"}
    assert split_by_title(qs, 0.05)[1] == qs[-1:]
    assert split_by_title(qs, 0.99)[0] == qs[:3]  # the first article always stays for training
    train, held = split_by_title(qs, titles=["B", "D"])
    assert [e.id for e in held] == ["q3", "q4", "q9"] and len(train) == 7
    assert split_by_title(qs, titles="A")[1] == qs[:3]
    with pytest.raises(DataError, match="no article titled 'Z'"):
        split_by_title(qs, titles=["Z"])
    with pytest.raises(DataError, match="leaves nothing to train on"):
        split_by_title(qs, titles=list("ABCD"))
    with pytest.raises(DataError, match="either eval_fraction or titles"):
        split_by_title(qs, 0.5, titles=["A"])
    for bad in (0, 1, 1.5, True, "0.1"):
        with pytest.raises(DataError, match="eval_fraction must be"):
            split_by_title(qs, bad)
    with pytest.raises(DataError, match="needs at least 2"):
        split_by_title([QAExample("q", "?", "c", ("c",), (0,))], 0.5)


# --- the shared dev files ----------------------------------------------------------------------------
def test_real_squad_files():
    v1_path, v2_path = (data_dir() / "squad_v1.1" / "dev-v1.1-articles-00-37.json",
                        data_dir() / "squad_v2.0" / "dev-v2.0-part-shared.json")
    if not (v1_path.is_file() and v2_path.is_file()):
        pytest.skip(f"{v1_path.parent.parent} lacks the SQuAD dev files (set KBERT_DATA)")
    v1, v2 = read_qa_examples(v1_path), read_qa_examples(v2_path)
    assert len(v1) == 8582 and not any(e.is_impossible for e in v1)
    assert len({e.title for e in v1}) == 38 and v1[0].title == "Super_Bowl_50"
    assert sum(len(e.answers) for e in v1) == 27471  # dev has up to 3+ annotators per question
    assert len(v2) == 4194 and sum(e.is_impossible for e in v2) == 2231
    assert all(not e.answers for e in v2 if e.is_impossible) and all(e.answers for e in v2 if not e.is_impossible)
    train, held = split_by_title(v1, 0.1)
    assert {e.title for e in train}.isdisjoint({e.title for e in held}) and len(train) + len(held) == 8582
    assert 0.1 * 8582 <= len(held) < 0.1 * 8582 + 400 and held == v1[-len(held):]
    assert [e.id for e in read_qa_examples(v2_path, limit=3)] == [e.id for e in v2[:3]]


# --- tfds:squad ---------------------------------------------------------------------------------------
tfds = pytest.importorskip("tensorflow_datasets")
tf = pytest.importorskip("tensorflow")


@pytest.fixture(autouse=True)
def no_network(request, monkeypatch):
    """Any socket connection or DNS look-up is a test failure (TFDS's GCS checks are answered "no")."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr("tensorflow_datasets.core.utils.gcs_utils.exists", lambda path: False)


def tfds_rows(rows, version_2=False):
    """An ``as_dataset_fn`` for ``mock_data`` yielding these rows (TFDS's squad features, as bytes)."""
    answers = {"text": tf.TensorSpec((None,), tf.string), "answer_start": tf.TensorSpec((None,), tf.int32)}
    signature = {k: tf.TensorSpec((), tf.string) for k in ("id", "title", "context", "question")}
    signature["answers"] = answers
    if version_2:
        signature.update(is_impossible=tf.TensorSpec((), tf.bool), plausible_answers=answers)

    def encoded():
        for r in rows:
            out = {k: r[k].encode() for k in ("id", "title", "context", "question")}
            out["answers"] = {"text": [t.encode() for t in r["answers"]["text"]],
                              "answer_start": list(r["answers"]["answer_start"])}
            if version_2:
                out["is_impossible"] = r.get("is_impossible", False)
                out["plausible_answers"] = {"text": [], "answer_start": []}
            yield out

    def as_dataset(self, split, decoders=None, read_config=None, **kwargs):
        return tf.data.Dataset.from_generator(encoded, output_signature=signature)

    return as_dataset


def test_tfds_squad_v1_and_v2_mocked():
    rows = [row("t1"), row("t2", texts=["Paris", "Paris."], starts=[40, 40])]
    with tfds.testing.mock_data(as_dataset_fn=tfds_rows(rows)):
        examples = read_qa_examples("tfds:squad/v1.1[validation]")
        assert [e.id for e in read_qa_examples("tfds:squad/v1.1", limit=1)] == ["t1"]
    assert examples == [QAExample("t1", "Where does Tom live?", CONTEXT, ("Paris",), (40,), False, "Cities"),
                        QAExample("t2", "Where does Tom live?", CONTEXT, ("Paris", "Paris."), (40, 40), False,
                                  "Cities")]
    rows = [row("t1"), row("t2", texts=[], starts=[], is_impossible=True)]
    with tfds.testing.mock_data(as_dataset_fn=tfds_rows(rows, version_2=True)):
        first, second = read_qa_examples("tfds:squad/v2.0[train]")
    assert (first.is_impossible, second.is_impossible, second.answers) == (False, True, ())


def test_tfds_errors_name_the_row_and_id():
    with tfds.testing.mock_data(as_dataset_fn=tfds_rows([row("t1"), row("t2", starts=[39])])):
        with pytest.raises(DataError, match=r"tfds:squad/v1\.1\[validation\]#1: question 't2': answer 0 'Paris' is "
                                            r"not at answer_start 39"):
            read_qa_examples("tfds:squad/v1.1[validation]")
    with pytest.raises(DataError, match="question answering reads tfds:squad/v1.1, tfds:squad/v2.0"):
        read_qa_examples("tfds:glue/sst2")
    with pytest.raises(DataError, match="malformed"):
        read_qa_examples("tfds:squad/v1.1[")


def test_tfds_not_prepared_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                        lambda *a, **k: pytest.fail("download_and_prepare called with download=False"))
    with pytest.raises(DataError) as err:
        read_qa_examples("tfds:squad/v2.0[validation]", data_dir=str(tmp_path))
    message = str(err.value)
    assert "tfds:squad/v2.0[validation]" in message and "not prepared" in message and "--download" in message
    assert list(tmp_path.iterdir()) == []


def test_tfds_squad_prepared_offline_from_local_files(tmp_path):
    """TFDS's own squad/v1.1 builder prepares local files (only the download is replaced), then kbert reads them."""
    train = squad(qa("a1"), qa("a2", "Where does Tom live?", [("Paris", 40)]))
    dev = squad(qa("d1", "Where does Tom live?", [("Paris", 40), ("in Paris", 37)]), title="Dev")
    files = {"train": write(tmp_path, "train-v1.1.json", train), "dev": write(tmp_path, "dev-v1.1.json", dev)}
    with pytest.MonkeyPatch.context() as mp:
        try:
            importlib.import_module("importlib_resources")
        except ImportError:  # tensorflow-datasets 4.9 imports it while preparing (see test_tfds_sources.py)
            mp.setitem(sys.modules, "importlib_resources", importlib.resources)
        with mock.patch.object(tfds.download.DownloadManager, "download_and_extract", lambda self, urls: files):
            dev_examples = read_qa_examples("tfds:squad/v1.1[validation]", data_dir=str(tmp_path / "tfds"),
                                            download=True)
    assert dev_examples == [QAExample("d1", "Where does Tom live?", CONTEXT, ("Paris", "in Paris"), (40, 37),
                                      False, "Dev")]
    train_examples = read_qa_examples("tfds:squad/v1.1", data_dir=str(tmp_path / "tfds"))  # prepared: no download
    assert sorted(e.id for e in train_examples) == ["a1", "a2"]  # TFDS shuffles while preparing
    with pytest.raises(DataError, match="unknown split 'test'"):
        read_qa_examples("tfds:squad/v1.1[test]", data_dir=str(tmp_path / "tfds"))

"""Errors that point at things that exist: a hint names a --flag under the CLI and a keyword in Python; every
command reads FILE[start:stop] and --encoding; usage errors answer before TensorFlow loads; hf:// fails at once
offline."""

import json
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import CHECKPOINTS
from kbert.cli import main
from kbert.data.readers import read_examples
from kbert.errors import CheckpointNotFoundError, DataError
from kbert.hints import command_line_flags, hint, option, parameter

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = str(CHECKPOINTS / "tiny-uncased-cls")
TRAINED = str(CHECKPOINTS / "kbert-trained-tiny")  # text classification: negative / positive


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def latin1_reviews(tmp_path) -> pathlib.Path:
    path = tmp_path / "reviews.tsv"
    rows = ["text\tlabel", "un café terrible\tnegative", "très bon séjour\tpositive", "a lovely stay\tpositive"]
    path.write_bytes("\n".join(rows).encode("latin-1") + b"\n")
    return path


# --- hints: a keyword in Python, a flag under the command line ---------------------------------------------------
def test_hints_name_keywords_in_python_and_flags_under_a_command():
    assert option("label_column") == "label_column=" and option("label_type", "none") == "label_type='none'"
    assert parameter("tag_column") == "tag_column"
    with command_line_flags({"label_column": "--label-column", "tag_column": "--tag-column"}):
        assert option("label_column") == "--label-column" and parameter("tag_column") == "--tag-column"
        assert option("label_type", "none") is None and hint("; pass {}", "label_type", "none") == ""
        with command_line_flags(None):  # a recipe: the Python keywords
            assert option("label_type", "none") == "label_type='none'"
    assert option("label_column") == "label_column="


def test_not_utf8_hint_in_python_names_the_encoding_keyword(tmp_path):
    path = latin1_reviews(tmp_path)
    with pytest.raises(DataError, match=r"reviews.tsv:2: not UTF-8 \(byte 6 of the line\); if the file has another "
                                        r"encoding, give it with encoding=$"):
        read_examples(path)
    assert read_examples(path, encoding="latin-1")[0].text == "un café terrible"


def test_not_utf8_hint_under_the_cli_names_encoding_and_the_flag_works(tmp_path, capsys):
    path = latin1_reviews(tmp_path)
    code, out, err = run(capsys, "evaluate", "--model", TRAINED, "--data", path)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.rstrip().endswith("reviews.tsv:2: not UTF-8 (byte 6 of the line); if the file has another encoding, "
                                 "give it with --encoding")
    code, out, _ = run(capsys, "evaluate", "--model", TRAINED, "--data", f"{path}[1:]", "--encoding", "latin-1")
    assert code == 0 and json.loads(out)["examples"] == 2


def test_cli_hints_omit_python_only_keywords(tmp_path, capsys):
    data = tmp_path / "texts.jsonl"
    data.write_text('{"text": "no label here"}\n')
    code, _, err = run(capsys, "train", "--model", TINY, "--train", data, "--output", tmp_path / "run")
    assert code == 2 and "texts.jsonl:1: no 'label' field (fields: text)" in err and "label_type" not in err
    data = tmp_path / "d.csv"
    data.write_text("x,y\n")
    code, _, err = run(capsys, "evaluate", "--model", TRAINED, "--data", data, "--text-column", "0")
    assert code == 2 and err.strip().endswith("d.csv:1: the file has no header; give --label-column too "
                                              "(a 0-based index)")


def test_squad_format_is_accepted_for_a_file_without_a_json_name(tmp_path, capsys):
    qas = [{"id": f"q{i}", "question": "Where does Sinan live?", "answers": [{"text": "California",
                                                                            "answer_start": 15}]} for i in range(3)]
    path = tmp_path / "questions.txt"
    path.write_text(json.dumps({"data": [{"title": "Sinan", "paragraphs": [
        {"context": "Sinan lives in California.", "qas": qas}]}]}))
    model = CHECKPOINTS / "kbert-trained-tiny-qa"
    code, _, err = run(capsys, "evaluate", "--model", model, "--data", path)
    assert code == 2 and err.strip().endswith("questions.txt: a .txt file could hold any format; give it with "
                                              "--format (one of squad, jsonl)")
    code, out, err = run(capsys, "evaluate", "--model", model, "--data", f"{path}[:2]", "--format", "squad")
    assert code == 0, err
    assert json.loads(out)["examples"] == 2


# --- row ranges in every command that reads a data file ----------------------------------------------------------
@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "news.csv"
    path.write_text("title,description\n"
                    "Oil prices climb,Crude oil rose 2% on supply fears.\n"
                    "Final won late,The team won the final with a late goal.\n"
                    "OPEC cuts output,OPEC agreed to cut crude oil output.\n"
                    "Phone launch,The company unveiled its new smartphone.\n")
    return path


def test_index_takes_a_row_range_and_keeps_file_row_ids(tmp_path, capsys, corpus):
    code, out, err = run(capsys, "index", "--model", TINY, "--corpus", f"{corpus}[1:3]", "--text-column", "title",
                         "--output", tmp_path / "idx")
    assert code == 0, err
    assert json.loads(out)["documents"] == 2
    code, out, _ = run(capsys, "search", "--index", tmp_path / "idx", "-k", "5", "oil")
    assert code == 0 and sorted(h["id"] for h in json.loads(out)["results"]) == ["1", "2"]
    code, _, err = run(capsys, "index", "--model", TINY, "--corpus", f"{corpus}[9:]", "--text-column", "title",
                       "--output", tmp_path / "idx2")
    assert code == 2 and "news.csv: no documents (none in rows 9:)" in err


def test_embed_and_predict_take_a_row_range(tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("one\n\ntwo\nthree\nfour\n")
    code, out, err = run(capsys, "embed", "--model", TINY, "--input", f"{texts}[1:3]", "--output", tmp_path / "v.npy")
    assert code == 0, err
    assert json.loads(out)["count"] == 2 and np.load(tmp_path / "v.npy").shape[0] == 2
    code, out, _ = run(capsys, "predict", "--model", TINY, "--input", f"{texts}[2:]")
    assert code == 0 and [json.loads(line)["text"] for line in out.splitlines()] == ["three", "four"]


def test_mine_negatives_takes_row_ranges_and_an_encoding(tmp_path, capsys, corpus):
    extra = tmp_path / "extra.csv"
    extra.write_bytes("text\nCafé prices rise.\nA storm hit the coast.\nNew phones sell well.\n".encode("latin-1"))
    code, out, err = run(capsys, "mine-negatives", "--model", TINY, "--data", f"{corpus}[:3]", "--query-column",
                         "title", "--positive-column", "description", "--corpus", f"{extra}[1:]", "--encoding",
                         "latin-1", "--output", tmp_path / "mined.jsonl", "--num-negatives", "1")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["rows"] + summary["left_out"] == 3 and summary["documents"] == 3 + 2


# --- usage errors answer before TensorFlow loads -----------------------------------------------------------------
USAGE_ERRORS = [
    (["train", "--train", "{tmp}/t.csv", "--output", "{tmp}/o", "--tag-column", "1"],
     "--tag-column is an option of token-classification, not of text-classification"),
    (["train", "--train", "{tmp}/nowhere.csv[:10]", "--output", "{tmp}/o"], "--train {tmp}/nowhere.csv: no such file"),
    (["train", "--train", "{tmp}/t.csv", "--output", "{tmp}/o", "--label-names", "0:neg"],
     "--label-names takes 'value=name,value=name', got '0:neg'"),
    (["evaluate", "--model", "{tmp}/no-model", "--data", "{tmp}/t.csv"], "{tmp}/no-model: no such checkpoint folder"),
    (["evaluate", "--model", TRAINED, "--data", "{tmp}"], "--data {tmp}: is a folder, not a file"),
    (["search", "--index", "{tmp}", "-k", "0", "oil"], "-k must be a positive integer, got 0"),
    (["search", "--index", "{tmp}/no-index", "oil"], "--index {tmp}/no-index: no such index folder"),
    (["index", "--corpus", "{tmp}/t.csv", "--output", "{tmp}/i", "--text-column", "a,,b"],
     "--text-column takes comma-separated column names, got 'a,,b'"),
    (["predict", "--model", TINY], "give texts as arguments or --input FILE (exactly one of them)"),
    (["embed", "--input", "{tmp}/none.txt", "--output", "{tmp}/v.npy"], "--input {tmp}/none.txt: no such file"),
    (["run", "{tmp}/none.toml"], "{tmp}/none.toml: no such file"),
]
USAGE_SCRIPT = """
import contextlib, io, json, sys
import kbert.cli
answers = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        answers.append([kbert.cli.main(argv), err.getvalue()])
print(json.dumps({"answers": answers, "tensorflow": "tensorflow" in sys.modules}))
"""


def test_usage_errors_need_no_tensorflow(tmp_path):
    (tmp_path / "t.csv").write_text("text,label\na,x\n")
    cases = [[a.replace("{tmp}", str(tmp_path)) for a in argv] for argv, _ in USAGE_ERRORS]
    done = subprocess.run([sys.executable, "-c", USAGE_SCRIPT, json.dumps(cases)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    for (code, err), (_, message) in zip(result["answers"], USAGE_ERRORS):
        assert code == 2 and err == f"kbert: error: {message.replace('{tmp}', str(tmp_path))}\n"
    assert result["tensorflow"] is False


# --- hf:// without a network: at once, one line ------------------------------------------------------------------
@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    return constants


def test_hf_model_with_hf_hub_offline_fails_at_once(empty_hub_cache, monkeypatch, capsys):
    from kbert.checkpoint.resolve import resolve_model

    monkeypatch.setattr(empty_hub_cache, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointNotFoundError, match=r"^hf://org/name: not in the local Hugging Face cache, and it "
                                                      r"cannot be downloaded: HF_HUB_OFFLINE is set$"):
        resolve_model("hf://org/name")
    code, out, err = run(capsys, "info", "--model", "hf://org/name")
    assert code == 2 and out == "" and err.count("\n") == 1 and "HF_HUB_OFFLINE is set" in err


def test_hf_model_with_a_refused_connection_fails_at_once(empty_hub_cache, monkeypatch):
    from kbert.checkpoint.resolve import resolve_model

    with socket.socket() as probe:  # a port nothing listens on once the socket is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(empty_hub_cache, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(empty_hub_cache, "ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(CheckpointNotFoundError, match=rf"^hf://org/name: not in the local Hugging Face cache, and it "
                                                      rf"cannot be downloaded: http://127.0.0.1:{port} is "
                                                      rf"unreachable \(Connection refused\)$"):
        resolve_model("hf://org/name")

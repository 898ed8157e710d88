"""The kbert command line: JSON out, one-line errors with exit code 2, no tracebacks."""

import json
import subprocess
import sys

import pytest

from conftest import CHECKPOINTS
from kbert.cli import main

TINY = str(CHECKPOINTS / "tiny-uncased-cls")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_predict_texts_prints_json_lines(capsys):
    code, out, _ = run(capsys, "predict", "--model", TINY, "I love Paris", "what a boring day")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [l["text"] for l in lines] == ["I love Paris", "what a boring day"]
    assert lines[0]["result"] == {"label": "neutral", "score": pytest.approx(0.91672, abs=1e-4)}


def test_predict_jsonl_pairs_and_top_k(tmp_path, capsys):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a man plays", "text_pair": "someone plays"}\n\n{"text": "it rains"}\n')
    code, out, _ = run(capsys, "predict", "--model", str(CHECKPOINTS / "tiny-relu-pair"), "--input", str(path),
                       "--top-k", "all")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(lines) == 2 and lines[0]["text_pair"] == "someone plays"
    assert {d["label"] for d in lines[0]["result"]} == {"entailment", "not_entailment"}


def test_predict_embeddings_default_model(capsys):
    code, out, _ = run(capsys, "predict", "--normalize", "I love Paris")
    vector = json.loads(out)["result"]
    assert code == 0 and len(vector) == 384 and sum(v * v for v in vector) == pytest.approx(1.0, abs=1e-5)


def test_info_describes_the_checkpoint(capsys):
    code, out, _ = run(capsys, "info", "--model", str(CHECKPOINTS / "tiny-cased-token-cls"))
    info = json.loads(out)
    assert code == 0 and info["has_pooler"] is False and info["lowercase"] is False
    assert info["hidden_act"] == "gelu_new" and info["heads_present"] == ["classifier"]


@pytest.mark.parametrize("argv, message", [
    (["predict", "--model", "/nowhere/model", "hi"], "/nowhere/model: no such checkpoint folder"),
    (["predict", "--model", TINY], "give texts as arguments or --input FILE"),
    (["predict", "--model", TINY, "--top-k", "zero", "hi"], "--top-k must be a positive integer or 'all'"),
    (["predict", "--model", TINY, "--task", "translation", "hi"], "unknown task 'translation'"),
    (["info", "--model", str(CHECKPOINTS / "minilm-sentiment-head")], "no weights file found; looked for model.safetensors"),
])
def test_errors_are_one_line_and_exit_2(argv, message, capsys):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.startswith("kbert: error: ") and message in err
    assert "Traceback" not in err


def test_bad_input_file_names_file_and_line(tmp_path, capsys):
    path = tmp_path / "in.txt"
    path.write_bytes(b"fine\n\xff\xfe broken\n")
    code, _, err = run(capsys, "predict", "--model", TINY, "--input", str(path))
    assert code == 2 and f"{path}:2: not UTF-8" in err


def test_console_script_has_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "kbert", "info", "--model", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "no config.json" in result.stderr and "Traceback" not in result.stderr

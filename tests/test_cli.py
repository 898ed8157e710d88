"""The kbert command line: JSON out (and nothing else on stdout), one-line errors with exit code 2, no tracebacks,
no TensorFlow start-up noise, readable --help."""

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys

import pytest

from conftest import CHECKPOINTS, ROOT
from kbert.cli import _build_parser, main
from kbert.quiet_tensorflow import is_startup_noise, severity
from kbert.tasks.registry import specs

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


# --- stdout holds only the JSON; stderr no TensorFlow start-up noise -------------------------------------
DEMO = ROOT / "kbert" / "data" / "demo"
JSON_COMMANDS = ["train", "evaluate", "run", "info", "export", "serving-config", "predict", "embed", "index", "search",
                 "mine-negatives", "shard"]  # and tune: tests/test_tuning.py
ONEDNN_INT64 = "import tensorflow as tf; tf.config.list_logical_devices(); tf.transpose(tf.zeros((1, 1), tf.int64))"


def quiet_env(**extra):
    """The environment of a user who set no TF_CPP_MIN_LOG_LEVEL (make test sets one), with oneDNN on, so its
    once-per-process int64 line is printed here too (it is on by default on some CPUs)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return {**env, "TF_ENABLE_ONEDNN_OPTS": "1", **extra}


def python(*args, env=None):
    done = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env=env or quiet_env())
    assert done.returncode == 0, f"{args[:3]}: {done.stderr[-3000:]}"
    return done


def absl_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if severity(line) is not None or is_startup_noise(line)]


def test_every_json_command_prints_only_json_on_stdout(tmp_path):
    """Without --quiet: Keras's progress bars, Keras Tuner's banners (tests/test_tuning.py) and kbert's summary
    line go to stderr; every stdout line (the whole stdout for info and run) is JSON; no absl lines on stderr."""
    (tmp_path / "texts.txt").write_text("I love Paris\nwhat a boring day\n")
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in
                                                   enumerate(["oil prices rose", "the team won", "paris in spring"])))
    (tmp_path / "pairs.csv").write_text("query,positive\noil,oil prices rose\nfootball,the team won\n")
    train, test = f"{DEMO / 'sentiment_train.tsv'}[:16]", f"{DEMO / 'sentiment_test.tsv'}[:8]"
    (tmp_path / "recipe.toml").write_text(
        f'[train]\nmodel = "{TINY}"\ntrain = "{train}"\noutput = "{tmp_path / "recipe-run"}"\nepochs = 1\n'
        f'batch_size = 8\nmax_length = 16\n[export]\noutput = "{tmp_path / "recipe-export"}"\n'
        f'[predict]\ntexts = ["good"]\n')
    chains = [  # each chain in order; two chains at a time (the CPU's two cores)
        [["train", "--model", TINY, "--train", train, "--eval", test, "--epochs", "2", "--batch-size", "8",
          "--max-length", "16", "--output", tmp_path / "run"],
         ["evaluate", "--model", tmp_path / "run", "--data", test, "--max-length", "16"]],
        [["run", tmp_path / "recipe.toml"]],
        [["export", "--model", TINY, "--output", tmp_path / "export"],
         ["serving-config", tmp_path / "export", "--output", tmp_path / "models.config"]],
        [["index", "--model", TINY, "--corpus", tmp_path / "corpus.jsonl", "--output", tmp_path / "index"],
         ["search", "--index", tmp_path / "index", "-k", "2", "paris", "oil"]],
        [["info", "--model", TINY],
         ["shard", "--input", DEMO / "sentiment_test.tsv", "--output", tmp_path / "shards", "--num-shards", "2"]],
        [["predict", "--model", TINY, "I love Paris", "what a boring day"]],
        [["embed", "--model", TINY, "--input", tmp_path / "texts.txt", "--output", tmp_path / "vectors.npy"]],
        [["mine-negatives", "--model", TINY, "--data", tmp_path / "pairs.csv", "--output", tmp_path / "mined.jsonl",
          "--num-negatives", "1"]],
    ]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        runs = pool.map(lambda chain: [(argv, python("-m", "kbert", *argv)) for argv in chain], chains)
        runs = [run for chain in runs for run in chain]
    for argv, done in runs:
        whole = argv[0] in ("info", "run")  # json.dumps(..., indent=2)
        try:
            results = [json.loads(done.stdout)] if whole else [json.loads(line) for line in done.stdout.splitlines()]
        except json.JSONDecodeError as err:
            raise AssertionError(f"kbert {argv[0]}: stdout is not only JSON ({err}):\n{done.stdout[:1000]}") from None
        assert results and all(isinstance(r, dict) for r in results), argv[0]
        assert not absl_lines(done.stderr), f"kbert {argv[0]}: {absl_lines(done.stderr)}"
        if argv[0] in ("train", "run"):
            assert "kbert: 16 training examples" in done.stderr and "1/2" in done.stderr  # summary, progress bar
        if argv[0] == "train":
            assert "Epoch 2/2" in done.stderr
        if argv[0] == "run":  # what a rerun does
            assert f"exports {tmp_path / 'recipe-export' / '1'}; running it again trains again and exports version 2" \
                in done.stderr
    assert sorted(argv[0] for argv, _ in runs) == sorted(JSON_COMMANDS)
    commands = next(a for a in _build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert sorted(commands) == sorted(JSON_COMMANDS + ["tune"])  # a new command joins this test


def test_tensorflow_noise_is_hidden_unless_the_user_sets_a_level(tmp_path):
    """What TensorFlow prints by itself here (import, devices, oneDNN's int64 line) is gone from ``import kbert``
    + a pipeline call; with TF_CPP_MIN_LOG_LEVEL=0 the command line shows all of it."""
    own = {line.split("]", 1)[-1] for line in absl_lines(python("-c", ONEDNN_INT64).stderr)}
    # oneDNN's int64 line comes at a library user's first int64 op, after kbert's import: not caught there
    library = python("-c", "import kbert, kbert.pipelines\n"
                           f"print(kbert.pipeline('text-classification', model={TINY!r})('I love Paris'))",
                     env=quiet_env(TF_ENABLE_ONEDNN_OPTS="0"))
    assert "'label'" in library.stdout and not absl_lines(library.stderr), absl_lines(library.stderr)
    spoken = python("-m", "kbert", "predict", "--model", TINY, "hi", env=quiet_env(TF_CPP_MIN_LOG_LEVEL="0")).stderr
    assert own <= {line.split("]", 1)[-1] for line in absl_lines(spoken)}


def help_of(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


@pytest.mark.parametrize("command", ["predict", "info", "export", "evaluate", "train"])
def test_help_explains_model_and_names_each_task_once(command, capsys):
    text = help_of(capsys, command)
    model = text.rsplit("--model MODEL ", 1)[1]  # the option list, after the usage line
    assert not model.startswith("--") and model.split()[0] in ("checkpoint", "the", "starting")
    for spec in specs():
        assert f"{spec.name}: {spec.name}:" not in text
    if command == "train":
        assert "--scale TASK_SCALE retrieval: similarity scale" in text

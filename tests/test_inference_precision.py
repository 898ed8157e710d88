"""bfloat16 inference (``precision="bfloat16"``): refused without native bfloat16, close to float32 where run
(here emulated through KBERT_ALLOW_EMULATED_BFLOAT16=1), float32 outputs in pipelines, the CLI and exports."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import kbert
from conftest import CHECKPOINTS, ROOT
from kbert import precision
from kbert.errors import InputError, UnsupportedPrecisionError
from kbert.export import export_saved_model
from kbert.modeling.mixed_precision import Float32Softmax
from test_export import serve

MODEL = CHECKPOINTS / "tiny-uncased-cls"
TEXTS = ["I love Paris", "this film was terrible, a waste of two hours", "The quick brown fox jumps over the lazy dog",
         "ok", "Sinan lives in Paris and works in Berlin on Mondays"]


@pytest.fixture
def emulated(monkeypatch):
    monkeypatch.setenv(precision.ALLOW_EMULATED_ENV, "1")


@pytest.fixture
def cpuinfo(tmp_path, monkeypatch):
    """Write a /proc/cpuinfo with the given flags and make TensorFlow see no GPU."""
    def write(flags: str):
        path = tmp_path / "cpuinfo"
        path.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2 {flags}\n\n")
        monkeypatch.setattr(precision, "CPUINFO", path)
        monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    monkeypatch.delenv(precision.ALLOW_EMULATED_ENV, raising=False)
    return write


@pytest.fixture(scope="module")
def pipes():
    os.environ[precision.ALLOW_EMULATED_ENV] = "1"
    try:
        return {p: kbert.pipeline("text-classification", model=MODEL, precision=p, top_k=None)
                for p in precision.PRECISIONS}
    finally:
        del os.environ[precision.ALLOW_EMULATED_ENV]


@pytest.mark.parametrize("flag", ["avx512_bf16", "amx_bf16"])
def test_a_bfloat16_cpu_flag_counts_as_native(cpuinfo, flag):
    cpuinfo(f"avx512f {flag}")
    assert precision.native_bfloat16() == f"CPU flag {flag}"
    assert precision.check_precision("bfloat16") == "bfloat16"


def test_bfloat16_is_refused_without_the_flags_naming_them_and_the_way_out(cpuinfo):
    cpuinfo("avx512f avx512_vnni")
    assert precision.native_bfloat16() is None
    with pytest.raises(UnsupportedPrecisionError, match=r"precision='bfloat16' needs native bfloat16.*avx512_bf16 / "
                                                        r"amx_bf16 are not in .*cpuinfo.*no GPU.*'float32'.*"
                                                        r"KBERT_ALLOW_EMULATED_BFLOAT16=1"):
        kbert.pipeline("text-classification", model=MODEL, precision="bfloat16")


def test_a_gpu_counts_as_native_and_the_override_allows_emulation(cpuinfo, monkeypatch):
    cpuinfo("")
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    assert precision.native_bfloat16() == "GPU"
    cpuinfo("")
    monkeypatch.setenv(precision.ALLOW_EMULATED_ENV, "1")
    assert precision.check_precision("bfloat16") == "bfloat16"


def test_an_unknown_precision_is_an_input_error():
    with pytest.raises(InputError, match=r"precision must be one of \['float32', 'bfloat16'\], got 'float16'"):
        kbert.pipeline("text-classification", model=MODEL, precision="float16")


def test_bfloat16_model_computes_softmax_in_float32_and_returns_float32(pipes):
    model = pipes["bfloat16"].model
    attention = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.MultiHeadAttention)]
    assert len(attention) == 2 and all(type(layer._softmax) is Float32Softmax for layer in attention)
    assert attention[0].compute_dtype == "bfloat16"
    assert all(tensor.dtype == "float32" for tensor in model.output.values())
    assert all(type(layer._softmax) is keras.layers.Softmax for layer in pipes["float32"].model._flatten_layers()
               if isinstance(layer, keras.layers.MultiHeadAttention))


def test_bfloat16_pipeline_is_close_to_float32_with_the_same_labels(pipes):
    want, got = pipes["float32"](TEXTS), pipes["bfloat16"](TEXTS)
    assert [r[0]["label"] for r in got] == [r[0]["label"] for r in want]
    for ours, theirs in zip(got, want):
        scores = {d["label"]: d["score"] for d in theirs}
        np.testing.assert_allclose([d["score"] for d in ours], [scores[d["label"]] for d in ours], atol=0.03)
    assert {type(d["score"]) for r in got for d in r} == {float}


def test_cli_predict_precision_flag(pipes):
    argv = [sys.executable, "-m", "kbert", "predict", "--model", str(MODEL), *TEXTS[:2], "--precision", "bfloat16"]
    env = dict({k: v for k, v in os.environ.items() if k != precision.ALLOW_EMULATED_ENV}, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=dict(env, **{precision.ALLOW_EMULATED_ENV: "1"}))
    assert done.returncode == 0, done.stderr[-2000:]
    got, want = [json.loads(line)["result"] for line in done.stdout.splitlines()], pipes["float32"](TEXTS[:2])
    assert [r["label"] for r in got] == [r[0]["label"] for r in want]
    assert [r["score"] for r in got] == pytest.approx([r[0]["score"] for r in want], abs=0.03)
    if precision.native_bfloat16() is None:  # this machine would run it natively otherwise
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
        assert done.returncode != 0 and not done.stdout
        assert "--precision='bfloat16' needs native bfloat16" in done.stderr and "Traceback" not in done.stderr


def test_bfloat16_export_keeps_float32_outputs_and_serves_in_bare_tensorflow(tmp_path, pipes, emulated):
    version = export_saved_model(MODEL, tmp_path / "bf16", precision="bfloat16")
    outputs = tf.saved_model.load(str(version)).signatures["serving_default"].structured_outputs
    assert {name: spec.dtype for name, spec in outputs.items() if spec.dtype.is_floating} == {
        "score": tf.float32, "scores": tf.float32, "logits": tf.float32}
    got = serve(version, {"text": TEXTS})
    want = pipes["bfloat16"](TEXTS)
    assert got["label"] == [r[0]["label"] for r in want]
    np.testing.assert_allclose(got["score"], [r[0]["score"] for r in want], atol=1e-3)
    metadata = json.loads((version / "assets.extra" / "kbert.json").read_text())
    assert metadata["precision"] == "bfloat16"


# index: as embed (one line of cli.py); evaluate refuses before it reads its data
@pytest.mark.skipif(precision.native_bfloat16() is not None, reason="this machine runs bfloat16 natively")
@pytest.mark.parametrize("command", [["embed", "--input", "texts.txt", "--output", "v.npy"],
                                     ["export", "--output", "saved"], ["evaluate", "--data", "texts.txt"]])
def test_embed_export_and_evaluate_take_the_precision_flag(tmp_path, command):
    (tmp_path / "texts.txt").write_text("I love Paris\n")
    argv = [sys.executable, "-m", "kbert", *command, "--model", str(MODEL), "--precision", "bfloat16"]
    env = dict({k: v for k, v in os.environ.items() if k != precision.ALLOW_EMULATED_ENV}, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=str(ROOT))
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert done.returncode == 2 and "--precision='bfloat16' needs native bfloat16" in done.stderr, done.stderr[-2000:]


def test_cli_evaluate_precision_flag_scores_the_bfloat16_model():
    """``kbert evaluate --precision bfloat16``: the quality cost of bfloat16 on the user's own labelled data."""
    from kbert.training.evaluation import evaluate

    trained, data = CHECKPOINTS / "kbert-trained-tiny", ROOT / "kbert" / "data" / "demo" / "sentiment_test.tsv"
    argv = [sys.executable, "-m", "kbert", "evaluate", "--model", str(trained), "--data", str(data),
            "--precision", "bfloat16"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **{precision.ALLOW_EMULATED_ENV: "1"})
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    got, want = json.loads(done.stdout), evaluate(trained, data)
    assert got["examples"] == want["examples"]
    assert got["accuracy"] == pytest.approx(want["accuracy"], abs=1.5 / want["examples"])
    assert got["loss"] == pytest.approx(want["loss"], rel=0.02)
    assert got["loss"] != want["loss"]  # the bfloat16 model was scored, not the float32 one

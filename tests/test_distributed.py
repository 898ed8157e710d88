"""Scale-out: MultiWorkerMirroredStrategy over two worker processes on localhost (same weights as one process with
the same global batch; a killed worker resumes), TF_CONFIG checks, the TPU path up to the hardware, and mixed
precision."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from safetensors.numpy import load_file

import kbert
from conftest import CHECKPOINTS, ROOT
from kbert.errors import TrainingError
from kbert.modeling.mixed_precision import Float32Softmax
from kbert.training.strategy import make_strategy, read_tf_config

DEMO = ROOT / "kbert" / "data" / "demo"
RUN = dict(train=str(DEMO / "sentiment_train.tsv") + "[:160]", eval=str(DEMO / "sentiment_test.tsv") + "[:40]",
           batch_size=16, max_length=32, verbose=0, bucket_by_length=False)

WORKER = """
import json, os, sys
import keras
import kbert

class DieInSecondEpoch(keras.callbacks.Callback):  # a worker killed mid-epoch (after epoch 1's backup)
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 3:
            os._exit(17)

kill = os.environ.get("KBERT_TEST_DIE") == "1"
if os.environ.get("KBERT_TEST_KERAS_ALONE") == "1":  # without kbert.training.multiworker_fit: Keras's own fit
    import kbert.training.trainer
    kbert.training.trainer.prepare_fit = lambda model, dataset: None
result = kbert.train(output=sys.argv[1], model=sys.argv[2], epochs=int(sys.argv[3]), strategy="multiworker",
                     callbacks=[DieInSecondEpoch()] if kill else [], **json.loads(sys.argv[4]))
print(json.dumps({"metrics": result.metrics, "history": result.history}))
"""


def without_dropout(checkpoint, folder):
    """A copy of ``checkpoint`` with dropout off: replicas and a single process then take the same steps."""
    shutil.copytree(checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def no_dropout(tmp_path_factory):
    return without_dropout(CHECKPOINTS / "tiny-uncased-cls", tmp_path_factory.mktemp("ckpt") / "tiny")


def assert_same_updates(start, one, two, tolerance=0.02):
    """The weights ``one`` (one process) and ``two`` (two workers) moved from ``start`` by the same update, up to
    float noise: the relative norm of the difference of the updates (measured 0.1-0.6 %). Element-wise maxima are
    no test here: AdamW turns noise in a near-zero gradient into a full +-lr step of that element."""
    assert sorted(one) == sorted(two)
    names = [k for k in start if k in one]
    first = np.concatenate([(one[k] - start[k]).ravel() for k in names])
    second = np.concatenate([(two[k] - start[k]).ravel() for k in names])
    assert np.linalg.norm(second - first) / np.linalg.norm(first) < tolerance


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_cluster(command, env=lambda index: {}):
    """``command`` run as two workers on localhost, each with its own ``TF_CONFIG`` (and ``env(index)``)."""
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    return [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=dict(
        os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
        TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}), **env(index)))
        for index in range(2)]


def start_workers(output, model, epochs, *, die=None, keras_alone=False, run=RUN):
    return start_cluster([sys.executable, "-c", WORKER, str(output), str(model), str(epochs), json.dumps(run)],
                         lambda index: {"KBERT_TEST_DIE": "1" if die == index else "0",
                                        "KBERT_TEST_KERAS_ALONE": "1" if keras_alone else "0"})


def last_line(out):
    return json.loads(out.strip().splitlines()[-1])


def finish(processes, timeout=420, parse=last_line):
    outputs = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=timeout)
            assert process.returncode == 0, err[-3000:]
            outputs.append(parse(out))
    finally:
        for process in processes:
            process.kill()
    return outputs


def test_two_workers_reach_the_weights_of_one_process_with_the_same_global_batch(tmp_path, no_dropout):
    single = kbert.train(output=str(tmp_path / "single"), model=str(no_dropout), epochs=1, **RUN)
    chief, worker = finish(start_workers(tmp_path / "multi", no_dropout, 1))
    ours, theirs = load_file(tmp_path / "single" / "model.safetensors"), load_file(tmp_path / "multi" / "model.safetensors")
    # 10 steps of AdamW, each global batch of 16 split 8 + 8 over the two workers
    assert_same_updates(load_file(no_dropout / "model.safetensors"), ours, theirs)
    assert max(float(np.abs(ours[k] - theirs[k]).max()) for k in ours) < 1e-4
    assert chief["metrics"]["loss"] == pytest.approx(single.metrics["loss"], abs=1e-4)
    assert worker == {"metrics": {}, "history": []}  # only the chief writes the run folder and reports
    assert sorted(p.name for p in (tmp_path / "multi").iterdir() if p.name.startswith(".")) == []


# --- the command line: kbert train / run / tune make their strategy before TensorFlow starts its devices -------
KBERT = [sys.executable, "-m", "kbert"]


def write_recipe(path, train, extra=""):
    """A recipe whose [train] table is ``train`` (TOML strings, numbers and booleans are written as in JSON)."""
    path.write_text("[train]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in train.items()) + extra)
    return path


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, no_dropout):
    """The weights of one process trained as the command-line runs below are (batches bucketed by length)."""
    output = tmp_path_factory.mktemp("one") / "run"
    kbert.train(output=str(output), model=str(no_dropout), epochs=1, **{**RUN, "bucket_by_length": True})
    return load_file(output / "model.safetensors")


def test_kbert_train_on_two_workers_reaches_the_weights_of_one_process(tmp_path, no_dropout, one_process):
    chief, worker = finish(start_cluster(KBERT + [
        "train", "--strategy", "multiworker", "--model", str(no_dropout), "--train", RUN["train"], "--eval",
        RUN["eval"], "--output", str(tmp_path / "multi"), "--epochs", "1", "--batch-size", "16", "--max-length", "32",
        "--quiet"]))
    assert_same_updates(load_file(no_dropout / "model.safetensors"), one_process,
                        load_file(tmp_path / "multi" / "model.safetensors"))
    assert chief["checkpoint"] == str(tmp_path / "multi") and 0 <= chief["metrics"]["accuracy"] <= 1
    assert worker["metrics"] == {}  # only the chief evaluates and writes


def test_kbert_run_of_a_multiworker_recipe_trains_on_two_workers_and_the_chief_exports(tmp_path, no_dropout,
                                                                                       one_process):
    recipe = write_recipe(tmp_path / "multi.toml", {
        "model": str(no_dropout), "train": RUN["train"], "eval": RUN["eval"], "output": str(tmp_path / "multi"),
        "epochs": 1, "batch_size": 16, "max_length": 32, "verbose": 0, "strategy": "multiworker"},
        f'[export]\noutput = "{tmp_path / "export"}"\n[predict]\ntexts = ["I love Paris"]\n')
    chief, worker = finish(start_cluster(KBERT + ["run", str(recipe)]), parse=json.loads)
    assert_same_updates(load_file(no_dropout / "model.safetensors"), one_process,
                        load_file(tmp_path / "multi" / "model.safetensors"))
    assert chief["saved_model"] == str(tmp_path / "export" / "1")
    assert [p["text"] for p in chief["predictions"]] == ["I love Paris"]
    assert worker == {"checkpoint": str(tmp_path / "multi"), "metrics": {}}  # nothing exported twice


TUNE_RUN = dict(model=str(CHECKPOINTS / "tiny-uncased-qa"), train=str(DEMO / "sentiment_train.tsv") + "[:32]",
                eval=str(DEMO / "sentiment_test.tsv") + "[:16]", epochs=1, batch_size=16, max_length=32, verbose=0)
TUNE = '[tune]\ntuner = "grid"\nmax_trials = 1\n[tune.space]\nlearning_rate = [1e-3]\n'


def test_kbert_tune_searches_under_the_mirrored_strategy(tmp_path):
    recipe = write_recipe(tmp_path / "tune.toml", {**TUNE_RUN, "output": str(tmp_path / "search"),
                                                   "strategy": "mirrored"}, TUNE)
    done = subprocess.run(KBERT + ["tune", str(recipe)], capture_output=True, text=True, timeout=420, cwd=ROOT,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KBERT_CPU_DEVICES="2"))
    assert done.returncode == 0, done.stderr[-3000:]
    summary = last_line(done.stdout)
    assert summary["trials"] == 1 and summary["best_hyperparameters"] == {"learning_rate": 1e-3}
    assert (tmp_path / "search" / "best" / "model.safetensors").is_file()


def test_kbert_tune_refuses_multiworker_before_joining_a_cluster(tmp_path):
    """No strategy is made for a search it would refuse: the cluster below has no other worker to wait for."""
    recipe = write_recipe(tmp_path / "tune.toml", {**TUNE_RUN, "output": str(tmp_path / "search"),
                                                   "strategy": "multiworker"}, TUNE)
    config = {"cluster": {"worker": [f"localhost:{p}" for p in _free_ports(2)]}, "task": {"type": "worker", "index": 0}}
    done = subprocess.run(KBERT + ["tune", str(recipe)], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_CONFIG=json.dumps(config)))
    assert done.returncode == 2
    assert (f"kbert: error: {recipe}: a search runs its trials under strategy 'default', 'mirrored' or 'tpu'"
            in done.stderr)


def _task_data(task, folder):
    """Small training files of the other task families (the classification data above is the shipped demo)."""
    if task == "token-classification":
        path = folder / "tags.conll"
        path.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in zip(
            ["Sinan", "lives", "in", "Paris", "and", "Matt", "in", f"Boston{i}"],
            ["B-PER", "O", "O", "B-LOC", "O", "B-PER", "O", "B-LOC"])) for i in range(48)) + "\n")
        return path, {}
    path = folder / "squad.jsonl"
    rows = []
    for i in range(48):
        context = f"Sinan lives in California but Matt lives in Boston. Item {i} costs {i} dollars."
        rows.append({"id": str(i), "question": "Where does Matt live?", "context": context,
                     "answers": {"text": ["Boston"], "answer_start": [context.index("Boston")]}})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, {"doc_stride": 16}


@pytest.mark.parametrize("task, checkpoint", [("token-classification", "tiny-cased-token-cls"),
                                              ("question-answering", "tiny-uncased-qa")])
def test_every_task_family_trains_on_two_workers_as_on_one_process(tmp_path, task, checkpoint):
    model = without_dropout(CHECKPOINTS / checkpoint, tmp_path / "ckpt")
    data, options = _task_data(task, tmp_path)
    run = {**RUN, "task": task, "train": str(data), "eval": str(data), "learning_rate": 1e-3, **options}
    single = kbert.train(output=str(tmp_path / "single"), model=str(model), epochs=1, **run)
    chief, _ = finish(start_workers(tmp_path / "multi", model, 1, run=run))
    ours, theirs = load_file(tmp_path / "single" / "model.safetensors"), load_file(tmp_path / "multi" / "model.safetensors")
    assert_same_updates(load_file(model / "model.safetensors"), ours, theirs)
    assert chief["metrics"]["loss"] == pytest.approx(single.metrics["loss"], abs=1e-3)


def test_keras_fit_alone_fails_under_multiworker_the_reason_for_multiworker_fit(tmp_path, no_dropout):
    processes = start_workers(tmp_path / "run", no_dropout, 1, keras_alone=True)
    try:
        errors = [p.communicate(timeout=420)[1] for p in processes]
    finally:
        for process in processes:
            process.kill()
    assert all(p.returncode != 0 for p in processes)
    assert "ValueError: Attempt to convert a value ({'token_ids': PerReplica" in errors[0], errors[0][-2000:]


def test_a_killed_worker_resumes_from_the_last_epoch_backup(tmp_path, no_dropout):
    output = tmp_path / "run"
    processes = start_workers(output, no_dropout, 3, die=1)
    try:
        assert processes[1].wait(timeout=420) == 17  # worker 1 died in the middle of the second epoch
        before = json.loads((output / "history.json").read_text())
        assert [e["epoch"] for e in before] == [0]  # the chief got through epoch 0 only
        processes[0].kill()  # the job is restarted as a whole, as a cluster manager does
        processes[0].wait(timeout=60)
    finally:
        for process in processes:
            process.kill()
    assert (output / ".kbert-state" / "backup").is_dir() and (output / ".kbert-state-worker-1").is_dir()
    chief, _ = finish(start_workers(output, no_dropout, 3))
    assert [e["epoch"] for e in chief["history"]] == [0, 1, 2]
    assert chief["history"][0] == before[0]  # epoch 0 was not trained again: the run went on from its backup
    assert (output / "model.safetensors").is_file()
    assert not (output / ".kbert-state").exists() and not (output / ".kbert-state-worker-1").exists()


# --- TF_CONFIG ---------------------------------------------------------------------------------------------
CLUSTER = {"worker": ["localhost:1111", "localhost:2222"]}


@pytest.mark.parametrize("config, message", [
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('["a"]', "TF_CONFIG must be a JSON object"),
    (json.dumps({"task": {"type": "worker", "index": 0}}), "TF_CONFIG: 'cluster' must map roles to address lists"),
    (json.dumps({"cluster": {"ps": ["h:1"], **CLUSTER}, "task": {"type": "worker", "index": 0}}),
     "TF_CONFIG: cluster.ps: parameter servers are not supported"),
    (json.dumps({"cluster": {"workers": ["h:1"]}, "task": {"type": "workers", "index": 0}}),
     r"TF_CONFIG: cluster.workers: unknown role; roles are \['chief', 'worker', 'evaluator'\]"),
    (json.dumps({"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}),
     r"TF_CONFIG: cluster.worker\[0\] must be 'host:port', got 'localhost'"),
    (json.dumps({"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}),
     "TF_CONFIG: cluster.worker must be a non-empty list"),
    (json.dumps({"cluster": {"chief": ["a:1", "b:2"], **CLUSTER}, "task": {"type": "chief", "index": 0}}),
     "TF_CONFIG: cluster.chief must have exactly one address"),
    (json.dumps({"cluster": CLUSTER}), "TF_CONFIG: 'task' must be"),
    (json.dumps({"cluster": CLUSTER, "task": {"type": "chief", "index": 0}}),
     r"TF_CONFIG: task.type 'chief' is not a role of the cluster \['worker'\]"),
    (json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": 2}}),
     "TF_CONFIG: task.index 2 is out of range: cluster.worker has 2 address"),
    (json.dumps({"cluster": {**CLUSTER, "evaluator": ["e:3"]}, "task": {"type": "evaluator", "index": 0}}),
     "TF_CONFIG: task.type 'evaluator'"),
])
def test_bad_tf_config_names_the_field(config, message):
    with pytest.raises(TrainingError, match=message):
        read_tf_config(config)


def test_tf_config_roles():
    worker0 = read_tf_config(json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": 0}}))
    assert worker0.is_chief and worker0.num_workers == 2 and worker0.name == "worker-0"
    with_chief = {"chief": ["c:1"], **CLUSTER}
    assert not read_tf_config(json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}})).is_chief
    assert read_tf_config(json.dumps({"cluster": with_chief, "task": {"type": "chief", "index": 0}})).num_workers == 3


def test_multiworker_without_tf_config_fails_before_reading_data(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(TrainingError, match="strategy 'multiworker' needs TF_CONFIG"):
        kbert.train(output=str(tmp_path / "o"), model=str(CHECKPOINTS / "tiny-uncased-cls"), epochs=1,
                    strategy="multiworker", **RUN)
    assert not (tmp_path / "o").exists()


# --- TPU: everything up to the hardware ----------------------------------------------------------------------
def test_tpu_strategy_without_a_tpu_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(TrainingError, match=r"strategy 'tpu': (no TPU found from the environment|cannot initialise)"):
        make_strategy("tpu")


def test_tpu_options_are_checked():
    with pytest.raises(TrainingError, match="tpu='my-tpu' goes with strategy 'tpu', not 'default'"):
        kbert.TrainConfig(train="t.tsv", output="o", tpu="my-tpu")
    with pytest.raises(TrainingError, match=r"strategy must be one of \['default', 'mirrored', 'multiworker', "
                                            r"'tpu'\], got 'horovod'"):
        kbert.TrainConfig(train="t.tsv", output="o", strategy="horovod")


def test_the_training_graph_has_static_shapes_for_xla_when_padded_to_max_length(tmp_path):
    """TPUs compile one XLA program per shape: bucket_by_length=False pads every batch to max_length, so one
    shape; the jit-compiled training step then traces once (what a TPU run needs)."""
    from kbert.training.config import TrainConfig
    from kbert.training.strategy import make_strategy as strategy_named
    from kbert.training.trainer import TrainingRun

    config = TrainConfig(output=str(tmp_path), model=str(CHECKPOINTS / "tiny-uncased-cls"), epochs=1,
                         jit_compile=True, **RUN)
    run = TrainingRun(config)
    run.build(strategy_named("default"))
    shapes = {tuple(x["token_ids"].shape) for x, _ in run.plan.train.dataset}
    assert shapes == {(16, 32)}
    traces = []
    train_step = run.trainable.train_step
    run.trainable.train_step = lambda data: traces.append(1) or train_step(data)  # Python runs only when tracing
    run.trainable.fit(run.plan.train.dataset, epochs=1, verbose=0)
    assert len(traces) == 1


# --- mixed precision ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_with_float32_variables_and_outputs(tmp_path, precision):
    from kbert.training.config import TrainConfig
    from kbert.training.trainer import TrainingRun

    config = TrainConfig(output=str(tmp_path), model=str(CHECKPOINTS / "tiny-uncased-cls"), epochs=1,
                         precision=precision, **RUN)
    run = TrainingRun(config)
    run.build(make_strategy("default"))
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored after building
    dense = run.model.get_layer("classifier")
    assert dense.compute_dtype == precision.split("_")[1] and dense.variable_dtype == "float32"
    assert run.model.output["logits"].dtype == "float32"
    attention = [layer for layer in run.model._flatten_layers() if isinstance(layer, keras.layers.MultiHeadAttention)]
    assert attention and all(isinstance(a._softmax, Float32Softmax) for a in attention)  # not 16-bit under dropout
    scaled = isinstance(run.trainable.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (precision == "mixed_float16")  # dynamic loss scaling for float16 only
    history = run.trainable.fit(run.plan.train.dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    result = kbert.train(output=str(tmp_path / "run"), model=str(CHECKPOINTS / "tiny-uncased-cls"), epochs=1,
                         precision=precision, **RUN)
    saved = load_file(tmp_path / "run" / "model.safetensors")
    assert all(v.dtype == np.float32 for v in saved.values())  # a float32 HF checkpoint, as transformers writes
    assert 0 <= result.metrics["accuracy"] <= 1
    answer = kbert.pipeline("text-classification", model=str(tmp_path / "run"))("I love Paris")
    assert [set(a) for a in answer] == [{"label", "score"}]

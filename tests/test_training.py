"""Fine-tuning end to end on tiny checkpoints: outputs, HF layout, tasks, resume, strategy, bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import kbert
from conftest import CHECKPOINTS, ROOT
from kbert.checkpoint.safetensors_io import read_safetensors
from kbert.errors import DataError, TrainingError
from kbert.training import callbacks as training_callbacks
from kbert.training.evaluation import evaluate

TINY = str(CHECKPOINTS / "tiny-uncased-qa")  # a BERT without classifier head or pooler: heads start fresh
DEMO_TEST = str(ROOT / "kbert" / "data" / "demo" / "sentiment_test.tsv")
FAST = dict(model=TINY, batch_size=16, max_length=32, verbose=0, learning_rate=1e-3)


POSITIVE, NEGATIVE = ["good", "great", "best", "amazing", "happy", "love"], ["bad", "boring", "worst", "terrible", "sad"]


def write_sentiment(path, count, seed):
    """Sentences in the tiny vocabulary (the demo set would be mostly [UNK] to it)."""
    rng = np.random.default_rng(seed)
    lines = ["text\tlabel"]
    for i in range(count):
        label = "positive" if i % 2 else "negative"
        words = rng.choice(POSITIVE if i % 2 else NEGATIVE, size=2)
        lines.append(f"the {rng.choice(['movie', 'film', 'story'])} was {words[0]} and {words[1]}\t{label}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def sentiment_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    return write_sentiment(folder / "train.tsv", 160, 0), write_sentiment(folder / "test.tsv", 60, 1)


@pytest.fixture(scope="module")
def sentiment_run(tmp_path_factory, sentiment_files):
    output = tmp_path_factory.mktemp("run") / "sentiment"
    return kbert.train(train=sentiment_files[0], eval=sentiment_files[1], output=str(output), epochs=3, **FAST)


def test_run_folder_is_a_hugging_face_checkpoint_with_reports(sentiment_run):
    out = sentiment_run.output
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "metrics.json",
            "training_config.json", "history.json", "training_curves.png", "confusion_matrix.png", "logs"} <= names
    assert sentiment_run.plots == (str(out / "confusion_matrix.png"),)
    assert ".kbert-state" not in names  # backup and best weights are cleaned up after a finished run
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "negative", "1": "positive"} and config["label2id"]["positive"] == 1
    assert config["problem_type"] == "single_label_classification" and config["model_type"] == "bert"
    assert config["kbert"]["task"] == "text-classification"
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history] == [0, 1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "val_macro_f1"} <= set(history[-1])
    assert set(sentiment_run.metrics) == {"accuracy", "macro_f1", "loss", "examples"}
    assert sentiment_run.metrics["examples"] == 60
    assert json.loads((out / "metrics.json").read_text()) == pytest.approx(sentiment_run.metrics)
    assert json.loads((out / "training_config.json").read_text())["epochs"] == 3


def test_saved_tensors_have_hugging_face_names_and_shapes(sentiment_run):
    """Same names and shapes as a checkpoint transformers itself wrote (classifier rows aside)."""
    ours = read_safetensors(sentiment_run.output / "model.safetensors")
    theirs = read_safetensors(CHECKPOINTS / "tiny-uncased-cls" / "model.safetensors")
    assert set(ours) == set(theirs)
    for name, tensor in theirs.items():
        if not name.startswith("classifier."):
            assert ours[name].shape == tensor.shape, name
    assert ours["classifier.weight"].shape == (2, 32)


def test_trained_model_learns_and_reloads_with_the_same_scores(sentiment_run, sentiment_files):
    assert sentiment_run.metrics["accuracy"] > 0.9  # held-out combinations of the sentiment words
    again = evaluate(str(sentiment_run.output), sentiment_files[1], max_length=32)
    assert again["accuracy"] == pytest.approx(sentiment_run.metrics["accuracy"])
    assert again["loss"] == pytest.approx(sentiment_run.metrics["loss"], abs=1e-5)
    result = kbert.pipeline("text-classification", model=sentiment_run.output)("what a wonderful film")
    assert result[0]["label"] in {"negative", "positive"}


def test_multi_label_training(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [{"text": "great food and cheap", "label": ["food", "price"]}, {"text": "tasty meal", "label": ["food"]},
            {"text": "too expensive", "label": ["price"]}, {"text": "rude staff", "label": ["service"]}] * 8
    path.write_text("\n".join(json.dumps(r) for r in rows))
    result = kbert.train(task="multi-label-classification", train=str(path), eval=str(path),
                         output=str(tmp_path / "out"), epochs=1, **FAST)
    assert set(result.metrics) == {"micro_f1", "macro_f1", "subset_accuracy", "loss", "examples"}
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert list(config["id2label"].values()) == ["food", "price", "service"]
    scores = kbert.pipeline("text-classification", model=tmp_path / "out")("tasty", top_k=None)
    assert len(scores) == 3 and all(0 < s["score"] < 1 for s in scores)  # sigmoid per label, as HF


def test_regression_training_on_pairs(tmp_path):
    path = tmp_path / "sts.csv"
    path.write_text("".join(f'"a cat sits {i}","a cat sat {i}",{(i % 6) * 1.0}\n' for i in range(48)))
    result = kbert.train(task="text-regression", train=str(path), eval=str(path), output=str(tmp_path / "out"),
                         epochs=1, **FAST)
    assert set(result.metrics) == {"pearson", "spearman", "mse", "loss", "examples"}
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["problem_type"] == "regression" and config["id2label"] == {"0": "LABEL_0"}
    assert config["kbert"]["text_pair"] is True


def test_freeze_backbone_trains_only_the_head(tmp_path):
    kbert.train(train=DEMO_TEST, output=str(tmp_path / "out"), epochs=1, freeze_backbone=True, **FAST)
    before = read_safetensors(CHECKPOINTS / "tiny-uncased-qa" / "model.safetensors")
    after = read_safetensors(tmp_path / "out" / "model.safetensors")
    np.testing.assert_array_equal(after["bert.encoder.layer.0.attention.self.query.weight"],
                                  before["bert.encoder.layer.0.attention.self.query.weight"])
    assert "classifier.weight" in after


def test_weight_decay_skips_biases_and_layer_norm():
    from kbert.checkpoint import load_checkpoint
    from kbert.checkpoint.save import model_slots
    from kbert.tasks import get_task
    from kbert.training.optimizer import build_optimizer, decays

    task = get_task("text-classification")(load_checkpoint(TINY), id2label={0: "a", 1: "b"})
    slots = {s.hf_name: s.variable for s in model_slots(task, task.build_model())}
    no_decay = [v for n, v in slots.items() if not decays(n)]
    optimizer = build_optimizer(learning_rate=1e-3, warmup=0, total_steps=10, weight_decay=0.01, clip_norm=1.0,
                                no_decay_variables=no_decay)
    assert not optimizer._use_weight_decay(slots["embeddings.LayerNorm.weight"])
    assert not optimizer._use_weight_decay(slots["encoder.layer.1.output.dense.bias"])
    assert optimizer._use_weight_decay(slots["encoder.layer.1.output.dense.weight"])


def test_interrupted_run_resumes_from_the_last_finished_epoch(tmp_path, monkeypatch):
    output = str(tmp_path / "out")
    original = training_callbacks.HistoryFile.on_epoch_end

    def crash_after_first_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(training_callbacks.HistoryFile, "on_epoch_end", crash_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        kbert.train(train=DEMO_TEST, output=output, epochs=2, **FAST)
    assert (tmp_path / "out" / ".kbert-state").is_dir() and not (tmp_path / "out" / "model.safetensors").exists()
    monkeypatch.setattr(training_callbacks.HistoryFile, "on_epoch_end", original)

    starts = []
    original_begin = training_callbacks.HistoryFile.on_train_begin

    def record_start(self, logs=None):
        starts.append(getattr(self.model, "_initial_epoch", None) or 0)
        original_begin(self, logs)

    monkeypatch.setattr(training_callbacks.HistoryFile, "on_train_begin", record_start)
    result = kbert.train(train=DEMO_TEST, output=output, epochs=2, **FAST)
    assert starts == [1]  # the same command continued at epoch 2, not from zero
    assert [e["epoch"] for e in result.history] == [0, 1]


def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    env = dict(os.environ, KBERT_CPU_DEVICES="2", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-m", "kbert", "train", "--model", TINY, "--train", DEMO_TEST, "--output", str(tmp_path / "o"),
         "--epochs", "1", "--batch-size", "16", "--max-length", "32", "--strategy", "mirrored", "--quiet"],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "o" / "model.safetensors").is_file()


@pytest.mark.parametrize("content, kwargs, error, message", [
    ("text\tlabel\ngood\tpositive\nbad\n", {}, DataError, r"train\.tsv:3: .*"),
    ("text\tlabel\n", {}, DataError, r"train\.tsv: no examples"),
    ("sentence\tlabel\ngood\tpositive\nbad\tnegative\n", {"text_column": "review"}, DataError, r"no column 'review'"),
    ("text\tlabel\ngood\tpositive\nbad\tnegative\n", {"labels": ("negative", "neutral")}, DataError,
     r"train\.tsv:2: label 'positive' is not one of \['negative', 'neutral'\]"),
    ("text\tlabel\ngood\tnan\nbad\t1.5\n", {"task": "text-regression"}, DataError, r"train\.tsv:2: .*"),
])
def test_bad_data_is_reported_before_anything_is_written(tmp_path, content, kwargs, error, message):
    (tmp_path / "train.tsv").write_text(content)
    output = tmp_path / "out"
    with pytest.raises(error, match=message):
        kbert.train(train=str(tmp_path / "train.tsv"), output=str(output), epochs=1, **{**FAST, **kwargs})
    assert not output.exists()


def test_non_utf8_and_head_size_mismatch(tmp_path):
    (tmp_path / "train.tsv").write_bytes(b"text\tlabel\ngood\tpositive\n\xff\xfe\tnegative\n")
    with pytest.raises(DataError, match=r"train\.tsv:3: not UTF-8"):
        kbert.train(train=str(tmp_path / "train.tsv"), output=str(tmp_path / "o"), **FAST)
    fast = {**FAST, "model": str(CHECKPOINTS / "tiny-uncased-cls")}  # its head predicts 3 labels
    with pytest.raises(TrainingError, match="classifier head has 3 outputs but the data has 2 labels"):
        kbert.train(train=DEMO_TEST, output=str(tmp_path / "o"), labels=("negative", "positive"), **fast)
    assert not (tmp_path / "o").exists()


def test_cli_train_error_is_one_line(tmp_path, capsys):
    from kbert.cli import main

    code = main(["train", "--model", TINY, "--train", str(tmp_path / "missing.tsv"), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("kbert: error: ") and "missing.tsv" in err and "Traceback" not in err


def test_cli_evaluate_prints_one_json_object(sentiment_run, sentiment_files, capsys):
    from kbert.cli import main

    assert main(["evaluate", "--model", str(sentiment_run.output), "--data", sentiment_files[1],
                 "--max-length", "32"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["examples"] == 60 and metrics["accuracy"] == pytest.approx(sentiment_run.metrics["accuracy"])


def test_evaluate_plots_a_confusion_matrix_of_its_predictions(sentiment_run, sentiment_files, tmp_path):
    from kbert.training.evaluation import evaluate_report
    from kbert.plots import confusion_matrix_figure

    report = evaluate_report(str(sentiment_run.output), sentiment_files[1], max_length=32, plots=tmp_path / "plots")
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["confusion_matrix.png"]
    details = report.details
    predicted = np.argmax(details["logits"], axis=-1)
    counts = np.zeros((2, 2), int)
    np.add.at(counts, (details["labels"].astype(int), predicted), 1)
    assert counts.trace() == round(report.metrics["accuracy"] * 60)  # the plotted matrix holds the scored predictions
    figure = confusion_matrix_figure(details["labels"].astype(int), predicted, details["names"])
    cells = sorted(int(t.get_text()) for t in figure.axes[0].texts)
    assert cells == sorted(counts.ravel().tolist())


def test_recipe_runs_train_export_and_predict_through_the_saved_model(tmp_path, monkeypatch):
    from kbert.recipes import load_recipe, run_recipe

    recipe = tmp_path / "tiny.toml"
    recipe.write_text(f"""
[train]
model = "{TINY}"
train = "{{repo}}/kbert/data/demo/sentiment_test.tsv[:64]"
eval = "{{repo}}/kbert/data/demo/sentiment_test.tsv[64:]"
output = "{tmp_path / 'run'}"
epochs = 1
batch_size = 16
max_length = 32
verbose = 0
[export]
output = "{tmp_path / 'served'}"
[predict]
texts = ["lovely", "awful"]
""")
    assert load_recipe(recipe).train.train.endswith("sentiment_test.tsv[:64]")
    summary = run_recipe(recipe)
    assert summary["metrics"]["examples"] == 56
    assert summary["saved_model"].endswith("served/1")
    assert [p["text"] for p in summary["predictions"]] == ["lovely", "awful"]
    assert {p["label"] for p in summary["predictions"]} <= {"negative", "positive"}


def test_recipe_errors_name_the_file_and_key(tmp_path):
    from kbert.errors import InputError
    from kbert.recipes import load_recipe

    bad = tmp_path / "bad.toml"
    bad.write_text('[train]\ntrain = "x.tsv"\noutput = "o"\nepoch = 3\n')
    with pytest.raises(InputError, match=r"bad\.toml: \[train\] has unknown keys \['epoch'\]"):
        load_recipe(bad)
    bad.write_text('[train]\ntrain = "x.tsv"\noutput = "o"\nbatch_size = 0\n')
    with pytest.raises(InputError, match=r"bad\.toml: \[train\]: batch_size must be a positive integer"):
        load_recipe(bad)


def test_shipped_recipes_are_valid():
    from kbert.recipes import load_recipe

    from kbert.tuning.search import recipe_search

    for path in sorted((ROOT / "pipelines").glob("*.toml")):
        recipe = load_recipe(path)
        if recipe.tune:  # a search (kbert tune): its [tune] table and space are valid
            space, options = recipe_search(recipe)
            assert space.params and recipe.train.eval, path
        else:
            assert recipe.export_to and recipe.predict_texts, path


def test_dataset_batches_cover_every_example_once_and_pad_to_their_longest():
    from kbert.checkpoint import load_checkpoint
    from kbert.batching.dataset import make_dataset

    tokenizer = load_checkpoint(TINY).tokenizer
    long_text = "the movie was great and the story was good but the actors were bad and boring"  # 18 tokens
    texts = ["good"] * 5 + [long_text] * 4
    data = make_dataset(tokenizer, texts, None, np.arange(9), batch_size=4, max_length=64, shuffle=True, seed=1)
    seen, widths = [], []
    for features, labels in data.dataset:
        seen += labels.numpy().tolist()
        widths.append(int(features["token_ids"].shape[1]))
        assert features["padding_mask"].numpy().sum(axis=1).max() == widths[-1]  # no column of pure padding
    assert sorted(seen) == list(range(9)) and data.num_batches == len(widths) == 3
    assert sorted(widths) == [3, 3, 18]  # short texts (bucket < 17) are never padded to the long ones


def test_label_names_rename_data_labels_for_training_and_evaluation(tmp_path):
    data = tmp_path / "rte.tsv"
    data.write_text("sentence1\tsentence2\tlabel\n" + "".join(
        f"the movie was good\tthe film was {w}\t{i % 2}\n" for i, w in enumerate(["good", "bad"] * 10)))
    result = kbert.train(train=str(data), output=str(tmp_path / "run"), epochs=1, eval=str(data),
                         label_names={"0": "entailment", "1": "not_entailment"}, **FAST)
    config = json.loads((result.output / "config.json").read_text())
    assert config["id2label"] == {"0": "entailment", "1": "not_entailment"}
    assert evaluate(str(result.output), str(data))["examples"] == 20  # the file's 0/1 are renamed again
    with pytest.raises(DataError, match=r"rte.tsv:2: label '0' has no name in label_names"):
        kbert.train(train=str(data), output=str(tmp_path / "run2"), epochs=1, label_names={"1": "yes"}, **FAST)

"""kbert.tune / kbert tune: Keras Tuner searches over kbert training runs (tiny model, the shipped demo data),
the search space's checks, layer-wise learning-rate decay, resuming, and distributed tuning on localhost."""

import csv
import json
import os
import socket
import subprocess
import sys

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

import kbert
from conftest import CHECKPOINTS, ROOT
from kbert.errors import TrainingError, TuningError
from kbert.training.optimizer import build_optimizer, layer_learning_rate_scales
from kbert.tuning import tune
from kbert.tuning.search import results_table, tune_recipe
from kbert.tuning.search_space import Choice, Range, SearchSpace

TINY = CHECKPOINTS / "tiny-uncased-qa"  # no classifier head: every trial draws the same fresh head (seed 42)
DEMO = ROOT / "kbert" / "data" / "demo"
BASE = dict(train=str(DEMO / "sentiment_train.tsv") + "[:160]", eval=str(DEMO / "sentiment_test.tsv") + "[:60]",
            model=str(TINY), epochs=1, batch_size=16, max_length=32, verbose=0)


# --- search space ------------------------------------------------------------------------------------
@pytest.mark.parametrize("table, message", [
    ({}, "the search space is empty"),
    ({"max_length": [64, 128]}, "'max_length' cannot be tuned"),
    ({"learning_rate": []}, "learning_rate: an empty list of choices"),
    ({"batch_size": [16, 32.5]}, "batch_size: choice 32.5 is not int"),
    ({"batch_size": [16, 16]}, r"batch_size: choices repeat: \[16, 16\]"),
    ({"learning_rate": {"min": 1e-3, "max": 1e-5}}, "learning_rate: range needs float min < max"),
    ({"learning_rate": {"min": 0.0, "max": 1e-3, "sampling": "log"}}, "log sampling needs min > 0"),
    ({"learning_rate": {"min": 1e-5, "max": 1e-3, "sampling": "cubic"}}, "sampling must be one of"),
    ({"learning_rate": {"low": 1e-5, "max": 1e-3}}, r"a range is \{min, max"),
    ({"freeze_backbone": {"min": 0, "max": 1}}, "a boolean takes a list of choices"),
    ({"dropout": 0.1}, "give a list of choices or a {min, max} range, got 0.1"),
])
def test_bad_search_spaces_are_refused_naming_the_parameter(table, message):
    with pytest.raises(TuningError, match=message):
        SearchSpace.from_table(table)


def test_a_space_declares_keras_tuner_hyperparameters_of_the_right_kind():
    space = SearchSpace({"learning_rate": Range(1e-5, 1e-3, sampling="log"), "batch_size": Choice((16, 32)),
                         "freeze_backbone": Choice((False, True)), "epochs": Range(1, 3),
                         "dropout": Range(0.0, 0.3, step=0.1)})
    hp = keras_tuner.HyperParameters()
    values = space.declare(hp)
    kinds = {h.name: type(h).__name__ for h in hp.space}
    assert kinds == {"learning_rate": "Float", "batch_size": "Choice", "freeze_backbone": "Boolean",
                     "epochs": "Int", "dropout": "Float"}
    assert values == {"learning_rate": 1e-5, "batch_size": 16, "freeze_backbone": False, "epochs": 1, "dropout": 0.0}
    assert hp.space[0].sampling == "log"


# --- layer-wise learning-rate decay --------------------------------------------------------------------
def test_layer_decay_scales_each_variables_adam_step():
    """Adam's first step moves every weight by lr (sign of the gradient): a variable with factor f moves f * lr."""
    full, half, quarter = (keras.Variable(np.zeros(3, np.float32)) for _ in range(3))
    optimizer = build_optimizer(learning_rate=1e-2, warmup=0, total_steps=10, weight_decay=0.0, clip_norm=None,
                                no_decay_variables=[], learning_rate_scales=[(half, 0.5), (quarter, 0.25)])
    grads = [tf.constant([1.0, -2.0, 3.0])] * 3
    optimizer.apply(grads, [full, half, quarter])
    step = 1e-2 * 1.0  # the schedule at step 0 with no warm-up is the peak
    np.testing.assert_allclose(full.numpy(), -step * np.sign([1, -2, 3]), rtol=1e-4)
    np.testing.assert_allclose(half.numpy(), 0.5 * full.numpy(), rtol=1e-5)
    np.testing.assert_allclose(quarter.numpy(), 0.25 * full.numpy(), rtol=1e-5)


def test_layer_decay_depths_follow_the_encoder_layers():
    from kbert.checkpoint import load_checkpoint
    from kbert.checkpoint.save import model_slots
    from kbert.tasks import get_task

    task = get_task("text-classification")(load_checkpoint(CHECKPOINTS / "tiny-uncased-cls"))
    model = task.build_model()
    slots = model_slots(task, model)
    family = task.checkpoint.family
    factors = {id(v): f for v, f in layer_learning_rate_scales(slots, 0.5, 2, family)}
    scales = {s.hf_name: factors.get(id(s.variable), 1.0) for s in slots}
    assert scales["embeddings.word_embeddings.weight"] == 0.125
    assert scales["encoder.layer.0.attention.self.query.weight"] == 0.25
    assert scales["encoder.layer.1.output.LayerNorm.bias"] == 0.5
    assert scales["classifier.weight"] == 1.0 and scales["pooler.dense.weight"] == 1.0
    assert layer_learning_rate_scales(slots, 1.0, 2, family) == [] == layer_learning_rate_scales(slots, None, 2, family)


def test_layer_decay_is_checked_and_trains(tmp_path):
    with pytest.raises(TrainingError, match=r"layer_lr_decay must be in \(0, 1\], got 1.5"):
        kbert.TrainConfig(train="x.tsv", output="o", layer_lr_decay=1.5)
    plain = kbert.train(**BASE, output=str(tmp_path / "plain"))
    decayed = kbert.train(**BASE, output=str(tmp_path / "decayed"), layer_lr_decay=0.5)
    assert plain.metrics and decayed.metrics
    assert plain.metrics["loss"] != decayed.metrics["loss"]  # the lower layers moved less


# --- searches ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    output = tmp_path_factory.mktemp("grid")
    return tune(**BASE, output=str(output), space={"learning_rate": [1e-4, 3e-3]}, tuner="grid", max_trials=5)


def test_grid_search_tries_every_value_and_keeps_the_best_trials_checkpoint(grid):
    assert grid.objective == "val_macro_f1" and grid.direction == "max"
    assert [t["hyperparameters"]["learning_rate"] for t in grid.trials] == [1e-4, 3e-3]  # the grid, then it stops
    scores = [t["score"] for t in grid.trials]
    assert all(isinstance(s, float) for s in scores)
    assert grid.best_score == max(scores)
    best = grid.trials[scores.index(max(scores))]
    assert grid.best_hyperparameters == best["hyperparameters"]
    # the best checkpoint is that trial's model, re-scored: the same macro-F1 the tuner recorded
    assert grid.best_metrics["macro_f1"] == pytest.approx(grid.best_score, abs=1e-6)
    evaluated = kbert.evaluate(str(grid.best_checkpoint), BASE["eval"])
    assert evaluated["macro_f1"] == pytest.approx(grid.best_score, abs=1e-6)


def test_a_search_writes_its_table_json_and_figure(grid):
    with open(grid.output / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["learning_rate"] for r in rows] == ["0.0001", "0.003"]
    assert [float(r["val_macro_f1"]) for r in rows] == pytest.approx([t["score"] for t in grid.trials], abs=1e-5)
    results = json.loads((grid.output / "results.json").read_text())
    assert results["best_hyperparameters"] == grid.best_hyperparameters and results["tuner"] == "grid"
    assert (grid.output / "trials.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = results_table(grid.trials, ["learning_rate"], grid.objective, grid.direction).splitlines()
    assert table[0].split() == ["trial", "learning_rate", "val_macro_f1"]
    assert float(table[1].split()[-1]) == pytest.approx(grid.best_score, abs=1e-4)  # best first


def test_a_search_continues_where_it_stopped(tmp_path):
    first = tune(**BASE, output=str(tmp_path), space={"learning_rate": {"min": 1e-5, "max": 1e-2, "sampling": "log"}},
                 tuner="random", max_trials=1)
    again = tune(**BASE, output=str(tmp_path), space={"learning_rate": {"min": 1e-5, "max": 1e-2, "sampling": "log"}},
                 tuner="random", max_trials=2)
    assert len(first.trials) == 1 and len(again.trials) == 2
    assert again.trials[0] == first.trials[0]  # kept, not run again
    fresh = tune(**BASE, output=str(tmp_path), space={"learning_rate": [1e-4]}, tuner="random", max_trials=1,
                 overwrite=True)
    assert len(fresh.trials) == 1 and fresh.trials[0]["hyperparameters"] == {"learning_rate": 1e-4}


def test_hyperband_picks_the_epochs_and_bayesian_search_runs(tmp_path):
    band = tune(**{**BASE, "epochs": 2}, output=str(tmp_path / "band"), space={"learning_rate": [1e-4, 3e-3]},
                tuner="hyperband", max_epochs=2, factor=2)
    assert band.trials and {t["epochs"] for t in band.trials} <= {1, 2} and band.best_checkpoint.is_dir()
    bayes = tune(**BASE, output=str(tmp_path / "bayes"), space={"learning_rate": {"min": 1e-4, "max": 1e-2}},
                 tuner="bayesian", max_trials=2)
    assert len(bayes.trials) == 2 and bayes.best_score == max(t["score"] for t in bayes.trials)


@pytest.mark.parametrize("options, message", [
    (dict(tuner="annealing"), r"tuner must be one of \['random', 'bayesian', 'hyperband', 'grid'\], got 'annealing'"),
    (dict(max_trials=0), "max_trials must be a positive integer, got 0"),
    (dict(overwrite="yes"), "overwrite must be true or false, got 'yes'"),
    (dict(tuner="hyperband", space={"epochs": [1, 2]}), "Hyperband picks each trial's epochs itself"),
    (dict(eval=None), r"a search needs evaluation data \(eval / --eval\)"),
])
def test_bad_searches_are_refused_before_any_trial(tmp_path, options, message):
    options = {**BASE, "output": str(tmp_path / "x"), "space": {"learning_rate": [1e-4]}, **options}
    with pytest.raises(TuningError, match=message):
        tune(**options)
    assert not (tmp_path / "x" / "search").exists()


# --- kbert tune RECIPE ---------------------------------------------------------------------------------
RECIPE = f"""
[train]
model = "{TINY}"
train = "{DEMO}/sentiment_train.tsv[:160]"
eval = "{DEMO}/sentiment_test.tsv[:60]"
output = "{{out}}"
epochs = 1
batch_size = 16
max_length = 32

[tune]
tuner = "grid"
max_trials = 4
{{extra}}
[tune.space]
learning_rate = [1e-4, 3e-3]
"""


def kbert_cli(*args):
    return subprocess.run([sys.executable, "-m", "kbert", *args], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=600)


def test_kbert_tune_runs_a_recipe_and_prints_the_trials(tmp_path):
    recipe = tmp_path / "tune.toml"
    recipe.write_text(RECIPE.format(out=tmp_path / "run", extra=""))
    done = kbert_cli("tune", str(recipe))
    assert done.returncode == 0, done.stderr[-2000:]
    [summary] = [json.loads(line) for line in done.stdout.splitlines()]  # only the JSON on stdout
    assert "Search: Running Trial #2" in done.stderr  # Keras Tuner's banners go to stderr
    assert summary["trials"] == 2 and summary["objective"] == "val_macro_f1"
    assert summary["best_checkpoint"] == str(tmp_path / "run" / "best")
    assert "trial  learning_rate  val_macro_f1" in done.stderr
    assert summary["best_metrics"]["macro_f1"] == pytest.approx(summary["best_score"], abs=1e-6)


def test_kbert_tune_names_the_recipe_in_its_errors(tmp_path):
    recipe = tmp_path / "tune.toml"
    recipe.write_text(RECIPE.format(out=tmp_path / "run", extra="patience = 3"))
    done = kbert_cli("tune", str(recipe))
    assert done.returncode == 2
    assert f"kbert: error: {recipe}: [tune] has unknown keys ['patience']" in done.stderr
    recipe.write_text(RECIPE.format(out=tmp_path / "run", extra=""))
    with pytest.raises(TuningError, match=r"tune.toml: tuner must be one of"):
        tune_recipe(recipe, tuner="simplex")


SEEDED = """
[train]
model = "{model}"
train = "{demo}/sentiment_train.tsv[:16]"
eval = "{demo}/sentiment_test.tsv[:8]"
output = "{out}"
epochs = 1
batch_size = 8
max_length = 16
verbose = 0

[tune]
tuner = "random"
max_trials = 2
seed = {seed}

[tune.space]
learning_rate = {{ min = 1e-5, max = 1e-2, sampling = "log" }}
"""


def seeded_recipe(folder, seed):
    recipe = folder / "tune.toml"
    recipe.write_text(SEEDED.format(model=TINY, demo=DEMO, out=folder / "run", seed=seed))
    return recipe


def test_the_same_tune_seed_picks_the_same_hyperparameters(tmp_path):
    def picked(name, seed, **overrides):
        (tmp_path / name).mkdir()
        trials = tune_recipe(seeded_recipe(tmp_path / name, seed), **overrides).trials
        return [t["hyperparameters"]["learning_rate"] for t in trials]

    first = picked("first", 7)
    assert len(first) == 2 and first == picked("again", 7)
    assert picked("other", 8, max_trials=1)[0] != first[0]  # the [tune] seed picks them, not [train]'s (both 42)


@pytest.mark.parametrize("seed, shown", [("0", "0"), ("-3", "-3"), ("1.5", "1.5"), ('"7"', "'7'"), ("true", "True"),
                                         (str(2 ** 32), str(2 ** 32))])
def test_a_bad_tune_seed_is_refused_before_any_trial(tmp_path, seed, shown):
    with pytest.raises(TuningError, match=r"tune.toml: seed must be an integer from 1 to 4294967295 \(Keras Tuner "
                                          rf"takes 0 for no seed\), got {shown}$"):
        tune_recipe(seeded_recipe(tmp_path, seed))
    assert not (tmp_path / "run").exists()


# --- distributed tuning: a chief oracle and two workers on localhost -------------------------------------
WORKER = """
import json, sys
from kbert.tuning import hypermodel, tune
trained, fit = [], hypermodel.KbertHyperModel.fit
hypermodel.KbertHyperModel.fit = lambda self, hp, *a, **k: trained.append(hp.values["learning_rate"]) or fit(self, hp, *a, **k)
result = tune(train=sys.argv[1], eval=sys.argv[2], model=sys.argv[3], output=sys.argv[4], epochs=1, batch_size=16,
              max_length=32, verbose=0, space={"learning_rate": [1e-4, 3e-4, 1e-3, 3e-3]}, tuner="grid", max_trials=4)
print(json.dumps({"trials": result.trials, "best": result.best_hyperparameters, "trained": trained}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_search_with_a_chief_and_two_workers_runs_each_trial_once(tmp_path):
    port = _free_port()
    args = [BASE["train"], BASE["eval"], str(TINY), str(tmp_path / "search")]
    processes = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERASTUNER_TUNER_ID=tuner_id,
                   KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=str(port), CUDA_VISIBLE_DEVICES="")
        processes[tuner_id] = subprocess.Popen([sys.executable, "-c", WORKER, *args], stdout=subprocess.PIPE,
                                               stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    outputs = {}
    try:
        for tuner_id, process in processes.items():
            out, err = process.communicate(timeout=600)
            assert process.returncode == 0, f"{tuner_id}: {err[-3000:]}"
            outputs[tuner_id] = json.loads(out.strip().splitlines()[-1])
    finally:
        for process in processes.values():
            process.kill()
    chief = outputs["chief"]
    rates = sorted(t["hyperparameters"]["learning_rate"] for t in chief["trials"])
    assert rates == [1e-4, 3e-4, 1e-3, 3e-3]  # every grid point once: no trial run twice
    assert all(t["status"] == "COMPLETED" for t in chief["trials"])
    assert outputs["tuner0"]["trials"] == [] == outputs["tuner1"]["trials"]  # workers leave the results to the chief
    # the workers trained the trials between them, each exactly once; the chief trained none
    assert sorted(outputs["tuner0"]["trained"] + outputs["tuner1"]["trained"]) == rates
    assert outputs["chief"]["trained"] == []
    assert (tmp_path / "search" / "best" / "config.json").is_file()

"""``kbert.tune(...)`` / ``kbert tune RECIPE.toml``: a Keras Tuner search over a kbert training run.

    base TrainConfig + SearchSpace ─► KbertHyperModel ─► RandomSearch | BayesianOptimization | Hyperband | GridSearch
        ─► trials (each a kbert training run, scored by the task's validation metric)
        ─► OUTPUT/search/ (Keras Tuner's project: resumable), trials.csv, results.json, trials.png,
           best/ (the best trial's Hugging Face checkpoint, re-scored: metrics.json)

The objective is the task's monitored validation metric (``val_macro_f1``, ``val_pearson``, ``val_f1``...,
or the config's ``monitor``); the base config must have ``eval`` data. With ``overwrite=False`` (the
default) a search continues where an earlier one in the same folder stopped (finished trials are kept;
raise ``max_trials`` to run more); ``overwrite=True`` starts again.

Distributed tuning is Keras Tuner's own: run the same command on a chief and workers with
``KERASTUNER_TUNER_ID`` (``chief``, ``tuner0``, ``tuner1``...), ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT`` set and the same output folder reachable by all; the chief serves the oracle
and writes the results once every trial has ended, the workers run trials.

Example:
    >>> import tempfile
    >>> from kbert.tuning import tune
    >>> result = tune(train="kbert/data/demo/sentiment_train.tsv", eval="kbert/data/demo/sentiment_test.tsv",
    ...               output=tempfile.mkdtemp(), model="tests/fixtures/checkpoints/tiny-uncased-qa", epochs=1,
    ...               space={"learning_rate": [1e-4, 1e-3]}, tuner="grid", verbose=0)
    >>> len(result.trials), sorted(result.best_hyperparameters), (result.best_checkpoint / "config.json").is_file()
    (2, ['learning_rate'], True)
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import pathlib
from collections.abc import Mapping
from typing import Any

from kbert.atomic_files import write_bytes, write_json
from kbert.errors import TuningError
from kbert.training.config import TrainConfig
from kbert.tuning.search_space import DEFAULT_SPACE, SearchSpace

TUNERS = ("random", "bayesian", "hyperband", "grid")
TUNER_STRATEGIES = ("default", "mirrored", "tpu")  # a trial's strategy (several machines: a distributed search)
SEARCH_FOLDER = "search"  # Keras Tuner's project folder inside the output folder
BEST_FOLDER = "best"


@dataclasses.dataclass(frozen=True)
class TuneResult:
    output: pathlib.Path  # the search's folder
    objective: str  # e.g. "val_macro_f1"
    direction: str  # "max" or "min"
    trials: list  # one dict per trial: trial_id, status, score, hyperparameters
    best_hyperparameters: dict  # the searched hyperparameters of the best trial
    best_score: float | None
    best_checkpoint: pathlib.Path | None  # HF checkpoint of the best trial (None on a distributed worker)
    best_metrics: dict  # the best checkpoint's evaluation


def tune(config: TrainConfig | None = None, space: SearchSpace | Mapping | None = None, *, tuner: str = "random",
         max_trials: int = 10, max_epochs: int | None = None, factor: int = 3, overwrite: bool = False,
         seed: int | None = None, **options) -> TuneResult:
    """Search ``space`` (a :class:`SearchSpace` or a ``[tune.space]``-style dict; default :data:`DEFAULT_SPACE`)
    around ``config`` (or :class:`TrainConfig` ``options``) with ``tuner`` (one of :data:`TUNERS`).

    ``max_trials`` bounds random, Bayesian and grid searches (a grid stops earlier when it has tried every
    combination); Hyperband runs brackets up to ``max_epochs`` (default: ``config.epochs``) with reduction
    ``factor``. ``seed`` (default: the config's) seeds the tuner's choices: the same seed picks the same
    hyperparameters.
    """
    import keras_tuner

    from kbert.tuning.hypermodel import KbertHyperModel

    config = config or TrainConfig.from_options(**options)
    space = DEFAULT_SPACE if space is None else space if isinstance(space, SearchSpace) else SearchSpace.from_table(space)
    if tuner not in TUNERS:
        raise TuningError(f"tuner must be one of {list(TUNERS)}, got {tuner!r}")
    if config.eval is None:
        raise TuningError("a search needs evaluation data (eval / --eval): its metric is the objective")
    if not isinstance(overwrite, bool):
        raise TuningError(f"overwrite must be true or false, got {overwrite!r}")
    for name, value in (("max_trials", max_trials), ("factor", factor), ("max_epochs", max_epochs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise TuningError(f"{name} must be a positive integer, got {value!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 1 <= seed < 2 ** 32):
        raise TuningError(f"seed must be an integer from 1 to {2 ** 32 - 1} (Keras Tuner takes 0 for no seed), "
                          f"got {seed!r}")
    if config.strategy not in TUNER_STRATEGIES:
        raise TuningError("a search runs its trials under strategy 'default', 'mirrored' or 'tpu'; to use several "
                          "machines, distribute the search (KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP/PORT)")
    if tuner == "hyperband" and "epochs" in space.params:
        raise TuningError("Hyperband picks each trial's epochs itself (up to max_epochs): leave epochs out of "
                          "the space")

    from kbert.training.strategy import make_at_startup

    make_at_startup(config.strategy, config.tpu)  # as kbert.train: a TPU system starts before anything else runs
    output = pathlib.Path(config.output)
    schedule_epochs = (max_epochs or config.epochs) if tuner == "hyperband" else None
    hypermodel = KbertHyperModel(config, space, schedule_epochs=schedule_epochs)
    common = dict(hypermodel=hypermodel, objective=hypermodel.objective, directory=str(output),
                  project_name=SEARCH_FOLDER, overwrite=overwrite,
                  seed=config.seed if seed is None else seed)
    if tuner == "hyperband":
        engine = keras_tuner.Hyperband(max_epochs=max_epochs or config.epochs, factor=factor, **common)
    else:
        engine = {"random": keras_tuner.RandomSearch, "bayesian": keras_tuner.BayesianOptimization,
                  "grid": keras_tuner.GridSearch}[tuner](max_trials=max_trials, **common)
    engine.search(verbose=config.verbose)

    from keras_tuner.src.distribute import utils as dist_utils

    objective = hypermodel.objective
    if dist_utils.has_chief_oracle() and not dist_utils.is_chief_oracle():  # a worker: the chief writes results
        return TuneResult(output, objective.name, objective.direction, [], {}, None, None, {})
    trials = trial_rows(engine.oracle, list(space.params))
    best = engine.oracle.get_best_trials(1)
    if not best:
        raise TuningError(f"no trial finished with a score for {objective.name} (see {output / SEARCH_FOLDER})")
    best_trial = best[0]
    engine.load_model(best_trial)  # rebuilds the trial's run and loads its best epoch's weights
    from kbert.training.callbacks import Evaluation

    best_dir = output / BEST_FOLDER
    best_dir.mkdir(parents=True, exist_ok=True)
    run = hypermodel.run
    finished = run.finish([Evaluation(run.plan.scorer)], best_dir)
    best_values = {k: best_trial.hyperparameters.values[k] for k in space.params}
    write_trials(output, trials, list(space.params), objective.name)
    write_json(output / "results.json", {
        "objective": objective.name, "direction": objective.direction, "tuner": tuner,
        "best_trial": best_trial.trial_id, "best_score": best_trial.score, "best_hyperparameters": best_values,
        "best_checkpoint": str(best_dir), "best_metrics": finished.metrics, "trials": trials})
    from kbert.tuning.plots import plot_trials

    plot_trials(trials, objective.name, objective.direction, output / "trials.png")
    return TuneResult(output, objective.name, objective.direction, trials, best_values, best_trial.score, best_dir,
                      finished.metrics)


TUNE_KEYS = ("tuner", "max_trials", "max_epochs", "factor", "overwrite", "seed", "space")  # a recipe's [tune] table


def tune_recipe(path, **overrides) -> TuneResult:
    """Run the search of a recipe: ``[train]`` is the base run, ``[tune]`` the search (keys :data:`TUNE_KEYS`,
    ``[tune.space]`` as :meth:`SearchSpace.from_table`); ``overrides`` (not None) replace ``[tune]`` keys."""
    from kbert.recipes import load_recipe

    recipe = load_recipe(path)
    space, options = recipe_search(recipe)
    options.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return tune(recipe.train, space, **options)
    except TuningError as err:
        raise TuningError(f"{recipe.path}: {err}") from None


def recipe_search(recipe) -> tuple[SearchSpace, dict]:
    """A recipe's checked ``[tune]`` table: its search space and :func:`tune`'s other options."""
    unknown = sorted(set(recipe.tune) - set(TUNE_KEYS))
    if unknown:
        raise TuningError(f"{recipe.path}: [tune] has unknown keys {unknown}; known keys: {list(TUNE_KEYS)}")
    options = dict(recipe.tune)
    try:
        space = SearchSpace.from_table(options.pop("space")) if "space" in options else DEFAULT_SPACE
    except TuningError as err:
        raise TuningError(f"{recipe.path}: [tune.space]: {err}") from None
    return space, options


def trial_rows(oracle, names: list[str]) -> list[dict]:
    """One row per trial in the order they were created: id, status, score, the searched values (and
    Hyperband's ``epochs`` of the bracket)."""
    rows = []
    for trial_id in sorted(oracle.trials, key=lambda t: (len(t), t)):
        trial = oracle.trials[trial_id]
        values = trial.hyperparameters.values
        row = {"trial_id": trial_id, "status": str(getattr(trial.status, "value", trial.status)),
               "score": None if trial.score is None or not math.isfinite(trial.score) else float(trial.score),
               "hyperparameters": {k: values[k] for k in names if k in values}}
        if "tuner/epochs" in values:
            row["epochs"] = values["tuner/epochs"]
        rows.append(row)
    return rows


def write_trials(output: pathlib.Path, trials: list[dict], names: list[str], objective: str) -> pathlib.Path:
    """``trials.csv``: one line per trial, its searched values in columns, the objective last."""
    extra = ["epochs"] if any("epochs" in t for t in trials) and "epochs" not in names else []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["trial_id", "status", *names, *extra, objective])
    for t in trials:
        writer.writerow([t["trial_id"], t["status"], *(t["hyperparameters"].get(n, "") for n in names),
                         *(t.get(e, "") for e in extra), "" if t["score"] is None else f"{t['score']:.6g}"])
    path = output / "trials.csv"
    write_bytes(path, buffer.getvalue().encode("utf-8"))
    return path


def results_table(trials: list[dict], names: list[str], objective: str, direction: str) -> str:
    """The trials as a text table, best first (what ``kbert tune`` prints)."""
    scored = [t for t in trials if t["score"] is not None]
    ranked = sorted(scored, key=lambda t: t["score"], reverse=direction == "max") + [
        t for t in trials if t["score"] is None]
    header = ["trial", *names, objective]
    rows = [[t["trial_id"], *(_short(t["hyperparameters"].get(n, "")) for n in names),
             "-" if t["score"] is None else f"{t['score']:.4f}"] for t in ranked]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(c).rjust(w) for c, w in zip(r, widths)) for r in [header, *rows])


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


"""TOML training recipes (``pipelines/*.toml``): train → evaluate → export → a prediction through the export.

A recipe has a ``[train]`` table with :class:`~kbert.training.config.TrainConfig` fields (and the
task's own options, e.g. ``stride`` for token classification), an optional
``[export]`` table (``output``: the TF Serving model folder) and an optional ``[predict]`` table
(``texts``, ``pairs`` as ``[[text, text_pair], ...]``, or ``inputs`` as tables of the export's input
names, e.g. ``{question = "...", context = "..."}`` for question answering). In strings, ``{data}`` is the real-data
folder (``$KBERT_DATA``, else ``../shared/data`` beside the repository) and ``{repo}`` the repository.

Example:
    >>> from kbert.recipes import load_recipe
    >>> recipe = load_recipe("pipelines/demo_sentiment.toml")
    >>> recipe.train.model, recipe.train.epochs, recipe.export_to
    ('minilm', 3, 'saved_models/demo-sentiment')
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import tomllib

from kbert.errors import InputError, KbertError
from kbert.tasks.registry import DEFAULT_TRAIN_TASK, get_spec
from kbert.training.config import TrainConfig

REPO = pathlib.Path(__file__).resolve().parents[1]
_TABLES = {"train", "export", "predict", "tune"}


@dataclasses.dataclass(frozen=True)
class Recipe:
    path: pathlib.Path
    train: TrainConfig
    export_to: str | None = None  # TF Serving model base folder
    predict_texts: tuple = ()  # strings, (text, text_pair) tuples, or dicts of the export's inputs
    tune: dict = dataclasses.field(default_factory=dict)  # [tune]: kbert tune's search (kbert.tuning.search)


def data_folder() -> pathlib.Path:
    return pathlib.Path(os.environ.get("KBERT_DATA", REPO.parent / "shared" / "data"))


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Parse and validate a recipe; every problem names the file (and the key)."""
    path = pathlib.Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(f"{path}: cannot read the recipe ({err.strerror or err})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid TOML ({err})") from None
    unknown = sorted(set(raw) - _TABLES)
    if unknown or "train" not in raw:
        raise InputError(f"{path}: a recipe has a [train] table and optionally [export], [predict] and [tune]; "
                         f"got tables {sorted(raw)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"task_options"}
    try:  # the task's own keys (its SPEC's train options) are known too
        fields |= {o.name for o in get_spec(raw["train"].get("task", DEFAULT_TRAIN_TASK)).options_for("train")}
    except KbertError as err:
        raise InputError(f"{path}: [train]: {err}") from None
    bad = sorted(set(raw["train"]) - fields)
    if bad:
        raise InputError(f"{path}: [train] has unknown keys {bad}; known keys: {sorted(fields)}")
    values = {k: _expand(v) for k, v in raw["train"].items()}
    if isinstance(values.get("labels"), list):
        values["labels"] = tuple(values["labels"])
    try:
        train = TrainConfig.from_options(**values)
    except KbertError as err:
        raise InputError(f"{path}: [train]: {err}") from None
    except TypeError as err:
        raise InputError(f"{path}: [train]: {err}") from None
    export = raw.get("export", {})
    if set(export) - {"output"}:
        raise InputError(f"{path}: [export] takes only 'output', got {sorted(export)}")
    predict = raw.get("predict", {})
    if set(predict) - {"texts", "pairs", "inputs"} or len(predict) > 1:
        raise InputError(f"{path}: [predict] takes one of 'texts', 'pairs' or 'inputs', got {sorted(predict)}")
    records = predict.get("inputs", ())
    if any(not isinstance(r, dict) or sorted(r) != sorted(records[0]) or not all(isinstance(v, str) for v in r.values())
           for r in records):
        raise InputError(f"{path}: [predict] inputs must be tables with the same string keys, got {records!r:.200}")
    texts = tuple(predict.get("texts", ())) + tuple(tuple(p) for p in predict.get("pairs", ())) + tuple(records)
    tune = raw.get("tune", {})
    if not isinstance(tune, dict):
        raise InputError(f"{path}: [tune] must be a table, got {tune!r:.100}")
    return Recipe(path, train, _expand(export.get("output")), texts, tune)


def run_recipe(path: str | os.PathLike) -> dict:
    """Train, evaluate, export, then answer ``[predict]`` texts through the exported SavedModel.

    Under ``multiworker`` only the chief exports (the other workers report the run folder and no metrics)."""
    from kbert.export import export_saved_model
    from kbert.training.strategy import worker_role
    from kbert.training.trainer import train

    recipe = load_recipe(path)
    print(run_notice(recipe), file=sys.stderr)
    result = train(recipe.train)
    summary = {"checkpoint": str(result.output), "metrics": result.metrics}
    if recipe.export_to and worker_role(recipe.train.strategy).is_chief:
        version = export_saved_model(result.output, recipe.export_to)
        summary["saved_model"] = str(version)
        if recipe.predict_texts:
            summary["predictions"] = query_saved_model(version, recipe.predict_texts)
    return summary


def run_notice(recipe: Recipe) -> str:
    """What :func:`run_recipe` is about to do, in one line: a rerun trains again and exports the next version."""
    from kbert.export import next_version

    config = recipe.train
    line = (f"kbert: {recipe.path}: fine-tunes {config.model} ({config.task}, {config.epochs} epochs) into "
            f"{config.output}")
    if recipe.export_to:
        version = next_version(pathlib.Path(recipe.export_to))
        line += (f", exports {pathlib.Path(recipe.export_to) / str(version)}; running it again trains again and "
                 f"exports version {version + 1}")
    return line


# Run in a separate interpreter with nothing but TensorFlow, as TF Serving would load the model.
_QUERY = """
import json, sys
import tensorflow as tf, tensorflow_text  # noqa: F401
request = json.loads(sys.argv[2])
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = fn(**{k: tf.constant(v) for k, v in request.items()})
def plain(x):
    return [plain(i) for i in x] if isinstance(x, list) else x.decode() if isinstance(x, bytes) else x
print(json.dumps({k: plain(v.numpy().tolist()) for k, v in out.items()}))
"""


def query_saved_model(version_dir, texts) -> list[dict]:
    """Each text's answer from the SavedModel, asked in a bare TF process (as TF Serving would).

    The answers are shaped by the exported task (``Task.answers_from_serving``): classifiers give
    ``{'text', 'label', 'score'}``, token classifiers ``{'text', 'entities': [...]}`` or ``{'text', 'tags': [...]}``,
    question answering ``{'question', 'answer', 'start', 'end', 'score'}``. ``texts`` are strings,
    ``(text, text_pair)`` tuples or dicts keyed by the export's input names.
    """
    from kbert.tasks import get_task

    pairs = [t for t in texts if isinstance(t, tuple)]
    records = [t for t in texts if isinstance(t, dict)]
    if records:
        request = {key: [r[key] for r in records] for key in records[0]}
    elif pairs:
        request = {"text": [a for a, _ in pairs], "text_pair": [b for _, b in pairs]}
    else:
        request = {"text": list(texts)}
    done = subprocess.run([sys.executable, "-c", _QUERY, str(version_dir), json.dumps(request)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise KbertError(f"{version_dir}: the exported model failed to answer: {done.stderr.strip()[-500:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    metadata = json.loads((pathlib.Path(version_dir) / "assets.extra" / "kbert.json").read_text())
    return get_task(metadata["task"]).answers_from_serving(list(texts), out, metadata)


def _expand(value):
    if isinstance(value, str):
        return value.replace("{data}", str(data_folder())).replace("{repo}", str(REPO))
    return value

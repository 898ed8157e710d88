"""Figures of a run as PNG files, drawn with matplotlib's Agg renderer (no display, no pyplot).

* :func:`plot_history`: the training curves of a Keras-style history (``{"loss": [...],
  "val_loss": [...], ...}``), one panel per metric base name (:func:`panel_names`): ``loss`` with
  ``val_loss``, ``accuracy`` with ``val_accuracy``; a key without a partner (``learning_rate``, or
  ``val_x`` alone) gets a panel of its own. Train is drawn in :data:`TRAIN_COLOR`, val in
  :data:`VAL_COLOR`, against epochs ``1..len(series)``; NaN and infinite values are left out and break
  the line, a point with no finite neighbour keeps its marker, and a panel without any finite value
  says so.
* :func:`plot_confusion_matrix`: counts of (true label, predicted label) for classification, rows
  true, columns predicted, counted by scikit-learn's ``confusion_matrix``.
* :func:`plot_per_type_f1`: one horizontal bar per entity type with its F1 written on it and its
  support in the label, from the ``per_type`` table of :mod:`kbert.tasks.token_classification.entity_metrics`.

Each ``plot_*`` function validates its input (:class:`kbert.errors.InputError` naming what was
received), writes the PNG atomically (a temporary file in the same folder, then renamed, so a reader
never sees half a file; the folder must exist) and returns the path as a string. The matching
``*_figure`` functions return the :class:`matplotlib.figure.Figure` without writing it.

Figures are built as ``Figure`` objects on an Agg canvas, never through ``matplotlib.pyplot``: no
global figure registry, no backend switch (a notebook's own backend is left alone), safe to call from
several threads. Matplotlib (and scikit-learn) are imported on first use, so importing this module is
cheap.

Example:
    >>> import os, tempfile
    >>> from kbert.plots import figure_size, panel_names, plot_confusion_matrix, plot_history
    >>> history = {"loss": [0.9, 0.5, 0.4], "val_loss": [0.8, 0.6, 0.65],
    ...            "accuracy": [0.6, 0.8, 0.85], "val_accuracy": [0.62, 0.75, 0.74]}
    >>> panel_names(history), figure_size(panel_names(history), title="sst2")
    (['loss', 'accuracy'], (1200, 430))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     curves = plot_history(history, os.path.join(folder, "curves.png"), title="sst2")
    ...     matrix = plot_confusion_matrix([0, 1, 1], [0, 1, 0], ["negative", "positive"],
    ...                                    os.path.join(folder, "confusion_matrix.png"))
    ...     sorted(os.listdir(folder)), os.path.getsize(curves) > 0
    (['confusion_matrix.png', 'curves.png'], True)
"""

from __future__ import annotations

import math
import numbers
import os
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from kbert.atomic_files import write_with
from kbert.errors import InputError

if TYPE_CHECKING:  # matplotlib is imported on first use
    from matplotlib.figure import Figure

__all__ = [
    "DPI", "PANEL_HEIGHT", "PANEL_WIDTH", "TITLE_HEIGHT", "TRAIN_COLOR", "VAL_COLOR",
    "confusion_matrix_figure", "figure_size", "history_figure", "new_figure", "panel_names", "per_type_f1_figure",
    "plot_confusion_matrix", "plot_history", "plot_per_type_f1", "save_png",
]

DPI = 100
PANEL_WIDTH = 600          # pixels of one history panel
PANEL_HEIGHT = 380
TITLE_HEIGHT = 50          # pixels added on top for a figure title
MARKER_MAX_POINTS = 40     # longer series are drawn without a marker per epoch
TRAIN_COLOR = "#1f77b4"    # blue
VAL_COLOR = "#e66101"      # orange
BAR_COLOR = "#4c72b0"
MUTED_COLOR = "#6e6e6e"
CELL_TEXT_MAX_CLASSES = 40  # larger confusion matrices are drawn without a count in each cell

_MAX_PLOTTED = 1e200       # beyond this, matplotlib's margins and ticks overflow: plot value / 10**k
_TEXT = {"parse_math": False}  # labels come from data: "$" is a character, not TeX


# --- input -----------------------------------------------------------------------------------------
def _series(history: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    if not isinstance(history, Mapping):
        raise InputError(f"history must be a mapping of metric name -> values, got {type(history).__name__}")
    if not history:
        raise InputError("history is empty: nothing to plot")
    out = {}
    for key, values in history.items():
        if not isinstance(key, str) or not key:
            raise InputError(f"history keys must be non-empty strings, got {key!r}")
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise InputError(f"history[{key!r}]: values must be numbers ({err})") from None
        if array.ndim == 0:
            array = array.reshape(1)
        if array.ndim != 1:
            raise InputError(f"history[{key!r}]: expected a list of numbers, got shape {array.shape}")
        out[key] = array
    return out


def _base_name(key: str) -> str:
    return key[4:] if key.startswith("val_") and len(key) > 4 else key


def _label_ids(values, what: str, count: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise InputError(f"{what} must be a 1-D sequence of label ids, got shape {array.shape}")
    if array.size and not (array.dtype.kind in "iu" or (array.dtype.kind == "f" and
                                                        np.all(np.isfinite(array)) and
                                                        np.all(array == np.round(array)))):
        raise InputError(f"{what} must hold integer label ids, got {array.dtype} values such as "
                         f"{array.ravel()[0]!r}")
    array = array.astype(np.int64)
    bad = (array < 0) | (array >= count)
    if np.any(bad):
        raise InputError(f"{what} holds label id {int(array[bad][0])}, out of range for {count} names "
                         f"(ids are 0..{count - 1})")
    return array


def _names(names: Sequence[str]) -> list[str]:
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
        raise InputError(f"names must be a sequence of label names, got {type(names).__name__}")
    if not names:
        raise InputError("names is empty: a confusion matrix needs at least one label")
    return [str(name) for name in names]


def _per_type(per_type: Mapping[str, Mapping[str, float]]) -> list[tuple[str, float, int]]:
    if not isinstance(per_type, Mapping):
        raise InputError(f"per_type must be a mapping of entity type -> scores, got {type(per_type).__name__}")
    rows = []
    for name, scores in per_type.items():
        if not isinstance(scores, Mapping) or "f1" not in scores:
            raise InputError(f"per_type[{name!r}] must be a mapping with an 'f1' entry (and 'support'), "
                             f"got {scores!r}")
        f1 = scores["f1"]
        if isinstance(f1, bool) or not isinstance(f1, numbers.Real) or not 0.0 <= float(f1) <= 1.0:
            raise InputError(f"per_type[{name!r}]['f1'] must be a number in [0, 1], got {f1!r}")
        support = scores.get("support", 0)
        if isinstance(support, bool) or not isinstance(support, numbers.Integral) or support < 0:
            raise InputError(f"per_type[{name!r}]['support'] must be a count (int >= 0), got {support!r}")
        rows.append((str(name), float(f1), int(support)))
    return rows


# --- figures ---------------------------------------------------------------------------------------
def new_figure(width_px: float, height_px: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def panel_names(history: Mapping[str, Sequence[float]]) -> list[str]:
    """The panels :func:`plot_history` draws, in order: one per metric base name.

    >>> panel_names({"loss": [1], "accuracy": [0], "val_loss": [1], "val_accuracy": [0], "learning_rate": [1]})
    ['loss', 'accuracy', 'learning_rate']
    """
    names: list[str] = []
    for key in _series(history):
        if _base_name(key) not in names:
            names.append(_base_name(key))
    return names


def figure_size(panels: int | Sequence[str], title: str = "") -> tuple[int, int]:
    """``(width, height)`` in pixels of the history figure for ``panels`` panels (a count or names).

    One column for a single panel, two otherwise, and a strip on top for a title.

    >>> figure_size(1), figure_size(3), figure_size(3, title="run")
    ((600, 380), (1200, 760), (1200, 810))
    """
    count = panels if isinstance(panels, int) else len(panels)
    columns = 1 if count <= 1 else 2
    rows = max(1, math.ceil(count / columns))
    return PANEL_WIDTH * columns, PANEL_HEIGHT * rows + (TITLE_HEIGHT if title else 0)


def _draw_panel(ax, name: str, series: list[tuple[str, np.ndarray, str]]) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_title(_shorten(name, 70), **_TEXT)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, color="#e4e4e4", linewidth=0.8)
    ax.set_axisbelow(True)
    finite = np.concatenate([values[np.isfinite(values)] for _, values, _ in series])
    largest = float(np.max(np.abs(finite))) if finite.size else 0.0
    exponent = math.floor(math.log10(largest)) if largest > _MAX_PLOTTED else 0
    if exponent:
        ax.set_ylabel(f"value / 1e{exponent}")
    for label, values, color in series:
        shown = np.where(np.isfinite(values), values, np.nan) / 10.0 ** exponent
        ok = np.isfinite(shown)
        before = np.concatenate([[False], ok[:-1]])
        after = np.concatenate([ok[1:], [False]])
        isolated = ok & ~before & ~after
        marks = np.nonzero(ok if len(values) <= MARKER_MAX_POINTS else isolated)[0].tolist()
        ax.plot(np.arange(1, len(values) + 1), shown, color=color, label=label, linewidth=2,
                marker="o", markersize=4, markevery=marks)
    if max((len(values) for _, values, _ in series), default=0) <= 1:
        ax.set_xlim(0.5, 1.5)  # a single epoch: one tick, not a fractional range around it
        ax.set_xticks([1])
    if series:
        ax.legend(loc="best", fontsize="small")
    if not finite.size:
        ax.text(0.5, 0.5, "no finite values", transform=ax.transAxes, ha="center", va="center",
                color=MUTED_COLOR, **_TEXT)


def history_figure(history: Mapping[str, Sequence[float]], title: str = "") -> Figure:
    """The figure :func:`plot_history` writes: one axes per panel of :func:`panel_names`, in order.

    Each axes has the panel name as its title and one line per series present (``train`` and/or
    ``val``; an empty series is left out).

    >>> figure = history_figure({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "learning_rate": [2e-5, 1e-5]})
    >>> [ax.get_title() for ax in figure.axes], [len(ax.lines) for ax in figure.axes]
    (['loss', 'learning_rate'], [2, 1])
    """
    arrays = _series(history)
    names = panel_names(arrays)
    width, height = figure_size(names, title)
    figure = new_figure(width, height)
    if title:
        figure.suptitle(_shorten(title, 100), fontsize="x-large", **_TEXT)
    columns = 1 if len(names) == 1 else 2
    rows = math.ceil(len(names) / columns)
    for index, name in enumerate(names):
        series = [(label, arrays[key], color)
                  for label, key, color in (("train", name, TRAIN_COLOR), ("val", "val_" + name, VAL_COLOR))
                  if key in arrays and arrays[key].size]
        _draw_panel(figure.add_subplot(rows, columns, index + 1), name, series)
    return figure


def confusion_matrix_figure(y_true, y_pred, names: Sequence[str], title: str = "") -> Figure:
    """The figure :func:`plot_confusion_matrix` writes: one axes (the matrix) and its colour bar.

    >>> figure = confusion_matrix_figure([0, 0, 1, 2], [0, 1, 1, 2], ["a", "b", "c"])
    >>> [text.get_text() for text in figure.axes[0].texts]
    ['1', '1', '0', '0', '1', '0', '0', '0', '1']
    """
    from matplotlib.ticker import MaxNLocator
    from sklearn.metrics import confusion_matrix

    labels = _names(names)
    true = _label_ids(y_true, "y_true", len(labels))
    pred = _label_ids(y_pred, "y_pred", len(labels))
    if len(true) != len(pred):
        raise InputError(f"y_true and y_pred differ in length: {len(true)} true labels, {len(pred)} predictions")
    if not len(true):
        raise InputError("y_true and y_pred are empty: no examples to count")
    counts = confusion_matrix(true, pred, labels=list(range(len(labels))))
    n = len(labels)
    longest = max(len(label) for label in labels)
    side = min(2000.0, 260 + 42 * n + 7 * min(longest, 30))
    figure = new_figure(side + 100, side + (TITLE_HEIGHT if title else 0))
    ax = figure.add_subplot(1, 1, 1)
    image = ax.imshow(counts, cmap="Blues", vmin=0, interpolation="nearest")
    figure.colorbar(image, ax=ax, shrink=0.8, ticks=MaxNLocator(integer=True))
    ticks = list(range(n))
    short = [_shorten(label, 30) for label in labels]
    slanted = longest > 3 and n > 2  # long names side by side would overlap
    ax.set_xticks(ticks, short, rotation=45 if slanted else 0, ha="right" if slanted else "center",
                  rotation_mode="anchor", **_TEXT)
    ax.set_yticks(ticks, short, **_TEXT)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    if title:
        ax.set_title(_shorten(title, 100), **_TEXT)
    if n <= CELL_TEXT_MAX_CLASSES:
        threshold = counts.max() / 2
        size = "medium" if n <= 10 else "small" if n <= 20 else "x-small"
        for row in range(n):
            for column in range(n):
                value = int(counts[row, column])
                ax.text(column, row, str(value), ha="center", va="center", fontsize=size,
                        color="white" if value > threshold else "black")
    return figure


def per_type_f1_figure(per_type: Mapping[str, Mapping[str, float]], title: str = "") -> Figure:
    """The figure :func:`plot_per_type_f1` writes: one axes, one bar per type (top to bottom in order).

    >>> per_type = {"LOC": {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 2},
    ...             "PER": {"precision": 0.5, "recall": 1.0, "f1": 0.5, "support": 1}}
    >>> ax = per_type_f1_figure(per_type).axes[0]
    >>> [float(bar.get_width()) for bar in ax.patches], [label.get_text() for label in ax.get_yticklabels()]
    ([0.667, 0.5], ['LOC (n=2)', 'PER (n=1)'])
    """
    rows = _per_type(per_type)
    longest = max((len(name) for name, _, _ in rows), default=0)
    figure = new_figure(640 + 7 * min(longest, 40), 150 + 34 * max(len(rows), 3) + (30 if title else 0))
    ax = figure.add_subplot(1, 1, 1)
    if title:
        ax.set_title(_shorten(title, 100), **_TEXT)
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("F1")
    if not rows:
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no entities", transform=ax.transAxes, ha="center", va="center",
                color=MUTED_COLOR, fontsize="large", **_TEXT)
        return figure
    positions = list(range(len(rows)))
    bars = ax.barh(positions, [f1 for _, f1, _ in rows], color=BAR_COLOR, height=0.7)
    ax.set_yticks(positions, [f"{_shorten(name, 40)} (n={support})" for name, _, support in rows], **_TEXT)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first type on top
    ax.grid(True, axis="x", color="#e4e4e4", linewidth=0.8)
    ax.set_axisbelow(True)
    for bar, (_, f1, _) in zip(bars, rows):
        inside = f1 >= 0.15
        ax.text(f1 - 0.01 if inside else f1 + 0.01, bar.get_y() + bar.get_height() / 2, f"{f1:.3f}",
                ha="right" if inside else "left", va="center", fontsize="small",
                color="white" if inside else "black")
    return figure


# --- writing ---------------------------------------------------------------------------------------
def save_png(figure: Figure, path) -> str:
    """Write ``figure`` as a PNG at ``path`` atomically; the folder must exist. Returns ``path`` as str."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"{path}: folder {folder} does not exist")
    write_with(path, lambda file: figure.savefig(file, format="png", dpi=DPI))
    return path


def plot_history(history: Mapping[str, Sequence[float]], path, title: str = "") -> str:
    """Draw ``history`` (metric name -> per-epoch values) and write it as a PNG at ``path``.

    The size is :func:`figure_size` of the panels; see :func:`history_figure`. Returns ``path`` as a str.
    """
    return save_png(history_figure(history, title), path)


def plot_confusion_matrix(y_true, y_pred, names: Sequence[str], path, title: str = "") -> str:
    """Write the confusion matrix of integer label ids ``y_true`` / ``y_pred`` as a PNG at ``path``.

    ``names[i]`` labels id ``i``; rows are true labels, columns predictions, each cell its count (cells
    are left blank beyond :data:`CELL_TEXT_MAX_CLASSES` labels). Returns ``path`` as a str.
    """
    return save_png(confusion_matrix_figure(y_true, y_pred, names, title), path)


def plot_per_type_f1(per_type: Mapping[str, Mapping[str, float]], path, title: str = "") -> str:
    """Write a bar chart of F1 per entity type (``{"PER": {"f1": ..., "support": n, ...}, ...}``) at ``path``.

    Types keep the mapping's order, top to bottom; an empty mapping gives a figure saying "no
    entities". Returns ``path`` as a str.
    """
    return save_png(per_type_f1_figure(per_type, title), path)

"""Tests for kbert.plots: each PNG decodes at its size; the figures hold what the data says
(one axes per history panel with train/val lines in their colours, sklearn's counts in the confusion
matrix cells, F1 as bar widths); NaN, infinite, constant, one-epoch and extreme histories draw without
error or warning; bad input is an InputError naming it; writes are atomic."""

import os
import pathlib
import threading
import warnings

import numpy as np
import pytest
from matplotlib.colors import to_hex
from PIL import Image
from sklearn.metrics import confusion_matrix

from kbert.errors import InputError
from kbert import plots
from kbert.tasks.token_classification.entity_metrics import entity_scores
from kbert.plots import (MARKER_MAX_POINTS, PANEL_HEIGHT, PANEL_WIDTH, TITLE_HEIGHT, TRAIN_COLOR,
                                  VAL_COLOR, confusion_matrix_figure, figure_size, history_figure, panel_names,
                                  per_type_f1_figure, plot_confusion_matrix, plot_history, plot_per_type_f1)

NAN, INF = float("nan"), float("inf")


@pytest.fixture(autouse=True)
def _no_warnings():
    """Drawing must not warn (overflow in limits, layout that could not be applied, missing glyphs...)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _image(path) -> Image.Image:
    with Image.open(path) as img:
        img.load()
    assert img.format == "PNG"
    return img


def _history(epochs=6):
    x = np.arange(epochs, dtype=float)
    return {"loss": list(1.0 / (1 + x)), "accuracy": list(0.5 + 0.05 * x),
            "val_loss": list(1.2 / (1 + x) + 0.1), "val_accuracy": list(0.45 + 0.04 * x)}


def _lines(ax) -> dict[str, object]:
    return {line.get_label(): line for line in ax.lines}


def _texts(ax) -> list[str]:
    return [text.get_text() for text in ax.texts]


# --- training curves -------------------------------------------------------------------------------
def test_png_decodes_at_figure_size(tmp_path):
    path = tmp_path / "curves.png"
    returned = plot_history(_history(), path, title="sst2 run")
    assert returned == str(path) and isinstance(returned, str)
    img = _image(path)
    assert img.size == figure_size(2, title="sst2 run") == (2 * PANEL_WIDTH, PANEL_HEIGHT + TITLE_HEIGHT)
    assert img.mode in ("RGB", "RGBA")
    pixels = np.asarray(img.convert("RGB"))
    assert pixels.std() > 0                                   # not a blank canvas


@pytest.mark.parametrize("count, expected", [(1, (600, 380)), (2, (1200, 380)), (3, (1200, 760)),
                                             (4, (1200, 760)), (5, (1200, 1140))])
def test_figure_size_and_axes_per_panel(tmp_path, count, expected):
    assert figure_size(count) == expected
    assert figure_size(count, title="t") == (expected[0], expected[1] + TITLE_HEIGHT)
    history = {f"m{i}": [float(i), float(i) + 1] for i in range(count)}
    figure = history_figure(history)
    assert len(figure.axes) == count
    assert [ax.get_title() for ax in figure.axes] == [f"m{i}" for i in range(count)]
    assert _image(plot_history(history, tmp_path / "c.png")).size == expected


def test_panel_names_pair_train_and_val():
    history = {"loss": [1], "accuracy": [1], "val_loss": [1], "val_accuracy": [1], "learning_rate": [1],
               "val_auc": [1], "val_": [1]}
    assert panel_names(history) == ["loss", "accuracy", "learning_rate", "auc", "val_"]
    assert panel_names({"val_loss": [1], "loss": [1]}) == ["loss"]


def test_one_panel_per_metric_with_its_colours():
    history = {"loss": [0.9, 0.5, 0.3], "val_loss": [1.0, 0.7, 0.6], "learning_rate": [3e-5, 2e-5, 1e-5],
               "val_f1": [0.5, 0.6, 0.7]}
    figure = history_figure(history, title="run")
    assert figure.get_suptitle() == "run"
    loss, lr, f1 = figure.axes
    assert [ax.get_title() for ax in figure.axes] == ["loss", "learning_rate", "f1"]
    assert {k: to_hex(v.get_color()) for k, v in _lines(loss).items()} == {"train": TRAIN_COLOR, "val": VAL_COLOR}
    assert {k: to_hex(v.get_color()) for k, v in _lines(lr).items()} == {"train": TRAIN_COLOR}
    assert {k: to_hex(v.get_color()) for k, v in _lines(f1).items()} == {"val": VAL_COLOR}
    assert [t.get_text() for t in loss.get_legend().get_texts()] == ["train", "val"]
    assert [t.get_text() for t in f1.get_legend().get_texts()] == ["val"]
    assert all(ax.get_xlabel() == "epoch" for ax in figure.axes)


def test_train_and_val_colours_are_distinct_and_not_grey():
    assert TRAIN_COLOR != VAL_COLOR
    for color in (TRAIN_COLOR, VAL_COLOR):
        rgb = [int(color[i: i + 2], 16) for i in (1, 3, 5)]
        assert max(rgb) - min(rgb) > 100


def test_lines_hold_the_values_against_epochs():
    history = {"loss": [1.0, 0.8, 0.5, 0.1], "val_loss": [1.2, 0.9]}   # validation every other epoch
    lines = _lines(history_figure(history).axes[0])
    np.testing.assert_array_equal(lines["train"].get_xdata(), [1, 2, 3, 4])
    np.testing.assert_array_equal(lines["train"].get_ydata(), history["loss"])
    np.testing.assert_array_equal(lines["val"].get_xdata(), [1, 2])
    np.testing.assert_array_equal(lines["val"].get_ydata(), history["val_loss"])
    assert lines["train"].get_markevery() == [0, 1, 2, 3]          # a marker per epoch


def test_title_only_when_given():
    assert history_figure({"loss": [1.0, 0.5]}).get_suptitle() == ""
    assert history_figure({"loss": [1.0, 0.5]}, title="my run").get_suptitle() == "my run"


def test_nan_and_inf_values_are_skipped(tmp_path):
    history = {"loss": [1.0, NAN, 0.5, 0.4, INF, 0.2], "val_loss": [NAN, 0.9, NAN, 0.7, 0.6, -INF]}
    figure = history_figure(history)
    ax = figure.axes[0]
    lines = _lines(ax)
    train = np.asarray(lines["train"].get_ydata(), dtype=float)
    np.testing.assert_array_equal(np.isnan(train), [False, True, False, False, True, False])
    assert np.isnan(lines["val"].get_ydata()[-1])
    # the y range comes from the finite values (0.2 to 1.0), with a small margin only
    figure.canvas.draw()
    low, high = ax.get_ylim()
    assert 0.1 < low < 0.2 and 1.0 < high < 1.1
    # points with no finite neighbour keep a marker; the others too (short series)
    assert lines["train"].get_markevery() == [0, 2, 3, 5]
    assert _image(plot_history(history, tmp_path / "nan.png")).size == (PANEL_WIDTH, PANEL_HEIGHT)


def test_all_nan_series_and_empty_series(tmp_path):
    history = {"loss": [NAN, NAN, NAN], "val_loss": [NAN, NAN, NAN], "accuracy": [], "val_accuracy": [0.5]}
    loss, accuracy = history_figure(history).axes
    assert set(_lines(loss)) == {"train", "val"} and "no finite values" in _texts(loss)
    assert set(_lines(accuracy)) == {"val"} and _texts(accuracy) == []     # the empty train series is left out
    assert _image(plot_history(history, tmp_path / "allnan.png")).size == (2 * PANEL_WIDTH, PANEL_HEIGHT)


def test_single_epoch_draws_markers(tmp_path):
    lines = _lines(history_figure({"loss": [0.5], "val_loss": [0.6]}).axes[0])
    for line in lines.values():
        assert line.get_marker() == "o" and line.get_markevery() == [0]
        np.testing.assert_array_equal(line.get_xdata(), [1])
    ax = history_figure({"loss": [0.5], "val_loss": [0.6]}).axes[0]
    assert ax.get_xlim() == (0.5, 1.5) and list(ax.get_xticks()) == [1]     # epoch 1, centred
    plot_history({"loss": [0.5], "val_loss": [0.6]}, tmp_path / "one.png")


def test_long_series_mark_only_isolated_points():
    values = [NAN, 0.4, NAN, NAN, 0.5, 0.6, 0.7] + [0.1] * 60
    assert len(values) > MARKER_MAX_POINTS
    line = _lines(history_figure({"loss": values}).axes[0])["train"]
    assert line.get_markevery() == [1]


def test_constant_series(tmp_path):
    figure = history_figure({"loss": [0.5] * 5, "val_loss": [0.5] * 5})
    figure.canvas.draw()
    low, high = figure.axes[0].get_ylim()
    assert low < 0.5 < high
    plot_history({"x": [0.0, 0.0]}, tmp_path / "zero.png")


@pytest.mark.parametrize("values", [[1e308, -1e308, 0.0], [5e-324, 0.0], [1.0, 1.0 + 1e-15], [-3.0, -2.0],
                                    [1e-12, 2e-12], [-1e300, 1e300]])
def test_extreme_ranges_render(tmp_path, values):
    assert _image(plot_history({"loss": values}, tmp_path / "x.png")).size == (PANEL_WIDTH, PANEL_HEIGHT)


def test_huge_values_are_plotted_scaled():
    ax = history_figure({"loss": [1e308, -1e308, 0.0]}).axes[0]
    assert ax.get_ylabel() == "value / 1e308"
    np.testing.assert_allclose(_lines(ax)["train"].get_ydata(), [1.0, -1.0, 0.0])
    assert history_figure({"loss": [1.0, 2.0]}).axes[0].get_ylabel() == ""


def test_many_epochs_long_names_and_dollar_signs(tmp_path):
    long = "a_very_long_metric_name_that_cannot_fit_in_the_header_of_one_panel_at_all" * 2
    history = {long: list(np.linspace(1, 0, 500)), "val_" + long: list(np.linspace(1.1, 0.2, 500)),
               "$\\frac{": [1.0, 2.0]}                      # not TeX: drawn as written
    path = plot_history(history, tmp_path / "long.png", title="T" * 200 + "$x$")
    assert _image(path).size == (2 * PANEL_WIDTH, PANEL_HEIGHT + TITLE_HEIGHT)
    assert history_figure(history).axes[1].get_title() == "$\\frac{"


def test_history_values_may_be_numpy_or_tensors():
    tf = pytest.importorskip("tensorflow")
    history = {"loss": np.array([1.0, 0.5], dtype=np.float32), "val_loss": [np.float64(1.2), tf.constant(0.7)]}
    lines = _lines(history_figure(history).axes[0])
    np.testing.assert_allclose(lines["val"].get_ydata(), [1.2, 0.7], rtol=1e-6)


@pytest.mark.parametrize("history, message", [
    ({}, "history is empty"),
    ({"loss": ["high", "low"]}, r"history\['loss'\]: values must be numbers"),
    ({"loss": [[1.0, 2.0]]}, r"history\['loss'\]: expected a list of numbers, got shape \(1, 2\)"),
    ({"": [1.0]}, "keys must be non-empty strings, got ''"),
    ({3: [1.0]}, "keys must be non-empty strings, got 3"),
    ([("loss", [1.0])], "history must be a mapping .* got list"),
])
def test_bad_histories_raise(tmp_path, history, message):
    with pytest.raises(InputError, match=message):
        plot_history(history, tmp_path / "bad.png")
    assert not any(tmp_path.iterdir())


def test_missing_folder_raises(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        plot_history({"loss": [1.0]}, tmp_path / "nowhere" / "c.png")


def test_accepts_pathlike(tmp_path):
    path = pathlib.Path(tmp_path) / "p.png"
    assert plot_history({"loss": [1.0]}, path) == os.fspath(path)
    assert path.stat().st_size > 0


# --- atomic writes ---------------------------------------------------------------------------------
PER_TYPE = {"LOC": {"precision": 0.8, "recall": 0.9, "f1": 0.847, "support": 10},
            "PER": {"precision": 0.5, "recall": 0.25, "f1": 0.333, "support": 4}}

WRITERS = {
    "history": lambda path, n: plot_history({"loss": [3.0, 2.0, 1.0][:n]}, path),
    "confusion": lambda path, n: plot_confusion_matrix([0, 1, 1][:n], [1, 1, 0][:n], ["a", "b"], path),
    "per_type": lambda path, n: plot_per_type_f1(dict(list(PER_TYPE.items())[: n - 1]), path),
}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_write_is_atomic(tmp_path, monkeypatch, kind):
    write = WRITERS[kind]
    path = tmp_path / "figure.png"
    write(path, 2)
    first = path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png"]     # no temporary file left
    write(str(path), 3)                                                     # overwriting replaces the file whole
    second = path.read_bytes()
    assert second != first and _image(path).format == "PNG"

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(plots.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write(path, 1)
    assert path.read_bytes() == second                                      # old file untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png"]


def test_drawing_from_threads(tmp_path):
    errors = []

    def draw(i):
        try:
            plot_history({"loss": [1.0, 0.5, float(i)]}, tmp_path / f"{i}.png", title=str(i))
            plot_confusion_matrix([0, 1, i % 2], [1, 1, 0], ["a", "b"], tmp_path / f"cm{i}.png")
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(_image(p).size[0] > 0 for p in tmp_path.iterdir())
    assert len(list(tmp_path.iterdir())) == 8


# --- confusion matrix ------------------------------------------------------------------------------
def test_confusion_matrix_cells_are_sklearns_counts(tmp_path):
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, size=200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 4, size=200))
    names = ["negative", "neutral", "positive", "mixed"]
    figure = confusion_matrix_figure(y_true, y_pred, names, title="dev")
    ax = figure.axes[0]
    expected = confusion_matrix(y_true, y_pred, labels=[0, 1, 2, 3])
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text()) for t in ax.texts}
    assert cells == {(r, c): int(expected[r, c]) for r in range(4) for c in range(4)}
    np.testing.assert_array_equal(ax.images[0].get_array(), expected)
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("predicted label", "true label", "dev")
    path = plot_confusion_matrix(list(y_true), list(y_pred), names, tmp_path / "cm.png", title="dev")
    assert path == str(tmp_path / "cm.png")
    width, height = _image(path).size
    assert 300 <= width <= 2200 and 300 <= height <= 2200


def test_confusion_matrix_counts_labels_never_seen():
    # label 2 appears in neither list: it still gets its row and column of zeros
    ax = confusion_matrix_figure(np.array([0, 1]), np.array([1, 1]), ["a", "b", "c"]).axes[0]
    assert [t.get_text() for t in ax.texts] == ["0", "1", "0", "0", "1", "0", "0", "0", "0"]
    figure = confusion_matrix_figure([0.0, 1.0], [1.0, 1.0], ["a", "b"])      # integral floats are ids
    assert [t.get_text() for t in figure.axes[0].texts] == ["0", "1", "0", "1"]
    figure.canvas.draw()
    colorbar_ticks = figure.axes[1].get_yticks()                                # counts: whole numbers
    assert len(colorbar_ticks) and all(tick == round(tick) for tick in colorbar_ticks)


def test_large_confusion_matrix_leaves_cells_blank(tmp_path):
    n = plots.CELL_TEXT_MAX_CLASSES + 10
    y = np.arange(n).repeat(3)
    ax = confusion_matrix_figure(y, np.roll(y, 1), [f"class_{i}" for i in range(n)]).axes[0]
    assert len(ax.texts) == 0 and len(ax.get_xticklabels()) == n
    path = plot_confusion_matrix(y, np.roll(y, 1), [f"class_{i}" for i in range(n)], tmp_path / "big.png")
    assert max(_image(path).size) <= 2200


@pytest.mark.parametrize("y_true, y_pred, names, message", [
    ([0, 1, 1], [0, 1], ["a", "b"], "differ in length: 3 true labels, 2 predictions"),
    ([0, 3], [0, 1], ["a", "b"], r"y_true holds label id 3, out of range for 2 names \(ids are 0..1\)"),
    ([0, 1], [-1, 1], ["a", "b"], "y_pred holds label id -1, out of range"),
    ([0, 1], [0.5, 1.0], ["a", "b"], "y_pred must hold integer label ids, got float64"),
    (["a", "b"], [0, 1], ["a", "b"], "y_true must hold integer label ids"),
    ([[0, 1]], [[0, 1]], ["a", "b"], r"y_true must be a 1-D sequence of label ids, got shape \(1, 2\)"),
    ([], [], ["a", "b"], "empty: no examples"),
    ([0], [0], [], "names is empty"),
    ([0], [0], "ab", "names must be a sequence of label names, got str"),
])
def test_confusion_matrix_bad_input(tmp_path, y_true, y_pred, names, message):
    with pytest.raises(InputError, match=message):
        plot_confusion_matrix(y_true, y_pred, names, tmp_path / "cm.png")
    assert not any(tmp_path.iterdir())


# --- per-type F1 -----------------------------------------------------------------------------------
def test_per_type_bars_are_the_f1_values(tmp_path):
    y_true = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG"], ["B-LOC", "O", "B-MISC", "I-MISC"]]
    y_pred = [["B-PER", "I-PER", "O", "B-LOC", "O", "O"], ["B-ORG", "O", "B-MISC", "O"]]
    per_type = entity_scores(y_true, y_pred)["per_type"]
    figure = per_type_f1_figure(per_type, title="wnut17")
    ax = figure.axes[0]
    assert len(figure.axes) == 1 and ax.get_title() == "wnut17"
    assert [bar.get_width() for bar in ax.patches] == [s["f1"] for s in per_type.values()]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"{name} (n={s['support']})"
                                                          for name, s in per_type.items()]
    assert _texts(ax) == [f"{s['f1']:.3f}" for s in per_type.values()]
    centres = [bar.get_y() + bar.get_height() / 2 for bar in ax.patches]
    low, high = ax.get_ylim()
    assert high < centres[0] < centres[-1] < low                        # first type drawn on top
    assert ax.get_xlim() == (0.0, 1.0)
    path = plot_per_type_f1(per_type, tmp_path / "f1.png", title="wnut17")
    assert path == str(tmp_path / "f1.png")
    width, height = _image(path).size
    assert width >= 600 and height >= 200


def test_per_type_empty_is_a_figure_saying_so(tmp_path):
    ax = per_type_f1_figure({}).axes[0]
    assert len(ax.patches) == 0 and _texts(ax) == ["no entities"]
    assert _image(plot_per_type_f1({}, tmp_path / "none.png")).size[0] > 0


@pytest.mark.parametrize("per_type, message", [
    ([("PER", {"f1": 0.5})], "per_type must be a mapping .* got list"),
    ({"PER": 0.5}, r"per_type\['PER'\] must be a mapping with an 'f1' entry"),
    ({"PER": {"precision": 0.5}}, r"per_type\['PER'\] must be a mapping with an 'f1' entry"),
    ({"PER": {"f1": 1.5, "support": 1}}, r"per_type\['PER'\]\['f1'\] must be a number in \[0, 1\], got 1.5"),
    ({"PER": {"f1": NAN, "support": 1}}, r"\['f1'\] must be a number in \[0, 1\], got nan"),
    ({"PER": {"f1": "high", "support": 1}}, r"\['f1'\] must be a number in \[0, 1\], got 'high'"),
    ({"PER": {"f1": 0.5, "support": -1}}, r"\['support'\] must be a count \(int >= 0\), got -1"),
    ({"PER": {"f1": 0.5, "support": 2.5}}, r"\['support'\] must be a count"),
])
def test_per_type_bad_input(tmp_path, per_type, message):
    with pytest.raises(InputError, match=message):
        plot_per_type_f1(per_type, tmp_path / "f1.png")
    assert not any(tmp_path.iterdir())

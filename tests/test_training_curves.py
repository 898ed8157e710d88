"""Tests for kbert.training.curves: the PNG decodes at the documented size, has one panel per metric
with train and val colours where they belong, and survives NaN, infinite, constant and one-epoch
histories; the write is atomic."""

import math
import os
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from kbert.errors import InputError
from kbert.training import curves
from kbert.training.curves import (FONT, PANEL_HEIGHT, PANEL_WIDTH, TITLE_HEIGHT, TRAIN_COLOR, VAL_COLOR,
                                   figure_size, panel_names, plot_history, render_history, text_width)

NAN, INF = float("nan"), float("inf")
HEADER = 45   # panel rows taken by the name and legend; the axes box starts below


def _decode(path) -> np.ndarray:
    return tf.io.decode_png(tf.io.read_file(str(path)), channels=0).numpy()


def _has(pixels: np.ndarray, color) -> bool:
    return bool(np.any(np.all(pixels == np.array(color, dtype=np.uint8), axis=-1)))


def _count(pixels: np.ndarray, color) -> int:
    return int(np.sum(np.all(pixels == np.array(color, dtype=np.uint8), axis=-1)))


def _panel(img: np.ndarray, index: int, count: int, title: bool = False) -> np.ndarray:
    """Pixels of panel ``index`` (grid position as documented) below its header."""
    columns = 1 if count == 1 else 2
    row, column = divmod(index, columns)
    top = (TITLE_HEIGHT if title else 0) + row * PANEL_HEIGHT
    return img[top + HEADER: top + PANEL_HEIGHT, column * PANEL_WIDTH: (column + 1) * PANEL_WIDTH]


def _history(epochs=6):
    x = np.arange(epochs, dtype=float)
    return {"loss": list(1.0 / (1 + x)), "accuracy": list(0.5 + 0.05 * x),
            "val_loss": list(1.2 / (1 + x) + 0.1), "val_accuracy": list(0.45 + 0.04 * x)}


def test_png_decodes_at_documented_size(tmp_path):
    path = tmp_path / "curves.png"
    returned = plot_history(_history(), path, title="sst2 run")
    assert returned == str(path) and isinstance(returned, str)
    img = _decode(path)
    assert img.dtype == np.uint8 and img.shape == (PANEL_HEIGHT + TITLE_HEIGHT, 2 * PANEL_WIDTH, 3)
    assert figure_size(2, title="sst2 run") == (img.shape[1], img.shape[0])
    np.testing.assert_array_equal(img, render_history(_history(), title="sst2 run"))


@pytest.mark.parametrize("count, expected", [(1, (600, 380)), (2, (1200, 380)), (3, (1200, 760)),
                                             (4, (1200, 760)), (5, (1200, 1140))])
def test_figure_size(count, expected):
    assert figure_size(count) == expected
    assert figure_size(count, title="t") == (expected[0], expected[1] + TITLE_HEIGHT)
    history = {f"m{i}": [float(i), float(i) + 1] for i in range(count)}
    assert render_history(history).shape == (expected[1], expected[0], 3)


def test_panel_names_pair_train_and_val():
    history = {"loss": [1], "accuracy": [1], "val_loss": [1], "val_accuracy": [1], "learning_rate": [1],
               "val_auc": [1], "val_": [1]}
    assert panel_names(history) == ["loss", "accuracy", "learning_rate", "auc", "val_"]
    assert panel_names({"val_loss": [1], "loss": [1]}) == ["loss"]


def test_one_panel_per_metric_with_its_colours(tmp_path):
    history = {"loss": [0.9, 0.5, 0.3], "val_loss": [1.0, 0.7, 0.6], "learning_rate": [3e-5, 2e-5, 1e-5],
               "val_f1": [0.5, 0.6, 0.7]}
    img = _decode(plot_history(history, tmp_path / "c.png", title="run"))
    assert img.shape[:2] == (TITLE_HEIGHT + 2 * PANEL_HEIGHT, 2 * PANEL_WIDTH)
    loss, lr, f1, empty = (_panel(img, i, 4, title=True) for i in range(4))
    assert _has(loss, TRAIN_COLOR) and _has(loss, VAL_COLOR)
    assert _has(lr, TRAIN_COLOR) and not _has(lr, VAL_COLOR)
    assert _has(f1, VAL_COLOR) and not _has(f1, TRAIN_COLOR)
    assert not _has(empty, TRAIN_COLOR) and not _has(empty, VAL_COLOR)
    # the unused fourth grid cell is blank
    assert np.all(img[TITLE_HEIGHT + PANEL_HEIGHT:, PANEL_WIDTH:] == 255)


def test_curve_goes_where_the_values_go():
    img = render_history({"loss": [1.0, 0.8, 0.5, 0.1]})
    rows, cols = np.nonzero(np.all(_panel(img, 0, 1) == TRAIN_COLOR, axis=-1))
    left, right = rows[cols == cols.min()].mean(), rows[cols == cols.max()].mean()
    assert left < right          # falling loss: starts high (small row), ends low
    img = render_history({"accuracy": [0.1, 0.5, 0.9]})
    rows, cols = np.nonzero(np.all(_panel(img, 0, 1) == TRAIN_COLOR, axis=-1))
    assert rows[cols == cols.min()].mean() > rows[cols == cols.max()].mean()


def test_train_and_val_colours_are_distinct_and_not_grey():
    assert TRAIN_COLOR != VAL_COLOR
    for color in (TRAIN_COLOR, VAL_COLOR):
        assert max(color) - min(color) > 100


def test_title_is_drawn_only_when_given():
    with_title = render_history({"loss": [1.0, 0.5]}, title="my run")
    without = render_history({"loss": [1.0, 0.5]})
    assert with_title.shape[0] == without.shape[0] + TITLE_HEIGHT
    assert np.any(with_title[:TITLE_HEIGHT] != 255)
    np.testing.assert_array_equal(with_title[TITLE_HEIGHT:], without)


def test_nan_and_inf_values_are_skipped(tmp_path):
    history = {"loss": [1.0, NAN, 0.5, 0.4, INF, 0.2], "val_loss": [NAN, 0.9, NAN, 0.7, 0.6, -INF]}
    img = _decode(plot_history(history, tmp_path / "nan.png"))
    assert img.shape == (PANEL_HEIGHT, PANEL_WIDTH, 3)
    plot = _panel(img, 0, 1)
    assert _has(plot, TRAIN_COLOR) and _has(plot, VAL_COLOR)
    # the y range comes from the finite values only (0.2 to 1.0), so the train curve spans the plot
    rows = np.nonzero(np.all(plot == TRAIN_COLOR, axis=-1))[0]
    assert rows.max() - rows.min() > 200


def test_all_nan_series_and_empty_series(tmp_path):
    history = {"loss": [NAN, NAN, NAN], "val_loss": [NAN, NAN, NAN], "accuracy": [], "val_accuracy": [0.5]}
    img = _decode(plot_history(history, tmp_path / "allnan.png"))
    assert img.shape == (PANEL_HEIGHT, 2 * PANEL_WIDTH, 3)
    loss, accuracy = _panel(img, 0, 2), _panel(img, 1, 2)
    assert not _has(loss, TRAIN_COLOR) and not _has(loss, VAL_COLOR)
    assert _has(accuracy, VAL_COLOR) and not _has(accuracy, TRAIN_COLOR)


def test_single_epoch_draws_markers(tmp_path):
    img = _decode(plot_history({"loss": [0.5], "val_loss": [0.6]}, tmp_path / "one.png"))
    plot = _panel(img, 0, 1)
    for color in (TRAIN_COLOR, VAL_COLOR):
        rows, cols = np.nonzero(np.all(plot == color, axis=-1))
        assert 10 <= rows.size <= 200                         # a dot, not a line
        assert cols.max() - cols.min() <= 10 and rows.max() - rows.min() <= 10
        assert abs(cols.mean() - PANEL_WIDTH / 2) < 40        # in the middle of the x axis
    # val (0.6) is above train (0.5)
    val_rows = np.nonzero(np.all(plot == VAL_COLOR, axis=-1))[0]
    train_rows = np.nonzero(np.all(plot == TRAIN_COLOR, axis=-1))[0]
    assert val_rows.mean() < train_rows.mean()


def test_isolated_point_between_nans_gets_a_marker():
    img = render_history({"loss": [NAN, 0.4, NAN, NAN, 0.5, 0.6, 0.7] + [0.1] * 60})  # no markers past 40
    assert _has(_panel(img, 0, 1), TRAIN_COLOR)


def test_constant_series(tmp_path):
    img = _decode(plot_history({"loss": [0.5] * 5, "val_loss": [0.5] * 5}, tmp_path / "flat.png"))
    plot = _panel(img, 0, 1)
    rows = np.nonzero(np.all(plot == VAL_COLOR, axis=-1))[0]
    assert rows.max() - rows.min() <= 8                        # a flat line (markers included)
    assert _count(plot, VAL_COLOR) > 300
    img = render_history({"x": [0.0, 0.0]})
    assert _has(_panel(img, 0, 1), TRAIN_COLOR)


@pytest.mark.parametrize("values", [[1e308, -1e308, 0.0], [5e-324, 0.0], [1.0, 1.0 + 1e-15], [-3.0, -2.0],
                                    [1e-12, 2e-12]])
def test_extreme_ranges_render(values):
    img = render_history({"loss": values})
    assert _has(_panel(img, 0, 1), TRAIN_COLOR)


def test_many_epochs_and_long_names():
    long = "a_very_long_metric_name_that_cannot_fit_in_the_header_of_one_panel_at_all"
    history = {long: list(np.linspace(1, 0, 500)), "val_" + long: list(np.linspace(1.1, 0.2, 500))}
    img = render_history(history, title="T" * 200)
    assert img.shape == (PANEL_HEIGHT + TITLE_HEIGHT, PANEL_WIDTH, 3)
    assert _has(img, TRAIN_COLOR) and _has(img, VAL_COLOR)


def test_history_values_may_be_numpy_or_tensors():
    history = {"loss": np.array([1.0, 0.5], dtype=np.float32), "val_loss": [np.float64(1.2), tf.constant(0.7)]}
    assert render_history(history).shape == (PANEL_HEIGHT, PANEL_WIDTH, 3)


@pytest.mark.parametrize("history", [{}, {"loss": ["high", "low"]}, {"loss": [[1.0, 2.0]]}, {"": [1.0]},
                                     {3: [1.0]}, [("loss", [1.0])]])
def test_bad_histories_raise(tmp_path, history):
    with pytest.raises(InputError):
        plot_history(history, tmp_path / "bad.png")
    assert not any(tmp_path.iterdir())


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "curves.png"
    plot_history({"loss": [1.0, 0.5]}, path)
    first = path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png"]     # no temporary file left
    # overwriting replaces the file whole
    plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.9]}, str(path))
    assert path.read_bytes() != first and _decode(path).shape == (PANEL_HEIGHT, PANEL_WIDTH, 3)
    second = path.read_bytes()

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(curves.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        plot_history({"loss": [3.0, 2.0, 1.0]}, path)
    assert path.read_bytes() == second                                       # old file untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png"]


def test_missing_folder_raises(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        plot_history({"loss": [1.0]}, tmp_path / "nowhere" / "c.png")


def test_accepts_pathlike(tmp_path):
    path = pathlib.Path(tmp_path) / "p.png"
    assert plot_history({"loss": [1.0]}, path) == os.fspath(path)
    assert path.stat().st_size > 0


# --- font -----------------------------------------------------------------------------------------
def test_font_covers_required_characters():
    required = "abcdefghijklmnopqrstuvwxyz0123456789.-_ /"
    for char in required + required.upper() + "+e:()%=?,[]":
        assert char in FONT, char
        assert FONT[char].shape == (9, 5) and FONT[char].dtype == bool
    for char in required.replace(" ", ""):
        assert FONT[char].any(), f"glyph {char!r} is blank"
    # glyphs are distinct (no copy-paste slip), case aside
    bitmaps = {FONT[c].tobytes() for c in required}
    assert len(bitmaps) == len(required)


def test_text_rendering_and_unknown_characters():
    img = np.full((20, 80, 3), 255.0)
    curves._draw_text(img, "a1", 0, 0, (0, 0, 0), scale=1)
    ink = np.all(img == 0, axis=-1)
    np.testing.assert_array_equal(ink[:9, :5], FONT["a"])
    np.testing.assert_array_equal(ink[:9, 6:11], FONT["1"])
    assert not ink[:, 5].any() and not ink[9:].any()
    unknown = np.full((20, 80, 3), 255.0)
    curves._draw_text(unknown, "\u00e9", 0, 0, (0, 0, 0), scale=1)
    np.testing.assert_array_equal(np.all(unknown == 0, axis=-1)[:9, :5], FONT["?"])
    # clipped at the image edges without error
    curves._draw_text(img, "clipped", 70, 15, (0, 0, 0), scale=2)
    curves._draw_text(img, "clipped", -30, -5, (0, 0, 0), scale=2)
    assert text_width("") == 0 and text_width("ab", scale=3) == 33


def test_number_labels_distinguish_close_values():
    assert curves._format_number(0.69312, 0.69318) != curves._format_number(0.69318, 0.69312)
    assert curves._format_number(2e-5) == "2e-05"
    assert math.isfinite(float(curves._format_number(1.0 / 3.0)))

"""Training curves as a PNG, drawn in numpy (no matplotlib) and encoded with ``tf.io.encode_png``.

:func:`plot_history` takes a Keras-style history (``{"loss": [...], "val_loss": [...], ...}``) and
draws one panel per metric base name: ``loss`` with ``val_loss``, ``accuracy`` with
``val_accuracy``, and so on; a key without a partner (``learning_rate``, or ``val_x`` alone) gets a
panel of its own. Panels appear in the order their first key appears in the history, in a grid one
column wide for a single panel and two columns wide otherwise, under an optional title strip::

    width  = PANEL_WIDTH  * (1 if panels == 1 else 2)
    height = PANEL_HEIGHT * ceil(panels / columns) + (TITLE_HEIGHT if title else 0)

Each panel has its name, a legend (``train`` in :data:`TRAIN_COLOR`, ``val`` in :data:`VAL_COLOR`),
an axes box, the y range's minimum and maximum written at their heights, and the first and last
epoch under the x axis. Series are drawn as anti-aliased lines with a marker per epoch (markers are
left out past :data:`MARKER_MAX_POINTS` epochs; an isolated point gets a larger one). NaN and infinite
values are skipped and break the line; a one-epoch history shows one marker per series; a constant
series is a flat line across the middle of the panel. Series of different lengths (validation every
k epochs) are each plotted at epochs ``1..len(series)``.

Text uses a built-in 5x7 bitmap font (:data:`FONT`), drawn at 2x; characters it lacks print as ``?``.

Example:
    >>> import os, tempfile
    >>> from kbert.training.curves import figure_size, panel_names, plot_history
    >>> history = {"loss": [0.9, 0.5, 0.4], "val_loss": [0.8, 0.6, 0.65],
    ...            "accuracy": [0.6, 0.8, 0.85], "val_accuracy": [0.62, 0.75, 0.74]}
    >>> panel_names(history), figure_size(panel_names(history), title="sst2")
    (['loss', 'accuracy'], (1200, 432))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = plot_history(history, os.path.join(folder, "curves.png"), title="sst2")
    ...     os.path.basename(path), os.path.getsize(path) > 0
    ('curves.png', True)
"""

from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

import numpy as np

from kbert.atomic_files import write_bytes
from kbert.errors import InputError

__all__ = [
    "FONT", "PANEL_HEIGHT", "PANEL_WIDTH", "TITLE_HEIGHT", "TRAIN_COLOR", "VAL_COLOR",
    "figure_size", "panel_names", "plot_history", "render_history", "text_width",
]

PANEL_WIDTH = 600
PANEL_HEIGHT = 380
TITLE_HEIGHT = 52
MARKER_MAX_POINTS = 40

BACKGROUND = (255, 255, 255)
FRAME_COLOR = (70, 70, 70)
GRID_COLOR = (228, 228, 228)
TEXT_COLOR = (30, 30, 30)
MUTED_TEXT = (110, 110, 110)
TRAIN_COLOR = (31, 119, 180)   # blue
VAL_COLOR = (230, 97, 1)       # orange

_SCALE = 2                     # font pixels per glyph pixel
_TITLE_SCALE = 3
_PAD = 14                      # panel edge to content
_INSET = 10                    # axes box to the data extremes
_LINE_WIDTH = 2.2
_MARKER_RADIUS = 3.0
_ISOLATED_RADIUS = 4.5         # a point with no finite neighbour (one epoch, NaN on both sides)

# --- font ----------------------------------------------------------------------------------------
# 5 columns; rows 0-6 sit on the baseline (row 6), two more rows hold descenders (g j p q y , _).
_GLYPHS = """
a .....|.....|.###.|....#|.####|#...#|.####
b #....|#....|####.|#...#|#...#|#...#|####.
c .....|.....|.####|#....|#....|#....|.####
d ....#|....#|.####|#...#|#...#|#...#|.####
e .....|.....|.###.|#...#|#####|#....|.###.
f ..##.|.#..#|.#...|###..|.#...|.#...|.#...
g .....|.....|.####|#...#|#...#|#...#|.####|....#|.###.
h #....|#....|#.##.|##..#|#...#|#...#|#...#
i ..#..|.....|.##..|..#..|..#..|..#..|.###.
j ...#.|.....|..##.|...#.|...#.|...#.|...#.|#..#.|.##..
k #....|#....|#..#.|#.#..|##...|#.#..|#..#.
l .##..|..#..|..#..|..#..|..#..|..#..|.###.
m .....|.....|##.#.|#.#.#|#.#.#|#.#.#|#.#.#
n .....|.....|#.##.|##..#|#...#|#...#|#...#
o .....|.....|.###.|#...#|#...#|#...#|.###.
p .....|.....|####.|#...#|#...#|#...#|####.|#....|#....
q .....|.....|.####|#...#|#...#|#...#|.####|....#|....#
r .....|.....|#.##.|##..#|#....|#....|#....
s .....|.....|.####|#....|.###.|....#|####.
t .#...|.#...|###..|.#...|.#...|.#..#|..##.
u .....|.....|#...#|#...#|#...#|#..##|.##.#
v .....|.....|#...#|#...#|#...#|.#.#.|..#..
w .....|.....|#...#|#...#|#.#.#|#.#.#|.#.#.
x .....|.....|#...#|.#.#.|..#..|.#.#.|#...#
y .....|.....|#...#|#...#|#...#|#...#|.####|....#|.###.
z .....|.....|#####|...#.|..#..|.#...|#####
A .###.|#...#|#...#|#####|#...#|#...#|#...#
B ####.|#...#|#...#|####.|#...#|#...#|####.
C .###.|#...#|#....|#....|#....|#...#|.###.
D ###..|#..#.|#...#|#...#|#...#|#..#.|###..
E #####|#....|#....|####.|#....|#....|#####
F #####|#....|#....|####.|#....|#....|#....
G .###.|#...#|#....|#.###|#...#|#...#|.####
H #...#|#...#|#...#|#####|#...#|#...#|#...#
I .###.|..#..|..#..|..#..|..#..|..#..|.###.
J ..###|...#.|...#.|...#.|...#.|#..#.|.##..
K #...#|#..#.|#.#..|##...|#.#..|#..#.|#...#
L #....|#....|#....|#....|#....|#....|#####
M #...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#
N #...#|#...#|##..#|#.#.#|#..##|#...#|#...#
O .###.|#...#|#...#|#...#|#...#|#...#|.###.
P ####.|#...#|#...#|####.|#....|#....|#....
Q .###.|#...#|#...#|#...#|#.#.#|#..#.|.##.#
R ####.|#...#|#...#|####.|#.#..|#..#.|#...#
S .####|#....|#....|.###.|....#|....#|####.
T #####|..#..|..#..|..#..|..#..|..#..|..#..
U #...#|#...#|#...#|#...#|#...#|#...#|.###.
V #...#|#...#|#...#|#...#|#...#|.#.#.|..#..
W #...#|#...#|#...#|#.#.#|#.#.#|#.#.#|.#.#.
X #...#|#...#|.#.#.|..#..|.#.#.|#...#|#...#
Y #...#|#...#|.#.#.|..#..|..#..|..#..|..#..
Z #####|....#|...#.|..#..|.#...|#....|#####
0 .###.|#...#|#..##|#.#.#|##..#|#...#|.###.
1 ..#..|.##..|..#..|..#..|..#..|..#..|.###.
2 .###.|#...#|....#|...#.|..#..|.#...|#####
3 #####|...#.|..#..|...#.|....#|#...#|.###.
4 ...#.|..##.|.#.#.|#..#.|#####|...#.|...#.
5 #####|#....|####.|....#|....#|#...#|.###.
6 ..##.|.#...|#....|####.|#...#|#...#|.###.
7 #####|....#|...#.|..#..|.#...|.#...|.#...
8 .###.|#...#|#...#|.###.|#...#|#...#|.###.
9 .###.|#...#|#...#|.####|....#|...#.|.##..
. .....|.....|.....|.....|.....|.##..|.##..
, .....|.....|.....|.....|.....|.##..|.##..|..#..|.#...
- .....|.....|.....|.###.|.....|.....|.....
_ .....|.....|.....|.....|.....|.....|.....|#####
/ .....|....#|...#.|..#..|.#...|#....|.....
: .....|.##..|.##..|.....|.##..|.##..|.....
( ...#.|..#..|.#...|.#...|.#...|..#..|...#.
) .#...|..#..|...#.|...#.|...#.|..#..|.#...
[ .###.|.#...|.#...|.#...|.#...|.#...|.###.
] .###.|...#.|...#.|...#.|...#.|...#.|.###.
+ .....|..#..|..#..|#####|..#..|..#..|.....
= .....|.....|#####|.....|#####|.....|.....
% ##...|##..#|...#.|..#..|.#...|#..##|...##
* .....|..#..|#.#.#|.###.|#.#.#|..#..|.....
# .#.#.|.#.#.|#####|.#.#.|#####|.#.#.|.#.#.
' ..#..|..#..|.#...|.....|.....|.....|.....
? .###.|#...#|....#|...#.|..#..|.....|..#..
"""

_GLYPH_ROWS = 9


def _parse_font(table: str) -> dict[str, np.ndarray]:
    font = {" ": np.zeros((_GLYPH_ROWS, 5), dtype=bool)}
    for line in table.strip("\n").splitlines():
        char, rows = line[0], line[2:].split("|")
        bitmap = np.zeros((_GLYPH_ROWS, 5), dtype=bool)
        bitmap[: len(rows)] = [[c == "#" for c in row] for row in rows]
        font[char] = bitmap
    return font


FONT: dict[str, np.ndarray] = _parse_font(_GLYPHS)
"""Character -> ``(9, 5)`` bool bitmap: rows 0-6 above and on the baseline, rows 7-8 descenders."""


def text_width(text: str, scale: int = _SCALE) -> int:
    """Width in pixels of ``text`` drawn at ``scale`` (5 pixels a glyph, 1 between glyphs).

    >>> text_width("loss"), text_width("loss", scale=1)
    (46, 23)
    """
    return max(0, len(text) * 6 - 1) * scale


def _fit(text: str, width: int, scale: int = _SCALE) -> str:
    """``text`` cut to at most ``width`` pixels, ending in ``..`` when cut."""
    if text_width(text, scale) <= width:
        return text
    keep = max(0, (width // scale + 1) // 6 - 2)
    return text[:keep] + ".."


def _draw_text(img: np.ndarray, text: str, x: int, y: int, color, scale: int = _SCALE) -> None:
    """Draw ``text`` with its top-left corner (top of a capital) at ``(x, y)``; clipped to ``img``."""
    height, width = img.shape[:2]
    for i, char in enumerate(text):
        glyph = FONT.get(char, FONT["?"])
        big = np.repeat(np.repeat(glyph, scale, axis=0), scale, axis=1)
        gx = x + i * 6 * scale
        x0, y0 = max(gx, 0), max(y, 0)
        x1, y1 = min(gx + big.shape[1], width), min(y + big.shape[0], height)
        if x0 >= x1 or y0 >= y1:
            continue
        region = big[y0 - y: y1 - y, x0 - gx: x1 - gx]
        img[y0:y1, x0:x1][region] = color


# --- anti-aliased strokes ------------------------------------------------------------------------
def _stroke(coverage: np.ndarray, x0: float, y0: float, x1: float, y1: float, half_width: float) -> None:
    """Raise ``coverage`` (max-composite) under a round-capped segment; pixel centres at integers."""
    height, width = coverage.shape
    reach = half_width + 1.0
    cx0 = max(int(math.floor(min(x0, x1) - reach)), 0)
    cx1 = min(int(math.ceil(max(x0, x1) + reach)), width - 1)
    cy0 = max(int(math.floor(min(y0, y1) - reach)), 0)
    cy1 = min(int(math.ceil(max(y0, y1) + reach)), height - 1)
    if cx0 > cx1 or cy0 > cy1:
        return
    ys, xs = np.mgrid[cy0: cy1 + 1, cx0: cx1 + 1].astype(np.float64)
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0.0, 1.0) if length2 > 0 else 0.0
    distance = np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy))
    alpha = np.clip(half_width + 0.5 - distance, 0.0, 1.0)
    region = coverage[cy0: cy1 + 1, cx0: cx1 + 1]
    np.maximum(region, alpha, out=region)


def _composite(img: np.ndarray, coverage: np.ndarray, color) -> None:
    alpha = coverage[..., None]
    img[:] = img * (1.0 - alpha) + np.asarray(color, dtype=np.float64) * alpha


# --- layout --------------------------------------------------------------------------------------
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
    """``(width, height)`` in pixels of the figure for ``panels`` panels (a count or a list of names).

    >>> figure_size(1), figure_size(3), figure_size(3, title="run")
    ((600, 380), (1200, 760), (1200, 812))
    """
    count = panels if isinstance(panels, int) else len(panels)
    columns = 1 if count <= 1 else 2
    rows = max(1, math.ceil(count / columns))
    return PANEL_WIDTH * columns, PANEL_HEIGHT * rows + (TITLE_HEIGHT if title else 0)


def _format_number(value: float, other: float | None = None) -> str:
    """``%.4g``, with more digits when that would print ``value`` and ``other`` the same."""
    for digits in range(4, 12):
        text = f"{value:.{digits}g}"
        if other is None or text != f"{other:.{digits}g}":
            return text
    return f"{value:.12g}"


def _draw_panel(img: np.ndarray, name: str, series: list[tuple[str, np.ndarray, tuple]]) -> None:
    """Draw one panel filling ``img`` (a view of the figure): name, legend, box, labels, curves."""
    height, width = img.shape[:2]
    glyph_h = 7 * _SCALE
    # Header: the name on the left, the legend on the right.
    legend = [(label, color) for label, _, color in series]
    swatch = 22
    legend_width = sum(swatch + 6 + text_width(label) + 16 for label, _ in legend) - 16
    name_room = width - 2 * _PAD - legend_width - 20
    _draw_text(img, _fit(name, name_room), _PAD, _PAD, TEXT_COLOR)
    x = width - _PAD - legend_width
    for label, color in legend:
        mid = _PAD + glyph_h / 2 - 0.5
        coverage = np.zeros((height, width))
        _stroke(coverage, x + 1, mid, x + swatch - 2, mid, _LINE_WIDTH / 2)
        _stroke(coverage, x + swatch / 2 - 0.5, mid, x + swatch / 2 - 0.5, mid, _MARKER_RADIUS)
        _composite(img, coverage, color)
        _draw_text(img, label, x + swatch + 6, _PAD, TEXT_COLOR)
        x += swatch + 6 + text_width(label) + 16

    finite = [v[np.isfinite(v)] for _, v, _ in series]
    finite_all = np.concatenate(finite) if finite else np.zeros(0)
    epochs = max((len(v) for _, v, _ in series), default=0)

    # Y range: the finite data's min and max; their labels decide the left margin.
    lo, hi = (float(finite_all.min()), float(finite_all.max())) if finite_all.size else (0.0, 0.0)
    half_span = hi * 0.5 - lo * 0.5   # halves: hi - lo itself may overflow for huge values
    if not finite_all.size:
        labels = []
    elif half_span > 0:
        labels = [_format_number(hi, lo), _format_number(lo, hi)]
    else:
        labels = [_format_number(lo)]
    label_width = max((text_width(label) for label in labels), default=0)
    box_left = _PAD + label_width + 8
    box_right = width - _PAD - 1
    box_top = _PAD + glyph_h + 14
    box_bottom = height - _PAD - 2 * glyph_h - 14
    data_left, data_right = box_left + _INSET, box_right - _INSET
    data_top, data_bottom = box_top + _INSET, box_bottom - _INSET

    def x_of(index: int) -> float:
        if epochs <= 1:
            return (data_left + data_right) / 2
        return data_left + index * (data_right - data_left) / (epochs - 1)

    def y_of(value: float) -> float:
        if not half_span > 0:
            return (data_top + data_bottom) / 2
        return data_bottom - (value * 0.5 - lo * 0.5) / half_span * (data_bottom - data_top)

    # Grid lines and y labels at the data's minimum and maximum.
    label_rows = [y_of(hi), y_of(lo)] if half_span > 0 else [y_of(lo)]
    for label, row in zip(labels, label_rows):
        r = int(round(row))
        img[r, box_left + 1: box_right] = GRID_COLOR
        top = int(round(row - glyph_h / 2 + 0.5))
        _draw_text(img, label, box_left - 6 - text_width(label), top, MUTED_TEXT)

    # Axes box.
    img[box_top, box_left: box_right + 1] = FRAME_COLOR
    img[box_bottom, box_left: box_right + 1] = FRAME_COLOR
    img[box_top: box_bottom + 1, box_left] = FRAME_COLOR
    img[box_top: box_bottom + 1, box_right] = FRAME_COLOR

    # X labels: first and last epoch under their positions, "epoch" centred below.
    label_top = box_bottom + 6
    for index in sorted({0, max(epochs - 1, 0)}):
        text = str(index + 1)
        cx = x_of(index)
        left = min(int(round(cx - text_width(text) / 2)), width - 2 - text_width(text))   # stay inside
        _draw_text(img, text, max(left, 2), label_top, MUTED_TEXT)
        img[box_bottom + 1: box_bottom + 4, int(round(cx))] = FRAME_COLOR
    caption = "epoch"
    _draw_text(img, caption, (box_left + box_right - text_width(caption)) // 2, label_top + glyph_h + 6,
               MUTED_TEXT)

    if not finite_all.size:
        message = "no finite values"
        _draw_text(img, message, (box_left + box_right - text_width(message)) // 2,
                   (box_top + box_bottom - glyph_h) // 2, MUTED_TEXT)
        return

    # Curves: segments between consecutive finite points, markers on the points.
    for _, values, color in series:
        coverage = np.zeros((height, width))
        ok = np.isfinite(values)
        points = [(x_of(i), y_of(v)) if good else None for i, (v, good) in enumerate(zip(values, ok))]
        for i in range(len(points) - 1):
            if points[i] is not None and points[i + 1] is not None:
                _stroke(coverage, *points[i], *points[i + 1], _LINE_WIDTH / 2)
        for i, point in enumerate(points):
            if point is None:
                continue
            isolated = (i == 0 or points[i - 1] is None) and (i == len(points) - 1 or points[i + 1] is None)
            if isolated:
                _stroke(coverage, *point, *point, _ISOLATED_RADIUS)
            elif len(values) <= MARKER_MAX_POINTS:
                _stroke(coverage, *point, *point, _MARKER_RADIUS)
        _composite(img, coverage, color)


def render_history(history: Mapping[str, Sequence[float]], title: str = "") -> np.ndarray:
    """The figure :func:`plot_history` writes, as a ``(height, width, 3)`` uint8 RGB array.

    >>> render_history({"loss": [1.0, 0.5]}).shape
    (380, 600, 3)
    """
    arrays = _series(history)
    names = panel_names(arrays)
    width, height = figure_size(names, title)
    img = np.empty((height, width, 3), dtype=np.float64)
    img[:] = BACKGROUND
    top = 0
    if title:
        text = _fit(title, width - 2 * _PAD, _TITLE_SCALE)
        _draw_text(img, text, (width - text_width(text, _TITLE_SCALE)) // 2,
                   (TITLE_HEIGHT - 7 * _TITLE_SCALE) // 2, TEXT_COLOR, _TITLE_SCALE)
        top = TITLE_HEIGHT
    columns = 1 if len(names) == 1 else 2
    for index, name in enumerate(names):
        series = []
        if name in arrays:
            series.append(("train", arrays[name], TRAIN_COLOR))
        if "val_" + name in arrays:
            series.append(("val", arrays["val_" + name], VAL_COLOR))
        row, column = divmod(index, columns)
        y0, x0 = top + row * PANEL_HEIGHT, column * PANEL_WIDTH
        _draw_panel(img[y0: y0 + PANEL_HEIGHT, x0: x0 + PANEL_WIDTH], name, series)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def plot_history(history: Mapping[str, Sequence[float]], path, title: str = "") -> str:
    """Draw ``history`` (metric name -> per-epoch values) and write it as a PNG at ``path``.

    The file is written atomically (a temporary file in the same folder, then renamed), so a reader
    never sees half a PNG; the folder must exist. Returns ``path`` as a string.
    """
    import tensorflow as tf  # deferred: the drawing itself is numpy only

    pixels = render_history(history, title)
    data = tf.io.encode_png(pixels).numpy()
    path = os.fspath(path)
    folder, base = os.path.split(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"{path}: folder {folder} does not exist")
    write_bytes(path, data)
    return path

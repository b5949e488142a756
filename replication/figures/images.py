"""Labelled tables of images: the progression (report Figure 1), test results (paper Figure 4), comparisons.

Every figure here is one or more `Table`s side by side, laid out in pixels so
that each image is drawn pixel for pixel: small images are enlarged by a whole
factor with nearest-neighbour, never blurred.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

import numpy as np

from replication.errors import FigureInputError
from replication.figures.samples import enlarge
from replication.figures.style import ARROWS, DPI, new_figure, readable_points
from replication.pixels import to_uint8

SMALLEST_CELL = 128  # px: images smaller than this are enlarged (64x64 samples twice)
GAP = 4  # px between images
FONT = 9  # pt, at least; more when the figure is wider than the README shows it
TABLE_SPACE = 36  # px between tables


@dataclass
class Table:
    """Rows x columns of uint8 HxWx3 images (None leaves a cell blank), with a title and row/column labels."""

    title: str
    row_labels: list[str]
    column_labels: list[str]
    cells: list[list[np.ndarray | None]]


def enlargement(tables: list[Table]) -> int:
    """The whole factor that brings the largest image to at least SMALLEST_CELL pixels."""
    side = max(max(cell.shape[:2]) for table in tables for row in table.cells for cell in row if cell is not None)
    return max(1, SMALLEST_CELL // side)


@dataclass
class Layout:
    """Where everything of `draw_tables` goes, in px, for one font size."""

    font: float
    cell_w: int
    cell_h: int
    title: str
    headers: list
    label_ws: list
    table_title_y: float  # where each table's title starts
    top: int  # where the images start
    width: int
    height: int


def layout(tables: list[Table], title: str, cell_w: int, cell_h: int, font: float, width: int = 0) -> Layout:
    char = font * DPI / 72 * 0.6  # px per character, about
    line = font * DPI / 72 * 1.4
    wrap = max(6, int(cell_w / char))
    headers = [[textwrap.wrap(label, wrap) or [""] for label in table.column_labels] for table in tables]
    header_h = max((len(lines) for table in headers for lines in table), default=0) * line
    label_ws = [math.ceil(max((len(label) for label in table.row_labels), default=0) * char + 12) for table in tables]
    tables_w = sum(w + len(t.cells[0]) * (cell_w + GAP) for w, t in zip(label_ws, tables)) + TABLE_SPACE * (len(tables) - 1) + 12
    width = max(width, tables_w)
    title = "\n".join(textwrap.fill(part, max(20, int((width - 20) / char))) for part in title.splitlines())
    table_title_y = 6 + (title.count("\n") + 1) * line * 1.15 + 8
    table_title_h = line * 1.3 if any(table.title for table in tables) else 0
    top = math.ceil(table_title_y + table_title_h + header_h + 4)
    height = top + max(len(table.cells) for table in tables) * (cell_h + GAP) + 8
    return Layout(font, cell_w, cell_h, title, headers, label_ws, table_title_y, top, int(width), int(height))


def readable_layout(tables: list[Table], title: str, cell_w: int, cell_h: int) -> Layout:
    """The layout whose text is as tall as the README's once the figure is shown at the README's width."""
    found = layout(tables, title, cell_w, cell_h, FONT)
    for _ in range(8):  # a larger font widens the labels, which asks for a larger font: a few rounds settle it
        font = max(FONT, math.ceil(readable_points(found.width) * 10) / 10)
        if font <= found.font:
            return found
        found = layout(tables, title, cell_w, cell_h, font, found.width)
    return found


def draw_tables(tables: list[Table], title: str):
    """The tables side by side under `title`, each image at a whole multiple of its own size."""
    factor = enlargement(tables)
    images = [cell for table in tables for row in table.cells for cell in row if cell is not None]
    cell_h = max(image.shape[0] for image in images) * factor
    cell_w = max(image.shape[1] for image in images) * factor
    at = readable_layout(tables, title, cell_w, cell_h)
    width, height, font = at.width, at.height, at.font
    fig = new_figure(width / DPI, height / DPI)
    fig.text(0.5, 1 - 6 / height, at.title, ha="center", va="top", fontsize=font)
    x = 6
    for table, label_w, lines in zip(tables, at.label_ws, at.headers):
        fig.text(x / width, 1 - at.table_title_y / height, table.title, ha="left", va="top", fontsize=font, fontweight="bold")
        for c, label in enumerate(lines):
            centre = x + label_w + c * (cell_w + GAP) + cell_w / 2
            fig.text(centre / width, 1 - (at.top - 3) / height, "\n".join(label), ha="center", va="bottom", fontsize=font)
        for r, row in enumerate(table.cells):
            y = at.top + r * (cell_h + GAP)
            if r < len(table.row_labels):
                fig.text((x + label_w - 8) / width, 1 - (y + cell_h / 2) / height, table.row_labels[r], ha="right", va="center", fontsize=font)
            for c, image in enumerate(row):
                if image is None:
                    continue
                left = x + label_w + c * (cell_w + GAP)
                ax = fig.add_axes((left / width, 1 - (y + cell_h) / height, cell_w / width, cell_h / height))
                ax.imshow(enlarge(image, factor), interpolation="nearest")
                ax.set_axis_off()
        x += label_w + len(table.cells[0]) * (cell_w + GAP) + TABLE_SPACE
    return fig


PAPER_EPOCHS = (1, 25, 75, 100, 200)  # the replication report's Figure 1
SPREAD = 5


def choose_epochs(available, asked=None) -> list[int]:
    """The epochs the progression shows.

    Asked epochs must exist. By default the report's epochs 1, 25, 75, 100, 200
    that the run has, with its latest added; a run with fewer than three of them
    gets an even spread of five of its epochs, always the first and the latest.
    """
    available = sorted(available)
    if asked:
        missing = [e for e in asked if e not in available]
        if missing:
            raise FigureInputError(
                f"no samples for epoch {', '.join(map(str, missing))}; this run has epochs {span(available)}."
            )
        return sorted(set(asked))
    chosen = [e for e in PAPER_EPOCHS if e in available]
    if len(chosen) >= 3:
        return sorted(set(chosen) | {available[-1]})
    picks = np.linspace(0, len(available) - 1, min(SPREAD, len(available)))
    return sorted({available[int(round(i))] for i in picks})


def span(epochs: list[int]) -> str:
    """`1-8` for a contiguous run of epochs, else the list."""
    if epochs and epochs == list(range(epochs[0], epochs[-1] + 1)):
        return f"{epochs[0]}-{epochs[-1]}" if len(epochs) > 1 else str(epochs[0])
    return ", ".join(map(str, epochs))


def progression_tables(samples: dict[int, dict], sample_rows: dict, captions: dict) -> list[Table]:
    """Per direction: the fixed inputs on top, then the translation at each epoch (one row per epoch)."""
    latest = samples[max(samples)]
    tables = []
    for direction, (source, translation, *_) in sample_rows.items():
        count = min(len(arrays[translation]) for arrays in samples.values())
        rows = [list(to_uint8(latest[source][:count]))]
        rows += [list(to_uint8(samples[epoch][translation][:count])) for epoch in sorted(samples)]
        labels = [captions[source]] + [f"epoch {epoch}" for epoch in sorted(samples)]
        tables.append(Table(f"{ARROWS.get(direction, direction)}: {captions[translation]}", labels, [], rows))
    return tables


def result_tables(results: dict, sample_rows: dict, captions: dict) -> list[Table]:
    """Per direction: one row per test image (named), one column per sample image of the model's row,
    and the ground truth's column where the images have one.

    results: {direction: [(image name, {sample name: uint8 image}), ...]}.
    """
    tables = []
    for direction, rows in results.items():
        present = rows[0][1] if rows else {}
        names = [name for name in sample_rows[direction] if not rows or name in present]  # a one-way run has no cycle
        names += [name for name in present if name not in names]  # the truth
        cells = [[images[name] for name in names] for _, images in rows]
        tables.append(Table(ARROWS.get(direction, direction), [label for label, _ in rows], [captions[n] for n in names], cells))
    return tables


def comparison_tables(inputs: dict, translations: dict, columns: dict, input_captions: dict) -> list[Table]:
    """Per direction: the test input, then each run's translation of it (and its truth), under `columns`.

    inputs: {direction: [(image name, uint8 image)]}; translations: {direction: [[image per column] per input]};
    columns: {direction: [label per column]}.
    """
    tables = []
    for direction, rows in inputs.items():
        cells = [[image, *outputs] for (_, image), outputs in zip(rows, translations[direction])]
        tables.append(Table(ARROWS.get(direction, direction), [name for name, _ in rows], [input_captions[direction], *columns[direction]], cells))
    return tables

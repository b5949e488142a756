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
from replication.figures.samples import to_uint8
from replication.figures.style import ARROWS, DPI, new_figure

SMALLEST_CELL = 128  # px: images smaller than this are enlarged (64x64 samples twice)
GAP = 4  # px between images
FONT = 9  # pt
CHAR = FONT * DPI / 72 * 0.6  # px per character, about
LINE = FONT * DPI / 72 * 1.4  # px per line of text
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


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def draw_tables(tables: list[Table], title: str):
    """The tables side by side under `title`, each image at a whole multiple of its own size."""
    factor = enlargement(tables)
    images = [cell for table in tables for row in table.cells for cell in row if cell is not None]
    cell_h = max(image.shape[0] for image in images) * factor
    cell_w = max(image.shape[1] for image in images) * factor
    wrap = max(8, int(cell_w / CHAR))
    headers = [[textwrap.wrap(label, wrap) or [""] for label in table.column_labels] for table in tables]
    header_h = max((len(lines) for table in headers for lines in table), default=0) * LINE
    title_h = (title.count("\n") + 1) * LINE * 1.25
    table_title_y = 6 + title_h + 8  # px from the top, where each table's title starts
    header_y = table_title_y + LINE * 1.3
    top = math.ceil(header_y + header_h + 4)  # where the images start
    label_ws = [math.ceil(max((len(label) for label in table.row_labels), default=0) * CHAR + 12) for table in tables]
    widths = [label_w + len(table.cells[0]) * (cell_w + GAP) for label_w, table in zip(label_ws, tables)]
    width = sum(widths) + TABLE_SPACE * (len(tables) - 1) + 12
    height = top + max(len(table.cells) for table in tables) * (cell_h + GAP) + 8
    width = max(width, int(len(title.splitlines()[0]) * CHAR * 1.25) + 20)

    fig = new_figure(width / DPI, height / DPI)
    fig.text(0.5, 1 - 6 / height, title, ha="center", va="top", fontsize=FONT + 2)
    x = 6
    for table, label_w, lines in zip(tables, label_ws, headers):
        fig.text(x / width, 1 - table_title_y / height, table.title, ha="left", va="top", fontsize=FONT + 1, fontweight="bold")
        for c, label in enumerate(lines):
            centre = x + label_w + c * (cell_w + GAP) + cell_w / 2
            fig.text(centre / width, 1 - (top - 3) / height, "\n".join(label), ha="center", va="bottom", fontsize=FONT)
        for r, row in enumerate(table.cells):
            y = top + r * (cell_h + GAP)
            if r < len(table.row_labels):
                fig.text((x + label_w - 8) / width, 1 - (y + cell_h / 2) / height, table.row_labels[r], ha="right", va="center", fontsize=FONT)
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
    """Per direction: one row per test image (named), one column per sample image of the model's row.

    results: {direction: [(image name, {sample name: uint8 image}), ...]}.
    """
    tables = []
    for direction, rows in results.items():
        names = sample_rows[direction]
        cells = [[images[name] for name in names] for _, images in rows]
        tables.append(Table(ARROWS.get(direction, direction), [label for label, _ in rows], [captions[n] for n in names], cells))
    return tables


def comparison_tables(inputs: dict, translations: dict, labels: list[str], input_captions: dict) -> list[Table]:
    """Per direction: the test input, then each run's translation of it, under the run's label.

    inputs: {direction: [(image name, uint8 image)]}; translations: {direction: [[image per run] per input]}.
    """
    tables = []
    for direction, rows in inputs.items():
        cells = [[image, *outputs] for (_, image), outputs in zip(rows, translations[direction])]
        tables.append(Table(ARROWS.get(direction, direction), [name for name, _ in rows], [input_captions[direction], *labels], cells))
    return tables

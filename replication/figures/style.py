"""What every figure shares: the Agg canvas, resolution, one colour per direction, text a reader can
read where the README shows the figure, PNG + PDF written atomically."""

from __future__ import annotations

import io
from contextlib import contextmanager
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from replication.files import atomic_write_bytes

DPI = 150
ARROWS = {"AtoB": "A→B", "BtoA": "B→A"}
COLOURS = {"AtoB": "tab:blue", "BtoA": "tab:orange"}
FORMATS = ("png", "pdf")
README_WIDTH = 880  # px: how wide GitHub shows a figure in the README
README_TEXT = 16  # px: the README's own text


def colour(direction: str) -> str:
    return COLOURS.get(direction, "tab:green")


def shown_px(points: float, width_px: float) -> float:
    """How tall text of `points` looks in a figure `width_px` wide, shown at most README_WIDTH wide."""
    return points * DPI / 72 * min(1.0, README_WIDTH / width_px)


def readable_points(width_px: float) -> float:
    """The smallest font size (pt) that looks as tall as the README's text in a figure `width_px` wide."""
    return README_TEXT / shown_px(1.0, width_px)


@contextmanager
def readable_text(width_in: float):
    """Every text drawn inside is one size, as tall as the README's text once the figure is shown in it."""
    size = round(readable_points(width_in * DPI) + 0.05, 1)
    keys = ("font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize", "ytick.labelsize", "legend.fontsize", "figure.titlesize")
    with matplotlib.rc_context({key: size for key in keys}):
        yield size


def new_figure(width: float, height: float, layout=None) -> Figure:
    """A figure on matplotlib's Agg canvas (no display, no pyplot state); size in inches at DPI."""
    return Figure(figsize=(width, height), dpi=DPI, layout=layout)


def save_figure(fig: Figure, stem: Path) -> list[Path]:
    """`stem`.png and `stem`.pdf, each written atomically; the PDF carries no date, so redraws compare equal."""
    paths = []
    for fmt in FORMATS:
        buffer = io.BytesIO()
        metadata = {"CreationDate": None} if fmt == "pdf" else {}
        fig.savefig(buffer, format=fmt, dpi=DPI, facecolor="white", metadata=metadata)
        path = Path(stem).with_suffix(f".{fmt}")
        atomic_write_bytes(path, buffer.getvalue())
        paths.append(path)
    return paths

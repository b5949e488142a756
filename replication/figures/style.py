"""What every figure shares: the Agg canvas, resolution, one colour per direction, PNG + PDF written atomically."""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.figure import Figure

from replication.io import atomic_write_bytes

DPI = 150
ARROWS = {"AtoB": "A→B", "BtoA": "B→A"}
COLOURS = {"AtoB": "tab:blue", "BtoA": "tab:orange"}
FORMATS = ("png", "pdf")


def colour(direction: str) -> str:
    return COLOURS.get(direction, "tab:green")


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

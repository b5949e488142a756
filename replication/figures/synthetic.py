"""The README's picture of the synthetic dataset (`data synthetic --figure PNG`)."""

from __future__ import annotations

import io
from pathlib import Path

from replication.data.synthetic import make_scene, render
from replication.figures.images import Table, draw_tables
from replication.figures.style import DPI
from replication.files import atomic_write_bytes


def draw_pairs(path, seed: int = 0, size: int = 64, n: int = 6) -> Path:
    """A picture of n test scenes of each domain above their ground truth (for the README), pixel for pixel."""
    rows = [("testA/ (A, input)", "testA", "A"), ("testA_truth/ (its B)", "testA", "B"),
            ("testB/ (B, input)", "testB", "B"), ("testB_truth/ (its A)", "testB", "A")]
    cells = [[render(make_scene(seed, split, i, size), domain) for i in range(n)] for _, split, domain in rows]
    table = Table("", [label for label, _, _ in rows], [f"{i:04d}" for i in range(n)], cells)
    title = f"Synthetic dataset (seed {seed}, {size}x{size}): test images a_NNNN, b_NNNN above their ground truth"
    buf = io.BytesIO()
    draw_tables([table], title).savefig(buf, format="png", dpi=DPI, facecolor="white")
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path

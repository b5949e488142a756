"""Pictures of a run: per-epoch sample grids (and, later, loss curves and progressions)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from replication.io import atomic_write_bytes


def to_uint8(images) -> np.ndarray:
    """[-1, 1] floats to 0..255 bytes."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def grid(images: dict) -> np.ndarray:
    """One row per named batch (real_A, fake_B, ...), one column per sample image."""
    rows = [np.concatenate(list(to_uint8(batch)), axis=1) for batch in images.values()]
    return np.concatenate(rows, axis=0)


def save_png(array: np.ndarray, path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def save_samples(images: dict, stem: Path) -> None:
    """`stem`.png, a grid to look at, and `stem`.npz, the raw float outputs by name."""
    stem = Path(stem)
    arrays = {name: np.asarray(batch, dtype=np.float32) for name, batch in images.items()}
    save_png(grid(arrays), stem.with_suffix(".png"))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(stem.with_suffix(".npz"), buffer.getvalue())

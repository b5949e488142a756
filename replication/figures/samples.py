"""The per-epoch sample grid the training loop writes: samples/epoch_NNN.png and .npz."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from replication.errors import FigureInputError
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


def save_samples(images: dict, stem: Path) -> np.ndarray:
    """`stem`.png, a grid to look at, and `stem`.npz, the raw float outputs by name; returns the grid."""
    stem = Path(stem)
    arrays = {name: np.asarray(batch, dtype=np.float32) for name, batch in images.items()}
    picture = grid(arrays)
    save_png(picture, stem.with_suffix(".png"))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(stem.with_suffix(".npz"), buffer.getvalue())
    return picture


def sample_epochs(folder: Path) -> dict[int, Path]:
    """{epoch: samples/epoch_NNN.npz} for every epoch the loop has written so far."""
    found = {}
    for path in sorted(Path(folder).glob("epoch_*.npz")):
        number = path.stem.removeprefix("epoch_")
        if number.isdigit():
            found[int(number)] = path
    return found


def read_samples(path: Path) -> dict[str, np.ndarray]:
    """The named float arrays of one epoch's `.npz`; FigureInputError when the file cannot be read."""
    try:
        with np.load(path) as npz:
            return {name: npz[name] for name in npz.files}
    except Exception as err:  # zipfile, pickle and OS errors all mean the same here
        raise FigureInputError(f"{path} could not be read ({type(err).__name__}: {err}); it is left out.") from None

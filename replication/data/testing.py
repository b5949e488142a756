"""Tiny datasets for tests: images whose pixels say where they came from.

`index_image(i)` is a solid image whose red value is 10 * i, so a test can
read back which file the pipeline picked. `gradient_image(h, w)` has red = 8x
and green = 8y (x, y the column and row), so a crop's offset and a flip can
be read from its pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def save(path, arr: np.ndarray, **kwargs) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(path, **kwargs)
    return path


def index_image(i: int, size: int = 8, channel: int = 0) -> np.ndarray:
    arr = np.full((size, size, 3), 5, np.uint8)
    arr[..., channel] = 10 * i
    return arr


def gradient_image(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([8 * x, 8 * y, np.full_like(x, 40)], axis=-1).astype(np.uint8)


def write_unpaired(root, counts=(5, 3, 2, 2), size=8, indexed=True) -> Path:
    """ROOT/trainA trainB testA testB with counts images each; A encodes its index in red, B in green."""
    root = Path(root)
    for split, n in zip(("trainA", "trainB", "testA", "testB"), counts):
        channel = 0 if split.endswith("A") else 1
        for i in range(n):
            arr = index_image(i, size, channel) if indexed else np.random.default_rng(i).integers(0, 256, (size, size, 3))
            save(root / split / f"{i:03d}.png", arr)
    return root


def read_index(batch, channel: int = 0) -> list[int]:
    """Indices encoded by `index_image` in a float [-1, 1] batch (N, H, W, 3)."""
    values = (np.asarray(batch)[:, 0, 0, channel] + 1.0) * 127.5
    return [int(round(v / 10.0)) for v in values]

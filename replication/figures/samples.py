"""The per-epoch sample grid the training loop writes: samples/epoch_NNN.png (labelled) and .npz."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from replication.errors import FigureInputError
from replication.files import atomic_write_bytes
from replication.pixels import to_uint8


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    """Each pixel a factor x factor block (nearest neighbour: never blurred)."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


SMALLEST = 128  # px: smaller sample images are enlarged (nearest neighbour) to at least this
TEXT = 16  # px: the labels' font size, as the README's text
GAP = 2  # px of white between images


def labelled_grid(images: dict, captions: dict, title: str) -> np.ndarray:
    """The grid with a caption left of each row (input A, G(A), ...), a number over each column, a title on top.

    Drawn with PIL's own font (no matplotlib in the training loop); each image enlarged by a whole factor.
    """
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default(size=TEXT)
    batches = [to_uint8(batch) for batch in images.values()]
    h, w = batches[0].shape[1:3]
    factor = max(1, SMALLEST // max(h, w))
    labels = [captions.get(name, name) for name in images]
    label_w = max(int(font.getlength(label)) for label in labels) + 12
    top = 2 * (TEXT + 8)
    columns = batches[0].shape[0]
    width = max(label_w + columns * (w * factor + GAP), int(font.getlength(title)) + 12)
    canvas = Image.new("RGB", (width, top + len(batches) * (h * factor + GAP)), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((6, 4), title, fill="black", font=font)
    for c in range(columns):
        draw.text((label_w + c * (w * factor + GAP) + w * factor // 2, top - 4), f"sample {c + 1}", fill="black", font=font, anchor="mb")
    for r, (label, batch) in enumerate(zip(labels, batches)):
        y = top + r * (h * factor + GAP)
        draw.text((label_w - 8, y + h * factor // 2), label, fill="black", font=font, anchor="rm")
        for c, image in enumerate(batch):
            canvas.paste(Image.fromarray(enlarge(image, factor)), (label_w + c * (w * factor + GAP), y))
    return np.asarray(canvas)


def save_png(array: np.ndarray, path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def save_samples(images: dict, stem: Path, captions: dict | None = None, title: str = "") -> np.ndarray:
    """`stem`.png, a labelled grid to look at, and `stem`.npz, the raw float outputs by name; returns the grid."""
    stem = Path(stem)
    arrays = {name: np.asarray(batch, dtype=np.float32) for name, batch in images.items()}
    picture = labelled_grid(arrays, captions or {}, title or stem.name)
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

"""Image files: listing a folder, decoding to 8-bit RGB, and the sets a split is made of.

Every image decodes to the pixels Pillow gives, converted to 8-bit RGB the way
the reference code does (`Image.open(path).convert('RGB')`), except that 16-bit
images are scaled (v / 257) instead of clipped, and that an image with an EXIF
orientation (a phone photo taken sideways) is turned the way every viewer shows
it (`upright_size` is that size, from the header). JPEG and 8-bit PNG files
without an orientation to apply are decoded by TensorFlow's own decoders, which give exactly Pillow's pixels
for them (JPEG with libjpeg's accurate integer IDCT, as Pillow; tested) and, in
the tf.data pipeline, run outside Python's GIL; Pillow decodes the rest
(BMP, WebP, TIFF, 16-bit grayscale PNG). Each image is decoded by the same
decoder everywhere: in the bad-image scan, in training and at test time.

An `ImageSet` is one split: sorted names and a way to decode image i. A
`HalfSet` is the left or right half of each image of an ImageSet (the
side-by-side files of pix2pix). `scan` decodes a list of images once and says
what it found; `ImageSet.validate` and `data check` both use it.
"""

from __future__ import annotations

import concurrent.futures
import io
import os
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from replication.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
EXTENSIONS_TEXT = " ".join(IMAGE_EXTENSIONS)  # for messages


# --------------------------------------------------------------------------- listing


def is_image_name(name: str) -> bool:
    base = os.path.basename(name)
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


@dataclass
class Listing:
    """What is under a folder, as paths relative to it, sorted."""

    images: list
    ignored: list  # files without an image extension
    repeated: list  # folder links that lead to a folder already listed or one holding it (a loop, or a second way in): not followed


def _plain_folders(folder: Path) -> set:
    """The folders below `folder` reached without going through a link, as os.walk spells their paths."""
    plain = set()
    for dirpath, dirnames, _ in os.walk(folder):
        plain.update(p for p in (os.path.join(dirpath, d) for d in dirnames) if not os.path.islink(p))
    return plain


def list_images(folder) -> Listing:
    """The images under `folder`, recursively: links are followed, but no real folder is read twice.

    A folder reached by its plain path is read there; a link is followed only
    to a folder not read yet and not holding `folder` (so `loop -> .` adds nothing,
    `up -> ..` reads neither the other splits nor the test split; both are reported).
    """
    folder = Path(folder)
    plain = _plain_folders(folder)
    top = os.path.realpath(folder)
    seen = {top} | {os.path.realpath(p) for p in plain}
    images, ignored, repeated = [], [], []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        follow = []
        for d in sorted(d for d in dirnames if not d.startswith(".")):
            path = os.path.join(dirpath, d)
            real = os.path.realpath(path)
            if path in plain:
                follow.append(d)
            elif real in seen or top.startswith(os.path.join(real, "")):
                repeated.append(Path(path).relative_to(folder).as_posix())
            else:
                seen.add(real)
                follow.append(d)
        dirnames[:] = follow
        for fname in filenames:
            rel = Path(dirpath, fname).relative_to(folder).as_posix()
            (images if is_image_name(fname) else ignored).append(rel)
    return Listing(sorted(images), sorted(ignored), sorted(repeated))


# --------------------------------------------------------------------------- decoding

# TensorFlow decodes these (format, Pillow mode) pairs to exactly Pillow's RGB (tests/test_data_transforms.py).
TF_DECODERS = {
    "JPEG": ("jpeg", frozenset({"RGB", "L", "CMYK"})),
    "PNG": ("png", frozenset({"RGB", "RGBA", "L", "LA", "P", "1"})),
}
DECODERS = (None, "jpeg", "png")  # None: Pillow; the index is the branch of the pipeline's decoder switch


EXIF_ORIENTATION = 0x0112  # the EXIF tag: 1 as stored; 2-8 mirrored and/or turned by a multiple of 90 degrees
SIDEWAYS = (5, 6, 7, 8)  # the orientations that swap width and height


def orientation(img) -> int:
    """The EXIF orientation (1-8) of an open Pillow image; 1 (as stored) without one, or with a damaged one."""
    try:
        value = int(img.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a damaged EXIF block: show the image as stored, as viewers do
        return 1
    return value if 1 <= value <= 8 else 1


def upright_size(img) -> tuple[int, int]:
    """(height, width) of an open Pillow image as viewers show it (its EXIF orientation applied), from its header."""
    width, height = img.size
    return (width, height) if orientation(img) in SIDEWAYS else (height, width)


def tf_decoder(image_format: str | None, mode: str) -> str | None:
    """"jpeg" or "png" where TensorFlow's decoder gives Pillow's pixels for this file, else None (Pillow)."""
    decoder, modes = TF_DECODERS.get(image_format, (None, frozenset()))
    return decoder if mode in modes else None


def tf_decode(blob, decoder: str):
    """An encoded JPEG or PNG (bytes or a string tensor) as a uint8 HxWx3 tensor, as Pillow decodes it."""
    import tensorflow as tf

    if decoder == "jpeg":
        # libjpeg's accurate integer IDCT and smooth chroma upsampling: Pillow's defaults
        return tf.io.decode_jpeg(blob, channels=3, dct_method="INTEGER_ACCURATE", fancy_upscaling=True)
    return tf.io.decode_png(blob, channels=3)


def to_rgb8(img) -> np.ndarray:
    """A Pillow image as uint8 HxWx3 RGB."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grayscale (Pillow opens 16-bit PNGs as I;16 or I): scale, do not clip.
        arr = np.asarray(img).astype(np.float64)
        arr = np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if mode == "F":
        arr = np.clip(np.round(np.asarray(img, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def decode_with_mode(source) -> tuple[np.ndarray, str, str | None]:
    """(uint8 HxWx3 RGB, the file's Pillow mode, its decoder: "jpeg", "png" or None for Pillow) of a
    file path or encoded bytes. Raises whatever the decoder raises."""
    blob = bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # decompression-bomb and EXIF warnings
        img = Image.open(io.BytesIO(blob))  # reads the header only
        try:
            mode, turn = img.mode, orientation(img) != 1
            decoder = None if turn else tf_decoder(img.format, img.mode)  # TensorFlow's decoders ignore EXIF
            if decoder:
                return tf_decode(blob, decoder).numpy(), mode, decoder
            img.load()
            return to_rgb8(ImageOps.exif_transpose(img) if turn else img), mode, None
        finally:
            img.close()


def decode(source) -> np.ndarray:
    """Decode a file path or encoded bytes to uint8 HxWx3 RGB. Raises whatever the decoder raises."""
    return decode_with_mode(source)[0]


def encoded_extension(blob: bytes) -> str:
    if blob[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if blob[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if blob[:2] == b"BM":
        return ".bmp"
    if blob[:4] == b"RIFF" and blob[8:12] == b"WEBP":
        return ".webp"
    return ".png"


@dataclass
class Decoded:
    """What decoding one image found: its size, Pillow mode and decoder, or why it failed."""

    size: tuple | None  # (h, w)
    mode: str | None
    error: str | None  # "ErrorType: message"
    image: np.ndarray | None = None  # kept only when asked
    decoder: str | None = None  # "jpeg", "png" (TensorFlow's) or None (Pillow)


def decoder_error_text(err: Exception) -> str:
    """What a decoder said, on one line; TensorFlow's errors without the name of the op's graph node."""
    text = re.sub(r"^\{\{[^}]*\}\}\s*", "", str(getattr(err, "message", None) or err).strip())
    return re.sub(r"\s*\[Op:\w+\].*$", "", text.splitlines()[0] if text else "")


def scan(items, keep: bool = False) -> list[Decoded]:
    """Decode every item (file path or encoded bytes) once, in threads."""

    def one(item) -> Decoded:
        try:
            arr, mode, decoder = decode_with_mode(item)
        except Exception as err:  # noqa: BLE001 - any decoder failure means "bad file"
            return Decoded(None, None, f"{type(err).__name__}: {decoder_error_text(err)}")
        return Decoded(arr.shape[:2], mode, None, arr if keep else None, decoder)

    workers = min(8, (os.cpu_count() or 1) + 1)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, items))


# --------------------------------------------------------------------------- sets


@dataclass
class ImageSet:
    """One split: images in a fixed order, each decoded on demand (or kept, with cache)."""

    where: str  # shown in messages: a folder path or "TFDS cycle_gan/x split trainA"
    names: list  # relative names, sorted (folders) or in TFDS order
    items: list  # file paths or encoded bytes, aligned with names
    sizes: list = field(default_factory=list)  # (h, w) per image, filled by validate()
    skipped: list = field(default_factory=list)  # names left out by validate(skip_bad=True)
    decoders: list = field(default_factory=list)  # per image "jpeg", "png" or None (Pillow), filled by validate()
    _cache: list | None = None

    @property
    def cached(self) -> bool:
        """The decoded images are kept in memory (data.cache)."""
        return self._cache is not None

    def __len__(self) -> int:
        return len(self.names)

    def load(self, i: int) -> np.ndarray:
        if self._cache is not None:
            return self._cache[i]
        return decode(self.items[i])

    def validate(self, skip_bad: bool, keep: bool, label: str = "") -> "ImageSet":
        """Decode every image once; list the ones that fail; remember sizes (and images if `keep`)."""
        results = scan(self.items, keep)
        bad = [(n, r.error) for n, r in zip(self.names, results) if r.error]
        prefix = f"{label}/" if label else ""
        if bad and not skip_bad:
            listed = "\n".join(f"  {prefix}{n}: {e[:120]}" for n, e in bad[:20])
            more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
            raise DataError(
                f"{len(bad)} file(s) in {self.where} have an image extension but cannot be decoded:\n"
                f"{listed}{more}\nRemove or fix them, or set data.skip_bad_images: true to leave them out."
            )
        good = [i for i, r in enumerate(results) if not r.error]
        self.skipped = [f"{prefix}{n}" for n, _ in bad]
        self.names = [self.names[i] for i in good]
        self.items = [self.items[i] for i in good]
        self.sizes = [tuple(results[i].size) for i in good]
        self.decoders = [results[i].decoder for i in good]
        self._cache = [results[i].image for i in good] if keep else None
        return self

    def listing(self) -> dict:
        """{name: [bytes, modification time in whole seconds]} of each image (bytes alone for images
        held in memory, TFDS): what a resumed run compares with the files it trained on."""
        if all(isinstance(item, str) for item in self.items):
            stats = [os.stat(item) for item in self.items]
            return {n: [st.st_size, int(st.st_mtime)] for n, st in zip(self.names, stats)}
        return {n: [len(item)] for n, item in zip(self.names, self.items)}

    def subset(self, indices) -> "ImageSet":
        indices = list(indices)
        return ImageSet(
            where=self.where,
            names=[self.names[i] for i in indices],
            items=[self.items[i] for i in indices],
            sizes=[self.sizes[i] for i in indices] if self.sizes else [],
            decoders=[self.decoders[i] for i in indices] if self.decoders else [],
            _cache=[self._cache[i] for i in indices] if self._cache is not None else None,
        )


@dataclass
class HalfSet:
    """The left or right half of each side-by-side image of `base` (pix2pix files)."""

    base: ImageSet
    side: str  # "left" | "right"

    @property
    def where(self):
        return f"{self.base.where} ({self.side} halves)"

    @property
    def names(self):
        return self.base.names

    @property
    def sizes(self):
        return [(h, w // 2) for h, w in self.base.sizes]

    def __len__(self):
        return len(self.base)

    def load(self, i: int) -> np.ndarray:
        img = self.base.load(i)
        half = img.shape[1] // 2
        return img[:, :half] if self.side == "left" else img[:, half : 2 * half]


def halves(base: ImageSet, direction: str) -> tuple[HalfSet, HalfSet]:
    """(A, B) of side-by-side images: AtoB takes the left half as A, BtoA the right."""
    left, right = HalfSet(base, "left"), HalfSet(base, "right")
    return (left, right) if direction == "AtoB" else (right, left)


def validate(sets, labels, skip_bad: bool, keep: bool) -> list:
    """Validate each set (see ImageSet.validate); the names left out, over all of them."""
    skipped = []
    for s, label in zip(sets, labels):
        s.validate(skip_bad, keep, label)
        skipped += s.skipped
        if len(s) == 0:
            raise DataError(f"Every image in {s.where} failed to decode; nothing is left to train on.")
    return skipped


def split_names(folder: Path) -> list:
    """The images of one split folder; the folder links left unread (see list_images) are named on stderr."""
    listing = list_images(folder)
    if listing.repeated:
        print(
            f"note: {folder}: {len(listing.repeated)} folder link(s) not followed, as they lead back to a folder "
            f"already read or one that holds this split (a loop; `data check` lists them): {', '.join(listing.repeated[:8])}",
            file=sys.stderr,
        )
    return listing.images


def folder_set(folder, layout_hint: str = "") -> ImageSet:
    """The images under `folder` (nested or not) as one set, not yet validated."""
    folder = Path(folder)
    hint = f" Expected layout: {layout_hint}" if layout_hint else ""
    if not folder.is_dir():
        kind = "is not a folder" if folder.exists() else "does not exist"
        raise DataError(f"{folder} {kind}.{hint}")
    names = split_names(folder)
    if not names:
        raise DataError(f"{folder} holds no images ({EXTENSIONS_TEXT}).{hint}")
    return ImageSet(where=str(folder), names=names, items=[str(folder / n) for n in names])


def sizes_text(names_sizes, limit: int = 10) -> str:
    """`  name: WxH` lines for [(name, (h, w))], at most `limit` of them, for messages."""
    items = [f"  {n}: {w}x{h}" for n, (h, w) in names_sizes[:limit]]
    if len(names_sizes) > limit:
        items.append(f"  ... and {len(names_sizes) - limit} more")
    return "\n".join(items)

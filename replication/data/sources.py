"""Where images come from: folders, TFDS `cycle_gan`, downloaded zips, paired files.

Every source ends as `ImageSet`s, one per split: a sorted list of names and a
way to decode image i to uint8 RGB. The pipeline (`pipeline.py`) only sees
those, so it does not care where the images came from.

Layouts:
- unpaired (CycleGAN): ROOT/trainA/ trainB/ testA/ testB/ (nested folders
  inside a split are fine).
- paired (pix2pix): ROOT/train/ and ROOT/test/ (or ROOT/val/), each image
  holding A and B side by side (A on the left for direction AtoB).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import shutil
import socket
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from replication.data import preprocess as pp
from replication.errors import DataError

UNPAIRED_SPLITS = ("trainA", "trainB", "testA", "testB")
UNPAIRED_LAYOUT = "ROOT/trainA/ ROOT/trainB/ ROOT/testA/ ROOT/testB/ (images: .jpg .jpeg .png .bmp .webp, nested folders allowed)"
PAIRED_LAYOUT = "ROOT/train/ and ROOT/test/ (or ROOT/val/), each image holding A and B side by side"

# The CycleGAN datasets TFDS still serves as `cycle_gan/<name>` (tensorflow_datasets
# image_classification/cycle_gan.py); cityscapes was dropped there (licence).
TFDS_NAMES = (
    "apple2orange",
    "summer2winter_yosemite",
    "horse2zebra",
    "monet2photo",
    "cezanne2photo",
    "ukiyoe2photo",
    "vangogh2photo",
    "maps",
    "facades",
    "iphone2dslr_flower",
)
CYCLEGAN_URL = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
# From tensorflow_datasets/url_checksums/cycle_gan.txt (SPEC.md, Datasets).
CITYSCAPES_URL = CYCLEGAN_URL.format(name="cityscapes")
CITYSCAPES_SHA256 = "d2f6910fd056c1ee9873777ae838e7ac4a2c833598ae62a04188e5ab2f4ea036"
CITYSCAPES_BYTES = 279_601_602
# pix2pix datasets (datasets/download_pix2pix_dataset.sh of the reference code); no checksums are published.
PIX2PIX_URL = "https://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
PIX2PIX_NAMES = ("facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day")

DEFAULT_DATA_DIR = "data"


# --------------------------------------------------------------------------- image sets


@dataclass
class ImageSet:
    """One split: images in a fixed order, each decoded on demand (or kept, with cache)."""

    where: str  # shown in messages: a folder path or "TFDS cycle_gan/x split trainA"
    names: list  # relative names, sorted (folders) or in TFDS order
    items: list  # file paths or encoded bytes, aligned with names
    sizes: list = field(default_factory=list)  # (h, w) per image, filled by validate()
    skipped: list = field(default_factory=list)
    modes: dict = field(default_factory=dict)  # Pillow mode -> count (after validate)
    _cache: list | None = None

    def __len__(self) -> int:
        return len(self.names)

    def load(self, i: int) -> np.ndarray:
        if self._cache is not None:
            return self._cache[i]
        return pp.decode(self.items[i])

    def validate(self, skip_bad: bool, keep: bool, label: str = "") -> "ImageSet":
        """Decode every image once; list the ones that fail; remember sizes (and images if `keep`)."""
        def work(item):  # -> (image if kept, (h, w), mode, error)
            try:
                arr, mode = pp.decode_with_mode(item)
                return (arr if keep else None), arr.shape[:2], mode, None
            except Exception as err:  # noqa: BLE001 - any decoder failure means "bad file"
                return None, None, None, f"{type(err).__name__}: {err}"

        workers = min(8, (os.cpu_count() or 1) + 1)
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(work, self.items))
        bad = [(n, r[3]) for n, r in zip(self.names, results) if r[3] is not None]
        prefix = f"{label}/" if label else ""
        if bad and not skip_bad:
            listed = "\n".join(f"  {prefix}{n}: {e[:120]}" for n, e in bad[:20])
            more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
            raise DataError(
                f"{len(bad)} file(s) in {self.where} have an image extension but cannot be decoded:\n"
                f"{listed}{more}\nRemove or fix them, or set data.skip_bad_images: true to leave them out."
            )
        keep_idx = [i for i, r in enumerate(results) if r[3] is None]
        self.skipped = [f"{prefix}{n}" for n, _ in bad]
        self.names = [self.names[i] for i in keep_idx]
        self.items = [self.items[i] for i in keep_idx]
        self.sizes = [tuple(results[i][1]) for i in keep_idx]
        self.modes = {}
        for i in keep_idx:
            self.modes[results[i][2]] = self.modes.get(results[i][2], 0) + 1
        self._cache = [results[i][0] for i in keep_idx] if keep else None
        return self

    def subset(self, indices) -> "ImageSet":
        indices = list(indices)
        return ImageSet(
            where=self.where,
            names=[self.names[i] for i in indices],
            items=[self.items[i] for i in indices],
            sizes=[self.sizes[i] for i in indices] if self.sizes else [],
            modes=dict(self.modes),
            _cache=[self._cache[i] for i in indices] if self._cache is not None else None,
        )


def list_images(folder: Path) -> tuple[list[str], list[str]]:
    """(image names, ignored names) under `folder`, recursively, sorted by relative path."""
    images, ignored = [], []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in filenames:
            rel = Path(dirpath, fname).relative_to(folder).as_posix()
            (images if pp.is_image_name(fname) else ignored).append(rel)
    return sorted(images), sorted(ignored)


def folder_set(folder: Path, layout_hint: str = "") -> ImageSet:
    folder = Path(folder)
    if not folder.is_dir():
        kind = "is not a folder" if folder.exists() else "does not exist"
        raise DataError(f"{folder} {kind}.{(' Expected layout: ' + layout_hint) if layout_hint else ''}")
    names, _ = list_images(folder)
    if not names:
        raise DataError(
            f"{folder} holds no images (.jpg .jpeg .png .bmp .webp)."
            f"{(' Expected layout: ' + layout_hint) if layout_hint else ''}"
        )
    return ImageSet(where=str(folder), names=names, items=[str(folder / n) for n in names])


def check_root(root, layout: str, what: str = "data.root") -> Path:
    if root is None or str(root) == "":
        raise DataError(f"{what} is not set; point it at a folder laid out as {layout}.")
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{root} does not exist. Expected layout: {layout}.")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder. Expected layout: {layout}.")
    return root


def unpaired_folder(root, splits=UNPAIRED_SPLITS) -> dict:
    """{split: ImageSet} of an official-layout root; one message for every missing or empty split."""
    root = check_root(root, UNPAIRED_LAYOUT)
    missing = [s for s in splits if not (root / s).is_dir()]
    if missing:
        raise DataError(
            f"{root} lacks {', '.join(s + '/' for s in missing)}. Expected layout: "
            f"{UNPAIRED_LAYOUT.replace('ROOT', str(root))}."
        )
    sets, empty = {}, []
    for s in splits:
        names, _ = list_images(root / s)
        if not names:
            empty.append(str(root / s))
        sets[s] = ImageSet(where=str(root / s), names=names, items=[str(root / s / n) for n in names])
    if empty:
        raise DataError(
            f"No images (.jpg .jpeg .png .bmp .webp) in {', '.join(empty)}. Expected layout: "
            f"{UNPAIRED_LAYOUT.replace('ROOT', str(root))}."
        )
    return sets


def paired_split_folder(root: Path, phase: str) -> Path:
    """ROOT/train for training; ROOT/test, else ROOT/val, for testing."""
    root = check_root(root, PAIRED_LAYOUT)
    candidates = ["train"] if phase == "train" else ["test", "val"]
    for c in candidates:
        if (root / c).is_dir():
            return root / c
    raise DataError(
        f"{root} lacks {' or '.join(c + '/' for c in candidates)}. Expected layout: "
        f"{PAIRED_LAYOUT.replace('ROOT', str(root))}."
    )


def pair_key(name: str) -> str:
    """`x/12_A.jpg` and `x/12_B.png` pair up: strip the extension and a trailing _A/_B."""
    stem = name.rsplit(".", 1)[0]
    for suffix in ("_A", "_B", "_a", "_b"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def match_by_name(set_a: ImageSet, set_b: ImageSet) -> tuple[ImageSet, ImageSet]:
    """Align two sets by file name (after `pair_key`); every image must have its counterpart."""
    keys_a = {pair_key(n): i for i, n in enumerate(set_a.names)}
    keys_b = {pair_key(n): i for i, n in enumerate(set_b.names)}
    only_a = sorted(set(keys_a) - set(keys_b))
    only_b = sorted(set(keys_b) - set(keys_a))
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} in {set_a.where} without a counterpart in {set_b.where} "
                         f"(e.g. {', '.join(only_a[:5])})")
        if only_b:
            parts.append(f"{len(only_b)} in {set_b.where} without a counterpart in {set_a.where} "
                         f"(e.g. {', '.join(only_b[:5])})")
        raise DataError(
            "Paired images are matched by file name (x.jpg with x.jpg, or x_A.jpg with x_B.jpg), but "
            + "; ".join(parts) + "."
        )
    common = sorted(keys_a)
    return set_a.subset(keys_a[k] for k in common), set_b.subset(keys_b[k] for k in common)


# --------------------------------------------------------------------------- TFDS


def _tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise DataError(
            f"tensorflow_datasets cannot be imported ({err}). Install the kit's requirements "
            "(`make install`, or pip install -r requirements.txt), or use data.source: folder with data.root."
        ) from err
    return tfds


def _tfds_download_mocked(tfds) -> bool:
    """True inside `tfds.testing.mock_data`, where download_and_prepare is a no-op."""
    fn = getattr(tfds.core.DatasetBuilder, "download_and_prepare", None)
    return "mock" in getattr(fn, "__qualname__", "")


def check_reachable(url: str, timeout: float = 10.0) -> None:
    """Fail in seconds, not minutes of retries, when the host of `url` cannot be reached."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return
    if urllib.request.getproxies():  # behind a proxy the host may not resolve locally
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as err:
        raise ConnectionError(f"cannot reach {parsed.hostname}:{port} ({err})") from err


def local_copy_hint(name: str | None = None) -> str:
    zip_name = f"{name}.zip" if name else "<name>.zip"
    return (
        f"To use a local copy, unpack {zip_name} (trainA/ trainB/ testA/ testB/) and set "
        "data.source: folder and data.root: <that folder>; or, if TFDS already prepared it "
        "on another machine, copy its tensorflow_datasets folder here and set data.data_dir to it."
    )


def tfds_sets(name: str, data_dir=None, splits=UNPAIRED_SPLITS) -> dict:
    """{split: ImageSet} of TFDS `cycle_gan/<name>`, downloading and preparing it if needed."""
    if name not in TFDS_NAMES:
        extra = " cityscapes: use data.source: cityscapes (TFDS dropped it)." if name == "cityscapes" else ""
        raise DataError(
            f"TFDS has no cycle_gan/{name}. Known: {', '.join(TFDS_NAMES)}.{extra} "
            f"For your own images use data.source: folder with data.root laid out as {UNPAIRED_LAYOUT}."
        )
    tfds = _tfds()
    builder = prepare_tfds(name, data_dir)
    sets = {}
    for split in splits:
        try:
            ds = builder.as_dataset(
                split=split, decoders={"image": tfds.decode.SkipDecoding()}, shuffle_files=False
            )
            blobs = [bytes(ex["image"]) for ex in ds.as_numpy_iterator()]
        except Exception as err:  # noqa: BLE001
            raise DataError(
                f"Reading split {split} of TFDS cycle_gan/{name} (data_dir {builder.data_dir}) failed: "
                f"{_first_line(err)}. Delete that folder to prepare it again. {local_copy_hint(name)}"
            ) from err
        names = [f"{i:05d}{pp.encoded_extension(b)}" for i, b in enumerate(blobs)]
        where = f"TFDS cycle_gan/{name} split {split}"
        if not blobs:
            raise DataError(f"{where} is empty. {local_copy_hint(name)}")
        sets[split] = ImageSet(where=where, names=names, items=blobs)
    return sets


def prepare_tfds(name: str, data_dir=None):
    """The TFDS builder of cycle_gan/<name>, downloaded and prepared (once)."""
    tfds = _tfds()
    url = CYCLEGAN_URL.format(name=name)
    kwargs = {"data_dir": str(data_dir)} if data_dir else {}
    try:
        builder = tfds.builder(f"cycle_gan/{name}", **kwargs)
    except Exception as err:  # noqa: BLE001
        raise DataError(f"TFDS cannot build cycle_gan/{name}: {_first_line(err)}. {local_copy_hint(name)}") from err
    try:
        if not builder.is_prepared() and not _tfds_download_mocked(tfds):
            check_reachable(url)
        builder.download_and_prepare()
    except Exception as err:  # noqa: BLE001 - network, disk, corrupt download: all the user's to fix
        raise DataError(
            f"Could not download TFDS cycle_gan/{name} from {url} into {builder.data_dir}: "
            f"{_first_line(err)}. Check the network (or run `python -m replication data download {name}` "
            f"on a machine that has one). {local_copy_hint(name)}"
        ) from err
    return builder


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    text = text[0] if text else type(err).__name__
    return (text[:300] + "...") if len(text) > 300 else text


# --------------------------------------------------------------------------- downloads


def data_dir_of(cfg: dict) -> Path:
    return Path(cfg.get("data_dir") or DEFAULT_DATA_DIR).expanduser()


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(url: str, dest: Path, sha256: str | None = None, size: int | None = None, hint: str = "") -> Path:
    """Download `url` to `dest` (once), checking size and sha256.

    The bytes go to a temporary file beside `dest`, renamed only when they
    check out, so `dest` is never half a download. A file already at `dest`
    (from an earlier run, or copied there by hand) is checked and used.
    """
    dest = Path(dest)
    if dest.exists():
        if sha256 and sha256_of(dest) != sha256.lower():
            raise DataError(
                f"{dest} exists but its sha256 is not the published {sha256}; it is corrupt or another "
                f"file. Delete it and run again to download {url}."
            )
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    h, n = hashlib.sha256(), 0
    try:
        try:
            with os.fdopen(fd, "wb") as out:
                check_reachable(url)
                response = urllib.request.urlopen(url, timeout=60)
                with response:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        h.update(chunk)
                        n += len(chunk)
                        out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except (OSError, urllib.error.URLError, ValueError) as err:
            reason = getattr(err, "reason", None) or err
            raise DataError(
                f"Could not download {url} to {dest}: {reason}. Copy the file there by hand (it is "
                f"checked and used), or set data.download_url to a reachable copy.{(' ' + hint) if hint else ''}"
            ) from err
        if size is not None and n != size:
            raise DataError(
                f"The download of {url} has {n:,} bytes, expected {size:,}; it was discarded. "
                f"Try again, or copy the file to {dest} by hand.{(' ' + hint) if hint else ''}"
            )
        digest = h.hexdigest()
        if sha256 and digest != sha256.lower():
            raise DataError(
                f"The download of {url} has sha256 {digest}, expected {sha256.lower()}; it was discarded "
                f"(a corrupt or different file). Try again, or copy the right file to {dest}."
                f"{(' ' + hint) if hint else ''}"
            )
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def _safe_members_zip(zf: zipfile.ZipFile, where: Path):
    for info in zf.infolist():
        target = (where / info.filename).resolve()
        if not str(target).startswith(str(where.resolve())):
            raise DataError(f"The archive has a member outside its folder ({info.filename}); refusing to unpack it.")
    return zf.infolist()


def unpack_once(archive: Path, target: Path, looks_right: Callable[[Path], bool], layout: str) -> Path:
    """Unpack `archive` so that `target` is the dataset root; a no-op if `target` already looks right.

    The archive is unpacked into a temporary folder beside `target` and
    renamed into place only when complete.
    """
    target = Path(target)
    if looks_right(target):
        return target
    if target.exists():
        raise DataError(
            f"{target} exists but is not laid out as {layout}. Delete it (it will be unpacked again "
            f"from {archive}) or point data.root at a complete copy."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.unpacking-", dir=target.parent))
    try:
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(tmp, members=_safe_members_zip(zf, tmp))
            elif tarfile.is_tarfile(archive):
                with tarfile.open(archive) as tf:
                    tf.extractall(tmp, filter="data")
            else:
                raise DataError(f"{archive} is neither a zip nor a tar archive. Delete it and download it again.")
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as err:
            raise DataError(f"Unpacking {archive} failed ({err}). Delete it and download it again.") from err
        root = tmp
        entries = [p for p in tmp.iterdir() if not p.name.startswith((".", "__MACOSX"))]
        if len(entries) == 1 and entries[0].is_dir() and not looks_right(tmp):
            root = entries[0]
        if not looks_right(root):
            found = ", ".join(sorted(p.name for p in root.iterdir())[:10])
            raise DataError(f"{archive} does not hold the expected layout {layout} (found: {found}).")
        os.replace(root, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def is_unpaired_root(path: Path) -> bool:
    return path.is_dir() and all((path / s).is_dir() for s in UNPAIRED_SPLITS)


def is_paired_root(path: Path) -> bool:
    return path.is_dir() and (path / "train").is_dir() and ((path / "test").is_dir() or (path / "val").is_dir())


def cityscapes_root(cfg: dict) -> Path:
    """ROOT of the CycleGAN cityscapes.zip, downloaded, verified and unpacked once into data_dir."""
    data_dir = data_dir_of(cfg)
    target = Path(cfg.get("root") or data_dir / "cityscapes").expanduser()
    if is_unpaired_root(target):
        return target
    url = cfg.get("download_url") or CITYSCAPES_URL
    sha = cfg.get("download_sha256") or (CITYSCAPES_SHA256 if url == CITYSCAPES_URL else None)
    size = CITYSCAPES_BYTES if url == CITYSCAPES_URL else None
    hint = (
        "Or unpack cityscapes.zip yourself and set data.source: folder and data.root to the folder "
        "holding trainA/ trainB/ testA/ testB/."
    )
    archive = fetch(url, data_dir / "cityscapes.zip", sha256=sha, size=size, hint=hint)
    return unpack_once(archive, target, is_unpaired_root, UNPAIRED_LAYOUT)


def pix2pix_root(cfg: dict) -> Path:
    """ROOT of a published pix2pix dataset (train/ val/ test/ of side-by-side images), downloaded once."""
    name = cfg.get("name")
    url = cfg.get("download_url")
    if name not in PIX2PIX_NAMES and not url:
        raise DataError(
            f"No published pix2pix dataset '{name}'. Known: {', '.join(PIX2PIX_NAMES)}. For your own "
            f"paired images use data.source: paired with data.root laid out as {PAIRED_LAYOUT}."
        )
    data_dir = data_dir_of(cfg)
    target = Path(cfg.get("root") or data_dir / "pix2pix" / name).expanduser()
    if is_paired_root(target):
        return target
    url = url or PIX2PIX_URL.format(name=name)
    hint = f"Or unpack {name}.tar.gz yourself and set data.source: paired and data.root to its folder."
    archive = fetch(url, data_dir / "pix2pix" / f"{name}.tar.gz", sha256=cfg.get("download_sha256"), hint=hint)
    root = unpack_once(archive, target, is_paired_root, PAIRED_LAYOUT)
    check_side_by_side(root / "train", archive)
    return root


def check_side_by_side(folder: Path, origin, n: int = 3) -> None:
    """The first few images of a published pix2pix split must be twice as wide as high (A|B)."""
    names, _ = list_images(folder)
    if not names:
        raise DataError(f"{folder} (from {origin}) holds no images.")
    for name in names[:n]:
        try:
            h, w = pp.decode(folder / name).shape[:2]
        except Exception as err:  # noqa: BLE001
            raise DataError(f"{folder / name} (from {origin}) cannot be decoded: {err}.") from err
        if abs(w - 2 * h) > 1:
            raise DataError(
                f"{folder / name} (from {origin}) is {w}x{h}; a pix2pix image holds A and B side by side, "
                "so it should be twice as wide as high."
            )


# --------------------------------------------------------------------------- data download


def download(cfg: dict) -> str:
    """Fetch and prepare the dataset a data config names (its `data:` section); returns where it is."""
    cfg = pp.settings(cfg)
    source = cfg["source"]
    if source == "tfds":
        if cfg["name"] not in TFDS_NAMES:
            tfds_sets(cfg["name"])  # raises the unknown-name message
        builder = prepare_tfds(cfg["name"], cfg.get("data_dir"))
        return f"TFDS cycle_gan/{cfg['name']} is prepared in {builder.data_dir}"
    if source == "cityscapes":
        return f"cityscapes is unpacked in {cityscapes_root(cfg)}"
    if source == "pix2pix":
        return f"pix2pix {cfg['name']} is unpacked in {pix2pix_root(cfg)}"
    if source == "synthetic":
        from replication.data.synthetic import write_synthetic

        root = cfg.get("root")
        if not root:
            raise DataError("data.root is not set; it names the folder of the synthetic dataset.")
        if is_unpaired_root(Path(root)):
            return f"the synthetic dataset is in {root}"
        return f"wrote the synthetic dataset to {write_synthetic(root, seed=cfg.get('seed', 0))}"
    if source in ("folder", "paired"):
        layout = UNPAIRED_LAYOUT if source == "folder" else PAIRED_LAYOUT
        root = check_root(cfg.get("root"), layout)
        return f"data.source: {source} reads your own folder {root}; nothing to download"
    raise DataError(f"data.source is '{source}'; nothing to download for it.")

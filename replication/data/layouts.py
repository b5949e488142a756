"""What a dataset folder looks like: the unpaired and the paired layout, and images paired by file name.

- unpaired (CycleGAN): ROOT/trainA/ trainB/ testA/ testB/ (nested folders
  inside a split are fine).
- paired (pix2pix): ROOT/train/ and ROOT/test/ (or ROOT/val/), each image
  holding A and B side by side (A on the left for direction AtoB).
"""

from __future__ import annotations

from pathlib import Path

from replication.data.images import EXTENSIONS_TEXT, ImageSet, split_names
from replication.errors import DataError

UNPAIRED_SPLITS = ("trainA", "trainB", "testA", "testB")
UNPAIRED_LAYOUT = (
    f"ROOT/trainA/ ROOT/trainB/ ROOT/testA/ ROOT/testB/ (images: {EXTENSIONS_TEXT}, nested folders allowed)"
)
PAIRED_LAYOUT = "ROOT/train/ and ROOT/test/ (or ROOT/val/), each image holding A and B side by side"


def check_root(root, layout: str) -> Path:
    """data.root as a Path, if it is set and is a folder; else a message that shows `layout`."""
    if root is None or str(root) == "":
        raise DataError(f"data.root is not set; point it at a folder laid out as {layout}.")
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{root} does not exist. Expected layout: {layout}.")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder. Expected layout: {layout}.")
    return root


def is_unpaired_root(path: Path) -> bool:
    return path.is_dir() and all((path / s).is_dir() for s in UNPAIRED_SPLITS)


def is_paired_root(path: Path) -> bool:
    return path.is_dir() and (path / "train").is_dir() and ((path / "test").is_dir() or (path / "val").is_dir())


def unpaired_folder(root: Path, splits=UNPAIRED_SPLITS) -> dict:
    """{split: ImageSet} of an unpaired-layout root; one message for every missing or empty split."""
    layout = UNPAIRED_LAYOUT.replace("ROOT", str(root))
    missing = [s for s in splits if not (root / s).is_dir()]
    if missing:
        raise DataError(f"{root} lacks {', '.join(s + '/' for s in missing)}. Expected layout: {layout}.")
    sets = {}
    for s in splits:
        names = split_names(root / s)
        sets[s] = ImageSet(where=str(root / s), names=names, items=[str(root / s / n) for n in names])
    empty = [s.where for s in sets.values() if len(s) == 0]
    if empty:
        raise DataError(f"No images ({EXTENSIONS_TEXT}) in {', '.join(empty)}. Expected layout: {layout}.")
    return sets


def paired_split_folder(root: Path, phase: str) -> Path:
    """ROOT/train for training; ROOT/test, else ROOT/val, for testing."""
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
        parts = [
            f"{len(only)} in {here.where} without a counterpart in {there.where} (e.g. {', '.join(only[:5])})"
            for only, here, there in ((only_a, set_a, set_b), (only_b, set_b, set_a))
            if only
        ]
        raise DataError(
            "Paired images are matched by file name (x.jpg with x.jpg, or x_A.jpg with x_B.jpg), but "
            + "; ".join(parts) + "."
        )
    common = sorted(keys_a)
    return set_a.subset(keys_a[k] for k in common), set_b.subset(keys_b[k] for k in common)

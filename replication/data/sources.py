"""Where images come from: one `DataSource` per `data.source`.

Each source says where its dataset is (fetching and unpacking it once when it
can be downloaded, see `downloads.py`), which splits it has and how they are
read. Every source ends as image sets (`images.py`), so the pipeline does not
care where the images came from. Its row in the source table, `choices.SOURCES`
(plain data, so that a configuration is checked without importing a source),
names its class, the data keys it reads and its data in words; the pipeline
and `data download` find it there (`source_of`). A new source is its own file
(a subclass of `DataSource`) and one row, as `tfds_source.py` is; the others are here.

    source      where                                        CycleGAN, test images      pix2pix pairs
    tfds        TFDS cycle_gan/<name>, prepared by TFDS      trainA trainB testA testB  refused (unpaired)
    folder      data.root, UNPAIRED_LAYOUT                   the split folders          xA/ with xB/ by file name
    cityscapes  the CycleGAN zip, checked and unpacked once  the split folders          xA/ with xB/ by file name
    synthetic   data.root, written by `data synthetic`       the split folders          xA/ with xA_truth/
    pix2pix     a published tar.gz, unpacked once            halves of PAIRED_LAYOUT    halves of PAIRED_LAYOUT
    paired      data.root, PAIRED_LAYOUT                     halves of PAIRED_LAYOUT    halves of PAIRED_LAYOUT
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from replication import choices
from replication.data import downloads, images
from replication.data.images import folder_set, halves
from replication.data.layouts import (
    PAIRED_LAYOUT,
    UNPAIRED_LAYOUT,
    check_root,
    is_paired_root,
    is_unpaired_root,
    match_by_name,
    paired_split_folder,
    unpaired_folder,
)
from replication.data.synthetic import VERSION as SYNTHETIC_VERSION
from replication.data.synthetic import synthetic_version, write_synthetic
from replication.errors import DataError


# The CycleGAN datasets (TFDS reads them from here too, tfds_source.py).
CYCLEGAN_URL = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
# From tensorflow_datasets/url_checksums/cycle_gan.txt (SPEC.md, Datasets).
CITYSCAPES_URL = CYCLEGAN_URL.format(name="cityscapes")
CITYSCAPES_SHA256 = "d2f6910fd056c1ee9873777ae838e7ac4a2c833598ae62a04188e5ab2f4ea036"
CITYSCAPES_BYTES = 279_601_602
# pix2pix datasets (datasets/download_pix2pix_dataset.sh of the reference code); no checksums are published.
PIX2PIX_URL = "https://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
PIX2PIX_NAMES = ("facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day")

DEFAULT_DATA_DIR = "data"  # where downloaded archives go when data.data_dir is not set


@dataclass
class Found:
    """The validated image sets of one use of a source."""

    sets: dict  # {split: set} from split_sets, {phase: (a, b)} from pair_sets
    description: str
    skipped: list  # names left out (data.skip_bad_images)


def validated(sets: dict, cfg: dict, labels=None) -> list:
    """Decode every image of `sets` once (images.validate); the names left out."""
    return images.validate(list(sets.values()), labels or list(sets), cfg["skip_bad_images"], cfg["cache"])


def _data_dir(cfg: dict) -> Path:
    return Path(cfg["data_dir"] or DEFAULT_DATA_DIR).expanduser()


# --------------------------------------------------------------------------- the sources


class DataSource:
    """One `data.source`: where its dataset is, and how its splits are read. Its row in
    `choices.SOURCES` names it (`name`)."""

    datasets = ""  # the dataset names `data download` takes for this source, for messages

    def __init__(self, name: str):
        self.name = name

    def split_sets(self, cfg: dict, splits) -> Found:
        """{split: set} for some of trainA trainB testA testB (CycleGAN training, test images)."""
        raise NotImplementedError

    def pair_sets(self, cfg: dict, phases) -> Found:
        """{phase: (a, b)}: aligned sets for train and test (pix2pix)."""
        raise NotImplementedError

    def download(self, cfg: dict) -> str:
        """Fetch and prepare the dataset (once); says where it is."""
        raise NotImplementedError

    def nothing_to_download(self, root: Path) -> str:
        """What `download` says for a source that reads your own folder `root`."""
        return f"data.source: {self.name} reads your own folder {root}; nothing to download"

    def download_keys(self, target: str) -> dict | None:
        """The data keys for `data download TARGET`, when TARGET names one of this source's datasets."""
        return None

    def check_present(self, cfg: dict) -> None:
        """Refuse, before TensorFlow starts, a dataset folder that data.root names and that is not there
        (nothing by default: a source that downloads fetches its data when it is read)."""

    def truth_sets(self, cfg: dict, split: str) -> tuple:
        """(images, truths): the images of `split` (e.g. testA) and their true counterparts, image for image."""
        raise DataError(
            f"data.source {self.name} has no ground truth; the truth metrics need a folder dataset with "
            f"{split}_truth/, a paired dataset, or cityscapes."
        )


def other_domain(split: str) -> str:
    return split[:-1] + {"A": "B", "B": "A"}[split[-1]]


def stored_split(split: str, direction: str) -> str:
    """The stored split (folder or TFDS split) that is the kit's `split` (e.g. testA): data.direction BtoA swaps A and B."""
    return split if direction == "AtoB" else other_domain(split)



class Folder(DataSource):
    """Your own unpaired folders: ROOT/trainA/ trainB/ testA/ testB/; for pix2pix, xA/ and xB/ paired by name."""

    def root(self, cfg: dict, layout: str) -> Path:
        return check_root(cfg["root"], layout)

    def pair_folders(self, phase: str) -> tuple[str, str]:
        return f"{phase}A", f"{phase}B"

    def check_present(self, cfg):
        self.root(cfg, UNPAIRED_LAYOUT)

    def check_sets(self, sets: dict) -> None:
        """What this source asks of its validated split sets beyond the layout (nothing here)."""

    def truth_sets(self, cfg, split):
        """The truth of testA/x.png is testA_truth/x.png (the synthetic set writes it; your folders may)."""
        root, stored = self.root(cfg, UNPAIRED_LAYOUT), stored_split(split, cfg["direction"])
        folder = root / f"{stored}_truth"
        if not folder.is_dir():
            raise DataError(
                f"{root} has no ground truth for {stored}: the truth metrics need {folder}/ holding the "
                f"true {other_domain(stored)[-1]} image of every {stored}/ image under the same name."
            )
        truths = folder_set(folder, UNPAIRED_LAYOUT)
        validated({folder.name: truths}, cfg)
        return match_by_name(self.split_sets(cfg, (split,)).sets[split], truths)

    def split_sets(self, cfg, splits):
        root = self.root(cfg, UNPAIRED_LAYOUT)
        folders = {s: stored_split(s, cfg["direction"]) for s in splits}
        stored = unpaired_folder(root, list(folders.values()))
        sets = {s: stored[folder] for s, folder in folders.items()}
        skipped = validated(sets, cfg, list(folders.values()))
        self.check_sets(sets)
        return Found(sets, f"{self.name} {root}", skipped)

    def pair_sets(self, cfg, phases):
        folders = {p: self.pair_folders(p) for p in phases}
        names = sorted({f for pair in folders.values() for f in pair})
        layout = " ".join(f"ROOT/{n}/" for n in names) + " with matching file names"
        root = self.root(cfg, layout)
        missing = [n for n in names if not (root / n).is_dir()]
        if missing:
            raise DataError(
                f"{root} lacks {', '.join(m + '/' for m in missing)}. "
                f"Expected layout: {layout.replace('ROOT', str(root))}."
            )
        pairs, skipped = {}, []
        for phase, (fa, fb) in folders.items():
            a, b = folder_set(root / fa, layout), folder_set(root / fb, layout)
            skipped += validated({fa: a, fb: b}, cfg)
            a, b = match_by_name(a, b)
            pairs[phase] = (a, b) if cfg["direction"] == "AtoB" else (b, a)
        return Found(pairs, f"{self.name} {root} (pairs by file name, {cfg['direction']})", skipped)

    def download(self, cfg):
        return self.nothing_to_download(self.root(cfg, UNPAIRED_LAYOUT))


class Synthetic(Folder):
    """The embedded dataset `data synthetic` writes; for pix2pix each A image pairs with its truth."""

    def root(self, cfg, layout):
        root = cfg["root"]
        if not root or not Path(root).expanduser().is_dir():
            where = root or "<folder>"
            raise DataError(
                f"The synthetic dataset is not at {where}. Write it first: "
                f"`replication data synthetic {where}` (and set data.root to that folder)."
            )
        root = Path(root).expanduser()
        written_by = synthetic_version(root)
        if written_by is not None and written_by < SYNTHETIC_VERSION:
            raise DataError(
                f"{root} holds version {written_by} of the synthetic dataset; this kit trains and scores "
                f"version {SYNTHETIC_VERSION}. Rewrite it: `replication data synthetic {root}`."
            )
        return root

    def check_present(self, cfg):
        """Answered when it is read (where the demo's dataset is written is the synthetic source's own business)."""

    def pair_folders(self, phase):
        return f"{phase}A", f"{phase}A_truth"  # every A image has its B rendering in <split>_truth/

    def download(self, cfg):
        root = cfg["root"]
        if not root:
            raise DataError("data.root is not set; it names the folder of the synthetic dataset.")
        written_by = synthetic_version(Path(root).expanduser())
        if is_unpaired_root(Path(root)) and (written_by is None or written_by >= SYNTHETIC_VERSION):
            return f"the synthetic dataset is in {root}"
        if written_by is not None and written_by < SYNTHETIC_VERSION:
            return f"rewrote {write_synthetic(root, seed=cfg['seed'])}, which held version {written_by} of the synthetic dataset, as version {SYNTHETIC_VERSION}"
        return f"wrote the synthetic dataset to {write_synthetic(root, seed=cfg['seed'])}"


class Cityscapes(Folder):
    """The CycleGAN cityscapes.zip: checked against its published sha256, unpacked once into data_dir."""

    datasets = "cityscapes"

    def check_present(self, cfg):
        """Downloaded when it is read."""

    def root(self, cfg, layout=UNPAIRED_LAYOUT):
        data_dir = _data_dir(cfg)
        target = Path(cfg["root"] or data_dir / "cityscapes").expanduser()
        if is_unpaired_root(target):
            return target
        url = cfg["download_url"] or CITYSCAPES_URL
        official = url == CITYSCAPES_URL
        hint = (
            "Or unpack cityscapes.zip yourself and set data.source: folder and data.root to the folder "
            "holding trainA/ trainB/ testA/ testB/."
        )
        sha256 = cfg["download_sha256"] or (CITYSCAPES_SHA256 if official else None)
        size = CITYSCAPES_BYTES if official else None
        archive = downloads.fetch(url, data_dir / "cityscapes.zip", sha256=sha256, size=size, hint=hint)
        return downloads.unpack_once(archive, target, is_unpaired_root, UNPAIRED_LAYOUT)

    def check_sets(self, sets):
        # the evaluation scores each test photo against its label map, so they must correspond one to one
        if "testA" in sets and "testB" in sets:
            try:
                match_by_name(sets["testA"], sets["testB"])
            except DataError as err:
                raise DataError(
                    f"Cityscapes test photos (testA) and label maps (testB) must correspond one to one. {err}"
                ) from None

    def truth_sets(self, cfg, split):
        """The truth of a photo is the label map of the same name, and the other way round."""
        found = self.split_sets(cfg, (split, other_domain(split))).sets
        return match_by_name(found[split], found[other_domain(split)])

    def download(self, cfg):
        return f"cityscapes is unpacked in {self.root(cfg)}"

    def download_keys(self, target):
        return {"source": self.name} if target == "cityscapes" else None


class SideBySide(DataSource):
    """Your own pix2pix pairs: ROOT/train/ and ROOT/test/ (or val/), A and B side by side in each image."""

    def root(self, cfg: dict) -> Path:
        return check_root(cfg["root"], PAIRED_LAYOUT)

    def check_present(self, cfg):
        self.root(cfg)

    def split_sets(self, cfg, splits):
        root = self.root(cfg)
        # both splits must be there, even when only one is read
        files = {p: folder_set(paired_split_folder(root, p), PAIRED_LAYOUT) for p in ("train", "test")}
        files = {p: f for p, f in files.items() if any(s.startswith(p) for s in splits)}  # the ones read
        skipped = validated(files, cfg, [Path(f.where).name for f in files.values()])
        for f in files.values():
            narrow = [(n, hw) for n, hw in zip(f.names, f.sizes) if hw[1] < 2]
            if narrow:
                raise DataError(
                    f"{len(narrow)} image(s) in {f.where} are too narrow to hold A and B side by side "
                    f"(expected layout: {PAIRED_LAYOUT}). Found (WxH):\n{images.sizes_text(narrow)}"
                )
        sets = {}
        for phase, f in files.items():
            sets[phase + "A"], sets[phase + "B"] = halves(f, cfg["direction"])
        return Found({s: sets[s] for s in splits}, f"{self.name} {root} (halves, {cfg['direction']})", skipped)

    def pair_sets(self, cfg, phases):
        found = self.split_sets(cfg, tuple(p + d for p in phases for d in "AB"))
        return Found({p: (found.sets[p + "A"], found.sets[p + "B"]) for p in phases}, found.description, found.skipped)

    def truth_sets(self, cfg, split):
        """The truth of one half is the other half of the same file."""
        found = self.split_sets(cfg, (split, other_domain(split))).sets
        return found[split], found[other_domain(split)]

    def download(self, cfg):
        return self.nothing_to_download(self.root(cfg))


class Pix2pix(SideBySide):
    """A published pix2pix dataset (train/ val/ test/ of side-by-side images), downloaded and unpacked once."""

    datasets = ", ".join(f"pix2pix/{n}" for n in PIX2PIX_NAMES)

    def check_present(self, cfg):
        """Downloaded when it is read."""

    def root(self, cfg):
        name, url = cfg["name"], cfg["download_url"]
        if name not in PIX2PIX_NAMES and not url:
            raise DataError(
                f"No published pix2pix dataset '{name}'. Known: {', '.join(PIX2PIX_NAMES)}. For your own "
                f"paired images use data.source: paired with data.root laid out as {PAIRED_LAYOUT}."
            )
        data_dir = _data_dir(cfg)
        target = Path(cfg["root"] or data_dir / "pix2pix" / name).expanduser()
        if is_paired_root(target):
            return target
        url = url or PIX2PIX_URL.format(name=name)
        hint = f"Or unpack {name}.tar.gz yourself and set data.source: paired and data.root to its folder."
        archive = data_dir / "pix2pix" / f"{name}.tar.gz"
        archive = downloads.fetch(url, archive, sha256=cfg["download_sha256"], hint=hint)
        root = downloads.unpack_once(archive, target, is_paired_root, PAIRED_LAYOUT)
        self._check_side_by_side(root / "train", archive)
        return root

    @staticmethod
    def _check_side_by_side(folder: Path, origin, n: int = 3) -> None:
        """The first few images of a published split must be twice as wide as high (A|B)."""
        names = images.list_images(folder).images
        if not names:
            raise DataError(f"{folder} (from {origin}) holds no images.")
        for name in names[:n]:
            try:
                h, w = images.decode(folder / name).shape[:2]
            except Exception as err:  # noqa: BLE001
                raise DataError(f"{folder / name} (from {origin}) cannot be decoded: {err}.") from err
            if abs(w - 2 * h) > 1:
                raise DataError(
                    f"{folder / name} (from {origin}) is {w}x{h}; a pix2pix image holds A and B side by side, "
                    "so it should be twice as wide as high."
                )

    def download(self, cfg):
        return f"pix2pix {cfg['name']} is unpacked in {self.root(cfg)}"

    def download_keys(self, target):
        return {"source": self.name, "name": target.split("/", 1)[1]} if target.startswith("pix2pix/") else None


def source_named(name: str) -> DataSource:
    """The source of row `name` of `choices.SOURCES`, its class imported."""
    module, cls = choices.SOURCES[name].where.split(":")
    return getattr(importlib.import_module(module), cls)(name)


def source_of(cfg: dict) -> DataSource:
    return source_named(cfg["source"])


def all_sources() -> list[DataSource]:
    return [source_named(name) for name in choices.SOURCES]


def download(cfg: dict) -> str:
    """Fetch and prepare the dataset a resolved `data:` section names; says where it is."""
    return source_of(cfg).download(cfg)


def write_missing_synthetic(cfg: dict) -> str | None:
    """Before a training: write the synthetic dataset where data.root names a folder that is not there
    yet (the demo's data/synthetic, under the folder the command runs in, as `make demo` does); says
    where. None for other sources and for a folder that exists (never written over)."""
    if cfg["source"] != "synthetic" or not cfg["root"] or Path(cfg["root"]).expanduser().exists():
        return None
    root = Path(write_synthetic(Path(cfg["root"]).expanduser(), seed=cfg["seed"])).absolute()
    return f"wrote the synthetic dataset to {root} (data.root; it was not there yet)"


def dataset_keys(target: str) -> dict | None:
    """The data keys of a dataset name (`horse2zebra`, `cityscapes`, `pix2pix/facades`), or None."""
    for source in all_sources():
        keys = source.download_keys(target)
        if keys is not None:
            return keys
    return None


def dataset_names() -> str:
    """Every dataset name `data download` takes, for messages."""
    return ", ".join(s.datasets for s in all_sources() if s.datasets)

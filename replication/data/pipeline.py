"""The tf.data pipeline the trainer consumes: `unpaired()`, `paired()`, `test_images()`, `folder_images()`.

Determinism. An epoch is planned in NumPy before any image is read: each
domain's order is a permutation drawn from (seed, epoch, domain) (the shorter
domain cycles through fresh permutations), and every element gets a stateless
seed (seed, epoch, element index) that alone decides its crop and flip. So
`ds.epoch(e).skip(k)` yields exactly elements k, k+1, ... of `ds.epoch(e)`
(`ds.epoch(e, start=k)` does the same without decoding the skipped ones), and
building the dataset twice yields identical tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replication.data import preprocess as pp
from replication.data import sources as src
from replication.errors import DataError

UNPAIRED_SOURCES = ("tfds", "folder", "cityscapes", "synthetic", "pix2pix", "paired")


# --------------------------------------------------------------------------- image views


@dataclass
class HalfSet:
    """The left or right half of each side-by-side image of `base` (pix2pix files)."""

    base: src.ImageSet
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

    @property
    def skipped(self):
        return self.base.skipped

    def __len__(self):
        return len(self.base)

    def load(self, i: int) -> np.ndarray:
        img = self.base.load(i)
        half = img.shape[1] // 2
        return img[:, :half] if self.side == "left" else img[:, half : 2 * half]


def _halves(base: src.ImageSet, direction: str):
    left, right = HalfSet(base, "left"), HalfSet(base, "right")
    return (left, right) if direction == "AtoB" else (right, left)


# --------------------------------------------------------------------------- size checks


def _fmt(names_sizes, limit=10) -> str:
    items = [f"  {n}: {w}x{h}" for n, (h, w) in names_sizes[:limit]]
    if len(names_sizes) > limit:
        items.append(f"  ... and {len(names_sizes) - limit} more")
    return "\n".join(items)


def check_train_sizes(sets: list, cfg: dict) -> None:
    """Images the training transform cannot take: one message with the sizes found and the sizes that work."""
    mode, crop = cfg["preprocess"], cfg["crop_size"]
    if mode not in ("crop", "none"):
        return
    bad = []
    for s in sets:
        for name, (h, w) in zip(s.names, s.sizes):
            if (mode == "crop" and (h < crop or w < crop)) or (mode == "none" and (h, w) != (crop, crop)):
                bad.append((f"{s.where}/{name}", (h, w)))
    if bad:
        raise DataError(f"{len(bad)} training image(s) do not fit: {pp.describe_sizes_ok(cfg)}. Found (WxH):\n{_fmt(bad)}")


def check_pair_sizes(a, b, cfg: dict) -> None:
    if cfg["preprocess"] not in ("crop", "none"):
        return
    bad = [(n, sa, sb) for n, sa, sb in zip(a.names, a.sizes, b.sizes) if tuple(sa) != tuple(sb)]
    if bad:
        lines = "\n".join(f"  {n}: A {sa[1]}x{sa[0]}, B {sb[1]}x{sb[0]}" for n, sa, sb in bad[:10])
        raise DataError(
            f"{len(bad)} pair(s) in {a.where} / {b.where} have A and B of different sizes; preprocess "
            f"'{cfg['preprocess']}' crops both at the same place, so they must match (or use 'resize_and_crop'):\n{lines}"
        )


def check_test_sizes(s, multiple: int) -> None:
    bad = [(n, hw) for n, hw in zip(s.names, s.sizes) if hw[0] < multiple or hw[1] < multiple]
    if bad:
        raise DataError(
            f"{len(bad)} image(s) in {s.where} are too small for the network: at test time each side is "
            f"rounded down to a multiple of {multiple}, so both sides must be at least {multiple} px "
            f"(any size >= {multiple} works; it is cropped to {multiple}*k). Found (WxH):\n{_fmt(bad)}"
        )


# --------------------------------------------------------------------------- planning


def _key(*parts) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(p) % (1 << 63) for p in parts])


def cycled_order(n: int, total: int, *key) -> np.ndarray:
    """`total` indices into a domain of `n`: shuffled permutations back to back (the shorter domain cycles)."""
    chunks, have, wrap = [], 0, 0
    while have < total:
        perm = np.random.default_rng(_key(*key, wrap)).permutation(n)
        chunks.append(perm)
        have += n
        wrap += 1
    return np.concatenate(chunks)[:total].astype(np.int64) if chunks else np.zeros([0], np.int64)


def element_seeds(seed: int, epoch: int, count: int, streams: int) -> np.ndarray:
    """[count, streams, 2] int64 stateless seeds: (key of (seed, epoch), element * streams + stream)."""
    k = int(_key(seed, epoch).generate_state(1, np.uint32)[0])
    idx = np.arange(count, dtype=np.int64)[:, None] * streams + np.arange(streams, dtype=np.int64)[None, :]
    return np.stack([np.full_like(idx, k), idx], axis=-1)


# --------------------------------------------------------------------------- datasets


class _Data:
    """What UnpairedData and PairedData share."""

    def __init__(self, cfg: dict, train_a, train_b, test_a, test_b, description: str, skipped: list):
        self.cfg = cfg
        self.train_a, self.train_b = train_a, train_b
        self.test_a, self.test_b = test_a, test_b
        self.description = description
        self.skipped = list(skipped)
        self.batch_size = cfg["batch_size"]
        self.crop_size = cfg["crop_size"]
        self.seed = cfg["seed"]

    def __repr__(self):
        return f"<{type(self).__name__} {self.description}: {self.steps_per_epoch} steps/epoch>"

    @property
    def element_spec(self):
        import tensorflow as tf

        spec = tf.TensorSpec([self.batch_size, self.crop_size, self.crop_size, 3], tf.float32)
        return spec, spec

    def samples(self, n: int):
        """The first n test images per domain, no jitter, resized to crop x crop: two (n, crop, crop, 3) tensors."""
        import tensorflow as tf

        out = []
        for s in (self.test_a, self.test_b):
            k = min(int(n), len(s))
            if k == 0:
                out.append(tf.zeros([0, self.crop_size, self.crop_size, 3], tf.float32))
                continue
            imgs = [pp.resize_to_square(s.load(i), self.crop_size, self.cfg["resize_method"]) for i in range(k)]
            out.append(tf.stack(imgs))
        return out[0], out[1]

    def plan(self, epoch: int):  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def epoch(self, epoch: int, start: int = 0):
        """Batches (a, b) of epoch `epoch`, from batch `start` on: float32 [-1, 1], static shapes, prefetched."""
        import tensorflow as tf

        idx_a, idx_b, seeds_a, seeds_b = self.plan(epoch)
        first = int(start) * self.batch_size
        cfg = self.cfg
        load_a, load_b = self._loader(self.train_a), self._loader(self.train_b)
        pairs = isinstance(self, PairedData)

        def element(i, j, sa, sb):
            a = tf.numpy_function(load_a, [i], tf.uint8, stateful=False)
            b = tf.numpy_function(load_b, [j], tf.uint8, stateful=False)
            a.set_shape([None, None, 3])
            b.set_shape([None, None, 3])
            if pairs:
                a, b = pp.jitter([a, b], sa, cfg)  # the same crop and flip for A and B
            else:
                (a,) = pp.jitter([a], sa, cfg)
                (b,) = pp.jitter([b], sb, cfg)
            return a, b

        ds = tf.data.Dataset.from_tensor_slices((idx_a[first:], idx_b[first:], seeds_a[first:], seeds_b[first:]))
        ds = ds.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.batch(self.batch_size, drop_remainder=True)
        return ds.prefetch(tf.data.AUTOTUNE)

    @staticmethod
    def _loader(s):
        def load(i):
            return s.load(int(i))

        return load


class UnpairedData(_Data):
    """CycleGAN training data: domains A and B, each shuffled on its own every epoch."""

    @property
    def steps_per_epoch(self) -> int:
        # reference code: an epoch is max(len(A), len(B)) images; drop the remainder so batches are full
        return max(len(self.train_a), len(self.train_b)) // self.batch_size

    def plan(self, epoch: int):
        total = self.steps_per_epoch * self.batch_size
        idx_a = cycled_order(len(self.train_a), total, self.seed, epoch, 0)
        idx_b = cycled_order(len(self.train_b), total, self.seed, epoch, 1)
        seeds = element_seeds(self.seed, epoch, total, 2)
        return idx_a, idx_b, seeds[:, 0], seeds[:, 1]


class PairedData(_Data):
    """pix2pix training data: aligned pairs, the same crop and flip for a and b."""

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_a) // self.batch_size

    def plan(self, epoch: int):
        total = self.steps_per_epoch * self.batch_size
        idx = cycled_order(len(self.train_a), total, self.seed, epoch, 0)
        seeds = element_seeds(self.seed, epoch, total, 1)
        return idx, idx, seeds[:, 0], seeds[:, 0]


# --------------------------------------------------------------------------- building


def _synthetic_root(cfg: dict) -> Path:
    root = cfg.get("root")
    if not root or not Path(root).expanduser().is_dir():
        where = root or "<folder>"
        raise DataError(
            f"The synthetic dataset is not at {where}. Write it first: "
            f"`python -m replication data synthetic {where}` (and set data.root to that folder)."
        )
    return Path(root).expanduser()


def _source(cfg: dict) -> str:
    source = cfg["source"]
    if source not in UNPAIRED_SOURCES:
        raise DataError(f"data.source is '{source}'; choose one of {', '.join(UNPAIRED_SOURCES)}.")
    return source


def _validate(sets, cfg, labels) -> list:
    skipped = []
    for s, label in zip(sets, labels):
        s.validate(cfg["skip_bad_images"], cfg["cache"], label)
        skipped += s.skipped
        if len(s) == 0:
            raise DataError(f"Every image in {s.where} failed to decode; nothing is left to train on.")
    return skipped


def _unpaired_split_sets(cfg: dict, splits=src.UNPAIRED_SPLITS):
    """({split: set}, description, skipped) for an unpaired use of any source."""
    source = _source(cfg)
    if source in ("pix2pix", "paired"):
        root = src.pix2pix_root(cfg) if source == "pix2pix" else src.check_root(cfg.get("root"), src.PAIRED_LAYOUT)
        train = src.folder_set(src.paired_split_folder(root, "train"), src.PAIRED_LAYOUT)
        test = src.folder_set(src.paired_split_folder(root, "test"), src.PAIRED_LAYOUT)
        bases = {"train": train, "test": test}
        wanted = sorted({s[:-1] for s in splits}, key=["train", "test"].index)
        skipped = _validate([bases[p] for p in wanted], cfg, [Path(bases[p].where).name for p in wanted])
        for p in wanted:
            narrow = [(n, hw) for n, hw in zip(bases[p].names, bases[p].sizes) if hw[1] < 2]
            if narrow:
                raise DataError(
                    f"{len(narrow)} image(s) in {bases[p].where} are too narrow to hold A and B side by side "
                    f"(expected layout: {src.PAIRED_LAYOUT}). Found (WxH):\n{_fmt(narrow)}"
                )
        sets = {}
        for phase in wanted:
            a, b = _halves(bases[phase], cfg["direction"])
            sets[phase + "A"], sets[phase + "B"] = a, b
        return {s: sets[s] for s in splits}, f"{source} {root} (halves, {cfg['direction']})", skipped
    if source == "tfds":
        sets = src.tfds_sets(cfg["name"], cfg.get("data_dir"), splits)
        desc = f"TFDS cycle_gan/{cfg['name']}"
    else:
        if source == "folder":
            root = cfg.get("root")
        elif source == "synthetic":
            root = _synthetic_root(cfg)
        else:  # cityscapes
            root = src.cityscapes_root(cfg)
        sets = src.unpaired_folder(root, splits)
        desc = f"{source} {root}"
        if source == "cityscapes" and "testA" in sets and "testB" in sets:
            # photos and label maps of the test set correspond one to one (the evaluation needs it)
            src.match_by_name(sets["testA"], sets["testB"])
    skipped = _validate([sets[s] for s in splits], cfg, list(splits))
    if source == "cityscapes" and "testA" in sets and "testB" in sets:
        ka = [src.pair_key(n) for n in sets["testA"].names]
        kb = [src.pair_key(n) for n in sets["testB"].names]
        if ka != kb:
            raise DataError(
                "Cityscapes test photos (testA) and label maps (testB) no longer correspond one to one after "
                "leaving out undecodable files; fix or restore: " + ", ".join(sorted(set(ka) ^ set(kb))[:10])
            )
    return sets, desc, skipped


def unpaired(data_cfg: dict) -> UnpairedData:
    """CycleGAN training data from `data_cfg['source']` (see experiments/base.yaml, `data:`)."""
    cfg = pp.settings(data_cfg)
    sets, desc, skipped = _unpaired_split_sets(cfg)
    check_train_sizes([sets["trainA"], sets["trainB"]], cfg)
    data = UnpairedData(cfg, sets["trainA"], sets["trainB"], sets["testA"], sets["testB"], desc, skipped)
    if data.steps_per_epoch == 0:
        raise DataError(
            f"{desc}: {len(sets['trainA'])} / {len(sets['trainB'])} training images is fewer than "
            f"data.batch_size ({cfg['batch_size']}); lower the batch size or add images."
        )
    return data


def _paired_sets(cfg: dict, phases=("train", "test")):
    """({phase: (a_set, b_set)}, description, skipped) for pix2pix."""
    source = _source(cfg)
    out, skipped = {}, []
    if source in ("pix2pix", "paired"):
        sets, desc, skipped = _unpaired_split_sets(cfg, tuple(p + d for p in phases for d in "AB"))
        return {p: (sets[p + "A"], sets[p + "B"]) for p in phases}, desc, skipped
    if source == "tfds":
        raise DataError(
            f"TFDS cycle_gan/{cfg['name']} is unpaired; pix2pix needs aligned pairs. Use data.source: pix2pix "
            f"with data.name one of {', '.join(src.PIX2PIX_NAMES)}, or data.source: paired with data.root "
            f"laid out as {src.PAIRED_LAYOUT}."
        )
    if source == "synthetic":
        root = _synthetic_root(cfg)
        # every A image has its ground-truth B counterpart in <split>_truth/
        folders = {p: (f"{p}A", f"{p}A_truth") for p in phases}
    else:
        root = src.cityscapes_root(cfg) if source == "cityscapes" else cfg.get("root")
        folders = {p: (f"{p}A", f"{p}B") for p in phases}
    names = sorted({f for pair in folders.values() for f in pair})
    layout = " ".join(f"ROOT/{n}/" for n in names) + " with matching file names"
    root = src.check_root(root, layout)
    missing = [n for n in names if not (root / n).is_dir()]
    if missing:
        raise DataError(f"{root} lacks {', '.join(m + '/' for m in missing)}. Expected layout: {layout.replace('ROOT', str(root))}.")
    for phase, (fa, fb) in folders.items():
        a = src.folder_set(root / fa, layout)
        b = src.folder_set(root / fb, layout)
        skipped += _validate([a, b], cfg, [fa, fb])
        a, b = src.match_by_name(a, b)
        out[phase] = (a, b) if cfg["direction"] == "AtoB" else (b, a)
    return out, f"{source} {root} (pairs by file name, {cfg['direction']})", skipped


def paired(data_cfg: dict) -> PairedData:
    """pix2pix training data: the same interface as `unpaired`, with a and b aligned."""
    cfg = pp.settings(data_cfg)
    sets, desc, skipped = _paired_sets(cfg)
    (ta, tb), (sa, sb) = sets["train"], sets["test"]
    check_train_sizes([ta, tb], cfg)
    check_pair_sizes(ta, tb, cfg)
    data = PairedData(cfg, ta, tb, sa, sb, desc, skipped)
    if data.steps_per_epoch == 0:
        raise DataError(
            f"{desc}: {len(ta)} training pairs is fewer than data.batch_size ({cfg['batch_size']}); "
            "lower the batch size or add images."
        )
    return data


# --------------------------------------------------------------------------- test time


def _test_dataset(s, multiple: int):
    import tensorflow as tf

    multiple = int(multiple)
    if multiple < 1:
        raise DataError(f"multiple must be a positive whole number, got {multiple}.")
    check_test_sizes(s, multiple)

    def load(i):
        return s.load(int(i))

    def element(i, name):
        img = tf.numpy_function(load, [i], tf.uint8, stateful=False)
        img.set_shape([None, None, 3])
        img = pp.center_crop_to_multiple(img, multiple)
        return pp.to_unit_range(img)[tf.newaxis], name

    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(s), dtype=np.int64), tf.constant(list(s.names), tf.string)))
    return ds.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def test_set(data_cfg: dict, domain: str):
    """The test images of one domain (validated), in fixed order."""
    if domain not in ("A", "B"):
        raise DataError(f"domain must be 'A' or 'B', got {domain!r}.")
    cfg = pp.settings(data_cfg)
    sets, _, _ = _unpaired_split_sets(cfg, ("test" + domain,))
    return sets["test" + domain]


def test_images(data_cfg: dict, domain: str, multiple: int):
    """(image [1,H,W,3] float32 [-1,1], name) for every test image of `domain`, sorted, no jitter.

    Each side is rounded DOWN to a multiple of `multiple` (centre crop), as preprocess 'none'.
    """
    return _test_dataset(test_set(data_cfg, domain), multiple)


def truth_pairs(data_cfg: dict, domain: str, multiple: int, phase: str = "test"):
    """(image, truth, name) for every `phase` image of `domain` and its true counterpart, as `test_images`.

    The truth is `<phase><domain>_truth/<name>` (synthetic set, your folders), the other half of a
    paired image (pix2pix, paired), or the other domain's file of the same name (cityscapes:
    photo and label map). Other data has no truth (DataError naming what is needed).
    """
    import tensorflow as tf

    cfg, other = pp.settings(data_cfg), {"A": "B", "B": "A"}[domain]
    source = _source(cfg)
    split = phase + domain
    if source in ("cityscapes", "pix2pix", "paired"):
        sets, _, _ = _unpaired_split_sets(cfg, (split, phase + other))
        images, truths = sets[split], sets[phase + other]
    elif source in ("folder", "synthetic"):
        root = _synthetic_root(cfg) if source == "synthetic" else src.check_root(cfg.get("root"), src.UNPAIRED_LAYOUT)
        if not (root / f"{split}_truth").is_dir():
            raise DataError(
                f"{root} has no ground truth for {split}: the truth metrics need {root / (split + '_truth')}/ "
                f"holding the true {other} image of every {split}/ image under the same name."
            )
        images = _unpaired_split_sets(cfg, (split,))[0][split]
        truths = src.folder_set(root / f"{split}_truth").validate(cfg["skip_bad_images"], keep=False)
    else:
        raise DataError(
            f"data.source {source} has no ground truth; the truth metrics need a folder dataset with "
            f"{split}_truth/, a paired dataset, or cityscapes."
        )
    if source not in ("pix2pix", "paired"):
        images, truths = src.match_by_name(images, truths)
    both = tf.data.Dataset.zip(_test_dataset(images, multiple), _test_dataset(truths, multiple))
    return both.map(lambda image, truth: (image[0], truth[0], image[1]))


test_images.__test__ = False  # not a pytest test, despite the name
test_set.__test__ = False


def folder_images(path, multiple: int, skip_bad_images: bool = False):
    """Like `test_images`, for a plain folder (nested or not); names are the relative paths."""
    s = src.folder_set(Path(path).expanduser(), "a folder of images (.jpg .jpeg .png .bmp .webp), nested or not")
    s.validate(skip_bad_images, keep=False)
    if len(s) == 0:
        raise DataError(f"Every image in {path} failed to decode.")
    ds = _test_dataset(s, multiple)
    ds.skipped = list(s.skipped)  # names left out (skip_bad_images), for the caller's log
    return ds

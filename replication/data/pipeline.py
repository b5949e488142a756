"""The tf.data pipeline the trainer consumes: `unpaired()`, `paired()`, `test_images()`, `folder_images()`.

Determinism. An epoch is planned in NumPy before any image is read: each
domain's order is a permutation drawn from (seed, epoch, domain) (the shorter
domain cycles through fresh permutations), and every element gets a stateless
seed (seed, epoch, element index) that alone decides its crop and flip. So
`ds.epoch(e).skip(k)` yields exactly elements k, k+1, ... of `ds.epoch(e)`
(`ds.epoch(e, start=k)` does the same without decoding the skipped ones), and
building the dataset twice yields identical tensors.

File names. Paths and names enter TensorFlow as the bytes the file system
holds (os.fsencode), so a name that is not UTF-8 (legal on Linux) is read like
any other; `os.fsdecode(name.numpy())` gives back the name Python uses.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from replication.data import transforms as tr
from replication.data.images import DECODERS, EXTENSIONS_TEXT, HalfSet, folder_set, sizes_text, tf_decode
from replication.data.layouts import UNPAIRED_SPLITS
from replication.data.sources import source_of
from replication.errors import DataError


# --------------------------------------------------------------------------- size checks


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
        raise DataError(f"{len(bad)} training image(s) do not fit: {tr.describe_sizes_ok(cfg)}. Found (WxH):\n{sizes_text(bad)}")


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
            f"(any size >= {multiple} works; it is cropped to {multiple}*k). Found (WxH):\n{sizes_text(bad)}"
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


def share_of_batches(steps: int, batch_size: int, part: int, parts: int) -> np.ndarray:
    """The element indices of the `part`-th contiguous share (of `parts`) of each of `steps` batches."""
    if batch_size % parts:
        raise DataError(f"data.batch_size {batch_size} must be a multiple of the {parts} workers.")
    share = batch_size // parts
    return np.arange(steps * batch_size, dtype=np.int64).reshape(steps, batch_size)[:, part * share : (part + 1) * share].ravel()


# --------------------------------------------------------------------------- datasets


def _fs_bytes(paths) -> list:
    """Paths (or names) as the bytes the file system holds: os.fsencode, spelled with str.encode so
    that autograph, tracing the tf.data functions that call it, has no Python function to convert."""
    return [p.encode(sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()) for p in paths]


def _image(s, index):
    """Image `index` of set `s` as a uint8 HxWx3 tensor inside the tf.data graph, by the image's own
    decoder (images.DECODERS): TensorFlow's for JPEG and 8-bit PNG, which run outside Python's GIL;
    Pillow's, through `tf.numpy_function`, for the other formats and for images kept in memory."""
    import tensorflow as tf

    if isinstance(s, HalfSet):  # a side-by-side pix2pix file: decode it whole, keep one half
        whole = _image(s.base, index)
        half = tf.shape(whole)[1] // 2
        return whole[:, :half] if s.side == "left" else whole[:, half : 2 * half]
    if s.cached or not any(s.decoders):
        return _pillow_image(s, index)
    codes = tf.constant([DECODERS.index(d) for d in s.decoders], tf.int32)
    paths = tf.constant(_fs_bytes(s.items), tf.string) if all(isinstance(item, str) for item in s.items) else None
    branches = [lambda: _pillow_image(s, index)] + [
        (lambda decoder=decoder: tf_decode(_encoded(s, index, paths), decoder)) for decoder in DECODERS[1:]
    ]
    img = tf.switch_case(tf.gather(codes, index), branches)
    img.set_shape([None, None, 3])
    return img


def _pillow_image(s, index):
    import tensorflow as tf

    img = tf.numpy_function(lambda i: s.load(int(i)), [index], tf.uint8, stateful=False)
    img.set_shape([None, None, 3])
    return img


def _encoded(s, index, paths):
    """The encoded file of image `index`: read by TensorFlow from its path in `paths` (the set's
    paths as one graph constant, shared by the decoder branches), or the bytes the set holds (TFDS)."""
    import tensorflow as tf

    if paths is not None:
        return tf.io.read_file(tf.gather(paths, index))
    blob = tf.numpy_function(lambda i: bytes(s.items[int(i)]), [index], tf.string, stateful=False)
    blob.set_shape([])
    return blob


class _Data:
    """What UnpairedData and PairedData share."""

    aligned = False  # True: a and b are pairs and get the same crop and flip

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

    def samples(self, n: int):
        """The first n test images per domain, no jitter, resized to crop x crop: two (n, crop, crop, 3) tensors."""
        import tensorflow as tf

        out = []
        for s in (self.test_a, self.test_b):
            k = min(int(n), len(s))
            if k == 0:
                out.append(tf.zeros([0, self.crop_size, self.crop_size, 3], tf.float32))
                continue
            imgs = [tr.resize_to_square(s.load(i), self.crop_size, self.cfg["resize_method"]) for i in range(k)]
            out.append(tf.stack(imgs))
        return out[0], out[1]

    def listings(self) -> dict:
        """{where: ImageSet.listing()} of each split's files (side-by-side files once, for both halves)."""
        sets = [s.base if isinstance(s, HalfSet) else s for s in (self.train_a, self.train_b, self.test_a, self.test_b)]
        return {s.where: s.listing() for s in sets}

    def plan(self, epoch: int):  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def epoch(self, epoch: int, start: int = 0, part: int = 0, parts: int = 1, batch_size: int | None = None):
        """Batches (a, b) of epoch `epoch`, from batch `start` on: float32 [-1, 1], static shapes, prefetched.

        `part` of `parts` (one worker of several): only the part-th contiguous share of every
        global batch, in batches of `batch_size` (default: the share).
        """
        import tensorflow as tf

        mine = share_of_batches(self.steps_per_epoch, self.batch_size, part, parts)[int(start) * (self.batch_size // parts):]
        idx_a, idx_b, seeds_a, seeds_b = (column[mine] for column in self.plan(epoch))
        cfg, train_a, train_b, aligned = self.cfg, self.train_a, self.train_b, self.aligned

        def element(i, j, sa, sb):
            a, b = _image(train_a, i), _image(train_b, j)
            if aligned:
                return tuple(tr.jitter([a, b], sa, cfg))  # the same crop and flip for A and B
            return tr.jitter([a], sa, cfg)[0], tr.jitter([b], sb, cfg)[0]

        ds = tf.data.Dataset.from_tensor_slices((idx_a, idx_b, seeds_a, seeds_b))
        ds = ds.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.batch(batch_size or self.batch_size // parts, drop_remainder=True)
        return ds.prefetch(tf.data.AUTOTUNE)


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

    aligned = True

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_a) // self.batch_size

    def plan(self, epoch: int):
        total = self.steps_per_epoch * self.batch_size
        idx = cycled_order(len(self.train_a), total, self.seed, epoch, 0)
        seeds = element_seeds(self.seed, epoch, total, 1)
        return idx, idx, seeds[:, 0], seeds[:, 0]


# --------------------------------------------------------------------------- building


def unpaired(cfg: dict) -> UnpairedData:
    """CycleGAN training data of a resolved `data:` section (see experiments/base.yaml)."""
    found = source_of(cfg).split_sets(cfg, UNPAIRED_SPLITS)
    sets = found.sets
    check_train_sizes([sets["trainA"], sets["trainB"]], cfg)
    data = UnpairedData(
        cfg, sets["trainA"], sets["trainB"], sets["testA"], sets["testB"], found.description, found.skipped
    )
    if data.steps_per_epoch == 0:
        raise DataError(
            f"{found.description}: {len(sets['trainA'])} / {len(sets['trainB'])} training images is fewer than "
            f"data.batch_size ({cfg['batch_size']}); lower the batch size or add images."
        )
    return data


def paired(cfg: dict) -> PairedData:
    """pix2pix training data: the same interface as `unpaired`, with a and b aligned."""
    found = source_of(cfg).pair_sets(cfg, ("train", "test"))
    (ta, tb), (sa, sb) = found.sets["train"], found.sets["test"]
    check_train_sizes([ta, tb], cfg)
    check_pair_sizes(ta, tb, cfg)
    data = PairedData(cfg, ta, tb, sa, sb, found.description, found.skipped)
    if data.steps_per_epoch == 0:
        raise DataError(
            f"{found.description}: {len(ta)} training pairs is fewer than data.batch_size ({cfg['batch_size']}); "
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

    def element(i, name):
        img = tr.center_crop_to_multiple(_image(s, i), multiple)
        return tr.to_unit_range(img)[tf.newaxis], name

    names = tf.constant(_fs_bytes(s.names), tf.string)  # read back with os.fsdecode
    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(s), dtype=np.int64), names))
    return ds.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def test_set(cfg: dict, domain: str, paired: bool = False):
    """The test images of one domain (validated), in fixed order.

    `paired`: the test pairs a paired model (pix2pix) is tested on, as `paired()` reads them:
    B holds the ground truth of A, image for image, after `data.direction`.
    """
    if domain not in ("A", "B"):
        raise DataError(f"domain must be 'A' or 'B', got {domain!r}.")
    if paired:
        a, b = source_of(cfg).pair_sets(cfg, ("test",)).sets["test"]
        return a if domain == "A" else b
    return source_of(cfg).split_sets(cfg, ("test" + domain,)).sets["test" + domain]


def test_images(data_cfg: dict, domain: str, multiple: int, paired: bool = False):
    """(image [1,H,W,3] float32 [-1,1], name) for every test image of `domain`, sorted, no jitter.

    Each side is rounded DOWN to a multiple of `multiple` (centre crop), as preprocess 'none'.
    `paired`: a paired model's test pairs (see `test_set`).
    """
    return _test_dataset(test_set(data_cfg, domain, paired), multiple)


def truth_pairs(cfg: dict, domain: str, multiple: int, phase: str = "test"):
    """(image, truth, name) for every `phase` image of `domain` and its true counterpart, as `test_images`.

    The truth is `<phase><domain>_truth/<name>` (synthetic set, your folders), the other half of a
    paired image (pix2pix, paired), or the other domain's file of the same name (cityscapes:
    photo and label map). Other data has no truth (DataError naming what is needed).
    """
    import tensorflow as tf

    images, truths = source_of(cfg).truth_sets(cfg, phase + domain)
    both = tf.data.Dataset.zip(_test_dataset(images, multiple), _test_dataset(truths, multiple))
    return both.map(lambda image, truth: (image[0], truth[0], image[1]))


test_images.__test__ = False  # not a pytest test, despite the name
test_set.__test__ = False


def folder_images(path, multiple: int, skip_bad_images: bool = False):
    """Like `test_images`, for a plain folder (nested or not); names are the relative paths."""
    s = folder_set(Path(path).expanduser(), f"a folder of images ({EXTENSIONS_TEXT}), nested or not")
    s.validate(skip_bad_images, keep=False)
    if len(s) == 0:
        raise DataError(f"Every image in {path} failed to decode.")
    return _test_dataset(s, multiple)

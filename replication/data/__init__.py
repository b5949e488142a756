"""Data: every dataset of the paper, the user's own folders and an embedded default, through one tf.data pipeline.

    from replication import data
    ds = data.unpaired(cfg["data"])      # CycleGAN; data.paired(...) for pix2pix
    for a, b in ds.epoch(epoch): ...     # float32 [-1, 1], (batch, crop, crop, 3)
    a, b = ds.samples(4)                 # fixed test images, no jitter
    data.test_images(cfg["data"], "A", multiple=4)   # (image[1,H,W,3], name), sorted
    data.truth_pairs(cfg["data"], "A", multiple=4)  # (image, its true counterpart, name)
    data.folder_images("photos/", multiple=4)
    data.write_synthetic("data/synthetic")            # the offline default
    print(data.check("my_dataset/"))

Sources (`data.source`): tfds (cycle_gan/<name>), folder, cityscapes (the
CycleGAN zip, checked and unpacked once), synthetic, pix2pix (published paired
sets, downloaded once), paired (your own side-by-side folder).
"""

from replication.data.check import Report, check
from replication.data.pipeline import (
    PairedData,
    UnpairedData,
    folder_images,
    paired,
    test_images,
    test_set,
    truth_pairs,
    unpaired,
)
from replication.data.preprocess import DEFAULTS, IMAGE_EXTENSIONS, MODES, RESIZE_METHODS, decode, settings
from replication.data.sources import (
    CITYSCAPES_SHA256,
    CITYSCAPES_URL,
    PIX2PIX_NAMES,
    PIX2PIX_URL,
    TFDS_NAMES,
    download,
    fetch,
)
from replication.data.synthetic import draw_pairs, make_scene, object_mask, render, write_synthetic

__all__ = [
    "CITYSCAPES_SHA256",
    "CITYSCAPES_URL",
    "DEFAULTS",
    "IMAGE_EXTENSIONS",
    "MODES",
    "PIX2PIX_NAMES",
    "PIX2PIX_URL",
    "PairedData",
    "RESIZE_METHODS",
    "Report",
    "TFDS_NAMES",
    "UnpairedData",
    "check",
    "decode",
    "download",
    "draw_pairs",
    "fetch",
    "folder_images",
    "make_scene",
    "object_mask",
    "paired",
    "render",
    "settings",
    "test_images",
    "test_set",
    "truth_pairs",
    "unpaired",
    "write_synthetic",
]

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

`cfg["data"]` is the resolved `data:` section (`config.resolve`; for a
dataset alone, `config.data_section(source=..., root=...)`).

Modules, in the order a config travels:
    sources     one DataSource per data.source (its row: choices.SOURCES), where its dataset is and how its splits are read
    tfds_source the tfds source: TFDS cycle_gan/<name>, prepared by TFDS
    downloads   fetch with a checksum, unpack once, fail fast when a host is unreachable
    layouts     the unpaired and paired folder layouts; images paired by file name
    images      listing folders (links followed, no folder read twice), Pillow decoding, one scan,
                ImageSet and HalfSet
    transforms  the TensorFlow training jitter and test-time crop
    pipeline    UnpairedData/PairedData (epochs planned in NumPy), test_images, folder_images
    check       `data check`: every problem of a folder, as a report
    synthetic   the embedded offline dataset
"""

from replication.data.check import Report, check
from replication.data.downloads import fetch
from replication.data.images import IMAGE_EXTENSIONS, decode
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
from replication.data.sources import (
    CITYSCAPES_SHA256,
    CITYSCAPES_URL,
    PIX2PIX_NAMES,
    PIX2PIX_URL,
    download,
)
from replication.data.synthetic import make_scene, object_mask, render, write_synthetic
from replication.data.tfds_source import TFDS_NAMES

__all__ = [
    "CITYSCAPES_SHA256",
    "CITYSCAPES_URL",
    "IMAGE_EXTENSIONS",
    "PIX2PIX_NAMES",
    "PIX2PIX_URL",
    "PairedData",
    "Report",
    "TFDS_NAMES",
    "UnpairedData",
    "check",
    "decode",
    "download",
    "fetch",
    "folder_images",
    "make_scene",
    "object_mask",
    "paired",
    "render",
    "test_images",
    "test_set",
    "truth_pairs",
    "unpaired",
    "write_synthetic",
]

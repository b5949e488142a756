"""FID and KID as `evaluate` computes them: InceptionV3's ImageNet weights (found at hand or downloaded),
its pool features of the translations and of the real test images of the target domain, and the test-set
sizes below which they are left out unless asked for. The distances themselves are metrics.py's."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from replication import data as data_lib
from replication import metrics
from replication.choices import DIRECTIONS
from replication.errors import MetricNotAvailable
from replication.logs import bar
from replication.metrics import row
from replication.pixels import to_uint8, to_unit

INCEPTION_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_URL = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/" + INCEPTION_FILE
INCEPTION_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"  # keras.applications' own check of that file
INCEPTION_SIZE = 299


# Below these many images per side (translations and real target images), `evaluate` leaves the
# metric out unless asked for. FID compares 2048x2048 feature covariances: with fewer images than
# features they are singular and FID is biased upwards by an amount that depends on the model, so
# two runs' FIDs are only comparable on the same number of images (Binkowski et al. 2018, Chong and
# Forsyth 2020). KID is unbiased at any size, but its spread over subsets grows as 1/sqrt(n): below
# about 100 images it swamps the differences between runs.
FID_MIN_IMAGES = 2048
KID_MIN_IMAGES = 100


def feature_metrics_by_size(translations: dict, data_cfg: dict, ask: str) -> tuple[dict, list]:
    """({direction: the feature metrics its test set is large enough for}, notes) for the default run."""
    wanted, small = {}, {}
    for direction, outputs in translations.items():
        count = min(len(outputs), len(data_lib.test_set(data_cfg, DIRECTIONS[direction][1]).names))
        wanted[direction] = ("FID", "KID") if count >= FID_MIN_IMAGES else ("KID",) if count >= KID_MIN_IMAGES else ()
        if count < FID_MIN_IMAGES:
            small[direction] = count
    if not small:
        return wanted, []
    counts = ", ".join(f"{d} {n}" for d, n in small.items())
    left_out = "FID left out" if all(wanted.values()) else "FID and KID left out" if not any(wanted.values()) else "FID (and KID where fewer than 100) left out"
    return {d: m for d, m in wanted.items() if m}, [
        f"{left_out}: the test sets have {counts} images per side; by default FID needs {FID_MIN_IMAGES} "
        f"(below it, its covariances are singular and it is biased by the model) and KID {KID_MIN_IMAGES} "
        f"(below it, its spread swamps the differences between runs). Ask for both with `{ask}`."
    ]


def inception_weights(path=None, fetch=None, download: bool = True) -> Path:
    """The InceptionV3 ImageNet weights file: `path`, Keras' cached copy (~/.keras/models/), or
    (with `download`) Keras' download into that cache."""
    if path:
        path = Path(path).expanduser()
        if not path.is_file():
            raise MetricNotAvailable(f"--inception-weights {path}: no such file. It should be Keras' {INCEPTION_FILE}.")
        return path
    if not download:
        cached = inception_cache() / INCEPTION_FILE
        if cached.is_file():
            return cached
        raise MetricNotAvailable(
            f"InceptionV3's ImageNet weights are not in {inception_cache()}/ and evaluate downloads nothing unless "
            f"asked: pass --metrics with fid to download them (92 MB), or --inception-weights PATH."
        )
    import keras

    fetch = fetch or keras.utils.get_file
    try:
        return Path(fetch(INCEPTION_FILE, INCEPTION_URL, cache_subdir="models", file_hash=INCEPTION_MD5))
    except Exception:  # noqa: BLE001 - offline, a proxy, a broken cache: all end in the same advice
        raise MetricNotAvailable(
            f"FID/KID need InceptionV3's ImageNet weights and they could not be downloaded: put "
            f"{INCEPTION_FILE} (from {INCEPTION_URL}) into ~/.keras/models/, or pass --inception-weights PATH."
        ) from None


def inception_cache() -> Path:
    """Where keras.utils.get_file keeps the weights: $KERAS_HOME/models, else ~/.keras/models."""
    return Path(os.environ.get("KERAS_HOME") or Path("~/.keras").expanduser()) / "models"


def inception_network(weights_path, builder=None):
    """InceptionV3 without its top, average-pooled 2048-d features, on 299x299 images."""
    import keras

    builder = builder or keras.applications.InceptionV3
    try:
        return builder(include_top=False, pooling="avg", weights=str(weights_path), input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    except (ValueError, OSError) as err:
        raise MetricNotAvailable(f"{weights_path} is not the InceptionV3 weights file {INCEPTION_FILE}: {err}") from None


def image_features(images, network, batch_size: int = 16, progress: bool = False, description: str = "features") -> np.ndarray:
    """[N, D] features of uint8 HxWx3 images, each resized to the network's input size and put in [-1, 1]."""
    size = network.input_shape[1:3]
    if None in size:
        size = (INCEPTION_SIZE, INCEPTION_SIZE)
    features = []
    images = list(images)
    starts = range(0, len(images), batch_size)
    for start in bar(starts, len(starts), description, progress, unit="batch"):
        batch = [tf.image.resize(tf.cast(x, tf.float32), size, method="bilinear") for x in images[start : start + batch_size]]
        batch = to_unit(tf.stack(batch))  # InceptionV3's own input range (its preprocess_input)
        features.append(np.asarray(network(batch, training=False), np.float64))
    return np.concatenate(features)


def fid_rows(translations: dict, data_cfg: dict, network, wanted: dict | None = None, progress: bool = False) -> list:
    """FID and KID rows of each direction in `wanted` ({direction: ("FID", "KID")}; default all of both)."""
    rows = []
    for direction, outputs in translations.items():
        names = wanted[direction] if wanted is not None else ("FID", "KID")
        if not names:
            continue
        target = DIRECTIONS[direction][1]
        real = [to_uint8(image)[0] for image, _ in data_lib.test_images(data_cfg, target, 1)]
        fake_features = image_features(outputs.values(), network, progress=progress, description=f"features {direction}")
        real_features = image_features(real, network, progress=progress, description=f"features real {target}")
        where = (f"{len(fake_features)} translations vs the {len(real_features)} real test {target} images, Keras InceptionV3 "
                 f"pool features ({fake_features.shape[1]}-d, {INCEPTION_SIZE}x{INCEPTION_SIZE})")
        if "FID" in names:
            fid = metrics.frechet_distance(fake_features, real_features)
            rows.append(row("FID", direction, fid, f"Frechet distance, {where} (lower is better)"))
        if "KID" in names:
            subset = min(1000, max(2, min(len(fake_features), len(real_features)) // 2))
            kid, kid_std = metrics.kernel_inception_distance(fake_features, real_features, subsets=100, subset_size=subset)
            rows.append(row("KID", direction, kid, f"kernel inception distance, unbiased MMD^2, mean and std over 100 subsets of {subset}, {where} (lower is better)", std=kid_std))
    return rows


def feature_rows(translations, data_cfg, explicit: bool, groups, weights_path, feature_network, progress) -> tuple[list, list]:
    """FID and KID: as asked (`explicit`), or by default only where the test sets are large enough
    and the InceptionV3 weights are at hand (never downloaded then); (rows, notes)."""
    if explicit:
        wanted, notes = None, []
    else:
        ask = f"--metrics {' '.join(groups)}"
        wanted, notes = feature_metrics_by_size(translations, data_cfg, ask)
        if not wanted:
            return [], notes
    try:
        network = feature_network or inception_network(inception_weights(weights_path, download=explicit))
    except MetricNotAvailable as err:
        if explicit:
            raise
        return [], notes + [f"FID/KID left out: {err}"]
    return fid_rows(translations, data_cfg, network, wanted, progress), notes

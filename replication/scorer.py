"""The kit's Cityscapes scorer: a small segmentation network standing in for the paper's FCN (Table 2).

The paper scores generated street photos (labels -> photo) by segmenting them
with an FCN trained on Cityscapes and comparing with the input label maps.
That FCN cannot be had, so the kit trains its own: the paper's generator
blocks (c7s1, d, R, u) ending in 19 class scores, trained on the training
photos against their label maps (colours read as the 19 training classes by
the palette, replication/metrics.py). `make cityscapes-scorer` trains it
(GPU work) and saves it beside the data; `evaluate` then labels generated
photos with it. Its absolute numbers are not the FCN's: the scorer's own
score on the real photos (the ceiling) says how far it can see.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from replication import data as data_lib
from replication import metrics
from replication.data import sources
from replication.errors import KitError
from replication.files import atomic_replace, atomic_write_text
from replication.layers import InputSizeCheck, R, c7s1, conv, d, to_float32, u
from replication.pixels import to_uint8

SCORER_FILE = "cityscapes_scorer.keras"
SCORER_NOTE = "cityscapes_scorer.json"


def location(cfg: dict) -> Path:
    """The folder the Cityscapes data lives in (the scorer is kept there)."""
    if cfg["source"] == "cityscapes" or (cfg["source"] == "pix2pix" and cfg["name"] == "cityscapes"):
        return sources.source_of(cfg).root(cfg)
    raise KitError(f"The Cityscapes scorer needs the Cityscapes data (data.source: cityscapes), not data.source {cfg['source']}.")


def build(width: int = 32, n_blocks: int = 4) -> keras.Model:
    """c7s1-w, d2w, d4w, R4w x n_blocks, u2w, uw, then a 1x1 conv to the 19 class scores (logits)."""
    photo = keras.Input(shape=(None, None, 3), name="photo")
    x = InputSizeCheck(multiple=4, minimum=8)(photo)
    x = c7s1(x, width)
    x = d(x, 2 * width)
    x = d(x, 4 * width)
    for _ in range(n_blocks):
        x = R(x, 4 * width)
    x = u(x, 2 * width)
    x = u(x, width)
    x = conv(x, metrics.N_CLASSES, 1)
    return keras.Model(photo, to_float32(x, name="class_scores"), name="cityscapes_scorer")


def training_data(data_cfg: dict, size: int, batch_size: int, seed: int = 0) -> tf.data.Dataset:
    """(photo [B,size,size,3] in [-1, 1], class ids [B,size,size], -1 where ignored) from the training split."""
    def class_ids(labels):
        return metrics.truth_classes(to_uint8(labels)).astype(np.int32)

    def prepare(photo, labels, name):
        photo = tf.image.resize(photo[0], [size, size], method="bilinear")
        labels = tf.image.resize(labels[0], [size, size], method="nearest")
        ids = tf.numpy_function(class_ids, [labels], tf.int32, stateful=False)
        ids.set_shape([size, size])
        flip = tf.random.uniform([], seed=seed) < 0.5
        photo = tf.cond(flip, lambda: tf.reverse(photo, [1]), lambda: photo)
        ids = tf.cond(flip, lambda: tf.reverse(ids, [1]), lambda: ids)
        return photo, ids

    pairs = photos_and_label_maps(data_cfg, 1, phase="train")
    return (
        pairs.shuffle(512, seed=seed, reshuffle_each_iteration=True)
        .map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def train(data_cfg: dict, epochs: int = 20, size: int = 256, batch_size: int = 8, steps_per_epoch=None, width: int = 32) -> dict:
    """Train the scorer, save it beside the data, score it on the real test photos; returns its note."""
    folder = location(data_cfg)
    keras.utils.set_random_seed(0)
    scorer = build(width)
    scorer.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=metrics.IGNORED),
    )
    dataset = training_data(data_cfg, size, batch_size)
    if steps_per_epoch:
        dataset = dataset.repeat().take(int(steps_per_epoch) * int(epochs))
    history = scorer.fit(dataset, epochs=int(epochs), steps_per_epoch=steps_per_epoch, shuffle=False, verbose=2)
    with atomic_replace(folder / SCORER_FILE) as tmp:
        scorer.save(tmp)
    note = {
        "what": "the kit's Cityscapes scorer (not the paper's FCN): photos -> the 19 training classes",
        "trained_on": "the training photos and label maps",
        "epochs": int(epochs), "size": int(size), "batch_size": int(batch_size), "width": int(width),
        "final_loss": float(history.history["loss"][-1]),
        "ceiling": ceiling(scorer, data_cfg),
    }
    atomic_write_text(folder / SCORER_NOTE, json.dumps(note, indent=2) + "\n")
    return note


def photos_and_label_maps(data_cfg: dict, multiple: int, phase: str = "test"):
    """(photo, its label map, name) of every `phase` photo: the photos are domain A, or B when data.direction is BtoA."""
    return data_lib.truth_pairs(data_cfg, photo_domain(data_cfg), multiple, phase=phase)


def photo_domain(data_cfg: dict) -> str:
    """The kit's domain that holds the Cityscapes photos (the dataset stores them as A)."""
    return "A" if data_cfg["direction"] == "AtoB" else "B"


def ceiling(scorer: keras.Model, data_cfg: dict) -> dict:
    """The scorer's FCN-score numbers on the real test photos against their label maps."""
    confusion = np.zeros((metrics.N_CLASSES,) * 2, np.int64)
    for photo, labels, name in photos_and_label_maps(data_cfg, 4):
        truth = metrics.truth_classes(to_uint8(labels)[0])
        confusion += metrics.confusion_matrix(truth, segment(scorer, photo, os.fsdecode(name.numpy())))
    return metrics.segmentation_scores(confusion)


def load(data_cfg: dict) -> keras.Model | None:
    """The trained scorer, or None when `make cityscapes-scorer` has not run."""
    path = location(data_cfg) / SCORER_FILE
    if not path.exists():
        return None
    return keras.models.load_model(path)


def segment(scorer: keras.Model, photo, name: str = "a photo") -> np.ndarray:
    """int64 HxW class ids of one photo, [1,H,W,3] in [-1, 1] (sides multiples of 4), within the
    memory free now as translate runs a generator (in tiles if need be)."""
    from replication.tiling import translate_whole  # one home for running a network within the memory there is

    scores = translate_whole(lambda x: scorer(x, training=False), scorer, np.asarray(photo, np.float32)[0], name)
    return np.argmax(scores, axis=-1).astype(np.int64)

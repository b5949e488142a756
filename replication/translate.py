"""Translate a folder of images with a trained generator, at the images' own resolution."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from replication import config as config_lib
from replication import data as data_lib
from replication import networks
from replication.cyclegan import build_generator
from replication.errors import KitError
from replication.figures import to_uint8

DIRECTIONS = {"AtoB": ("G", "G_AtoB.keras"), "BtoA": ("F", "F_BtoA.keras")}


def load_generator(run_dir=None, model_file=None, direction="AtoB") -> keras.Model:
    """The exported `.keras` file, or the generator of a run's latest checkpoint if it has not finished."""
    if direction not in DIRECTIONS:
        raise KitError(f"--direction must be AtoB or BtoA, not {direction!r}.")
    if model_file:
        return load_model_file(Path(model_file))
    run_dir = Path(run_dir)
    name, exported = DIRECTIONS[direction]
    if (run_dir / "export" / exported).exists():
        return load_model_file(run_dir / "export" / exported)
    if not (run_dir / "config.yaml").exists():
        raise KitError(f"{run_dir} is not a run folder (no config.yaml). Pass the folder that `train` wrote, e.g. runs/horse2zebra.")
    latest = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    if latest is None:
        raise KitError(f"{run_dir} has no exported model and no checkpoint yet; train it first.")
    generator = build_generator(config_lib.load(run_dir / "config.yaml")["model"])
    tf.train.Checkpoint(**{name: generator}).restore(latest).expect_partial()
    return generator


def load_model_file(path: Path) -> keras.Model:
    if not path.exists():
        raise KitError(f"No model file {path}. Pass a .keras file written by `train` (runs/<name>/export/).")
    try:
        return keras.models.load_model(path)
    except Exception as err:  # a corrupt or foreign file; Keras' own message says which
        raise KitError(f"Could not load {path} as a Keras model: {err}") from None


def translate_folder(generator: keras.Model, input_dir, output_dir) -> list[Path]:
    """Translate every image under `input_dir` into `output_dir`, keeping relative names."""
    output_dir = Path(output_dir)
    written = []
    for image, name in data_lib.folder_images(input_dir, networks.size_multiple(generator)):
        out = to_uint8(generator(image, training=False))[0]
        path = output_dir / name.numpy().decode()
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(out).save(path)
        written.append(path)
    return written

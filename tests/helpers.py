"""What several test files share: the tiny CycleGAN config and model, reading a run's logs and export,
and tiny datasets whose pixels say where they came from.

`index_image(i)` is a solid image whose red value is 10 * i, so a test can read back which file the
pipeline picked. `gradient_image(h, w)` has red = 8x and green = 8y (x, y the column and row), so a
crop's offset and a flip can be read from its pixels.

Imported as `helpers` (pytest puts tests/ on the path), the one spelling, so it is loaded once.
The fixtures shared across files are in conftest.py.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from replication import config as config_lib
from replication import models

SIZE = 32
ROOT = Path(__file__).resolve().parent.parent


def tiny_overrides(root=None) -> list:
    """The demo experiment shrunk to 32x32 images, a few filters, one R block and the 16x16
    PatchGAN (a fifth fewer ops to trace than the 70x70: most of a tiny run's time is tracing)."""
    return [
        f"data.root={root}", f"data.load_size={SIZE + 4}", f"data.crop_size={SIZE}",
        "model.generator=resnet", "model.ngf=4", "model.ndf=4", "model.n_blocks=1", "model.n_layers_d=1",
        "train.pool_size=3", "train.epochs=2", "train.epochs_decay=1", "train.log_every=1",
        "train.n_samples=2", "train.max_steps_per_epoch=3", "train.save_epoch_freq=1",
        "train.jit_compile=false", "train.precision=float32", "train.steps_per_call=1", "train.eval_every=0",
    ]


def tiny_config(root=None, *overrides):
    """The demo experiment as `tiny_overrides` shrinks it."""
    return config_lib.resolve("demo", [*tiny_overrides(root), *overrides])


def tiny_sets(root, *overrides) -> list:
    """The tiny config as the command line gives it: --set KEY=VALUE ... after `train demo`."""
    return [arg for override in (*tiny_overrides(root), *overrides) for arg in ("--set", override)]


def kit(*args, cwd, timeout=120, popen=False, **env):
    """`python -m replication ARGS` from the folder `cwd`, as a user's shell runs it: no TensorFlow
    settings in the environment (the test session's are removed), this checkout's package.
    Finished (capture_output, text), or with popen, started with stdout and stderr on one pipe."""
    environment = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES")}
    environment.update(PYTHONPATH=str(ROOT), **env)
    command = [sys.executable, "-m", "replication", *args]
    if popen:
        return subprocess.Popen(command, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout)


def images(seed, batch=1):
    return tf.random.stateless_uniform((batch, SIZE, SIZE, 3), (seed, 1), -1.0, 1.0)


def build(config, strategy=None, precision="float32", conv_gradients="native"):
    keras.utils.set_random_seed(0)
    with (strategy or tf.distribute.get_strategy()).scope():
        return models.build(config, precision, conv_gradients)


# ---------------------------------------------------------------- a run's files


def loss_rows(run_dir):
    with open(run_dir / "losses.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "wall_time"} for row in csv.DictReader(f)]


def exported_weights(run_dir, names=("G_AtoB", "F_BtoA")):
    return [w for name in names for w in keras.models.load_model(run_dir / "export" / f"{name}.keras").get_weights()]


def assert_trained_alike(run_dir, reference, generators=("G_AtoB", "F_BtoA"), epochs=(1, 2, 3)):
    """Two runs trained alike: the same losses.csv rows (wall time aside), exported weights and samples of `epochs`."""
    assert loss_rows(run_dir) == loss_rows(reference)
    for a, b in zip(exported_weights(run_dir, generators), exported_weights(reference, generators)):
        np.testing.assert_array_equal(a, b)
    for epoch in epochs:
        with np.load(run_dir / "samples" / f"epoch_{epoch:03d}.npz") as a, np.load(reference / "samples" / f"epoch_{epoch:03d}.npz") as b:
            np.testing.assert_array_equal(a["fake_B"], b["fake_B"])


def experiment_file(folder: Path, config: dict) -> Path:
    """A resolved config as an experiment file that every worker's command can name."""
    path = Path(folder) / "experiment.yaml"
    config = {key: value for key, value in config.items() if key != "name"}  # an experiment file's name is its file's
    config_lib.save(config, path)
    return path


def loss_numbers(run_dir) -> np.ndarray:
    """losses.csv's numbers, [steps, columns] (step, epoch, the losses, lr)."""
    return np.array([[float(v) for v in row.values()] for row in loss_rows(run_dir)])


def assert_workers_trained_as_one(workers_run, one_run, generators=("G_AtoB", "F_BtoA"), lr=0.0002):
    """Several workers trained as one worker of their global batch: steps 1-2 to float32 rounding
    (the workers sum their gradients in another order), the whole run within what that rounding
    explains. Adam's first updates are about +-lr whatever a gradient's size, so rounding that flips
    one moves that weight by up to 2 lr a step; the losses drift apart by a fraction of a percent."""
    workers, one = loss_numbers(workers_run), loss_numbers(one_run)
    assert workers.shape == one.shape
    np.testing.assert_allclose(workers[:2], one[:2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(workers, one, rtol=2e-3, atol=1e-5)
    difference = [np.abs(a - b).max() for a, b in zip(exported_weights(workers_run, generators), exported_weights(one_run, generators))]
    assert max(difference) <= 2 * lr * len(one)


def pixels(path) -> np.ndarray:
    """An image file as uint8 HxWx3."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def patch_calls(monkeypatch, around_call):
    """Wrap the loop's compiled call: `around_call(first_step, count, call)` runs it and returns its losses.

    Returns the list of compiled call functions the loop built, to inspect their tracing.
    """
    import replication.training as training

    real_compile = training.compile_steps
    compiled = []

    def compile_and_wrap(*args):
        call = real_compile(*args)
        compiled.append(call)
        return lambda batches, first, count: around_call(int(first), int(count), lambda: call(batches, first, count))

    monkeypatch.setattr(training, "compile_steps", compile_and_wrap)
    return compiled


# ---------------------------------------------------------------- tiny datasets


def save(path, arr: np.ndarray, **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(path, **kwargs)
    return path


def index_image(i: int, size: int = 8, channel: int = 0) -> np.ndarray:
    arr = np.full((size, size, 3), 5, np.uint8)
    arr[..., channel] = 10 * i
    return arr


def gradient_image(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([8 * x, 8 * y, np.full_like(x, 40)], axis=-1).astype(np.uint8)


def write_unpaired(root, counts=(5, 3, 2, 2), size=8, indexed=True) -> Path:
    """ROOT/trainA trainB testA testB with counts images each; A encodes its index in red, B in green."""
    root = Path(root)
    for split, n in zip(("trainA", "trainB", "testA", "testB"), counts):
        channel = 0 if split.endswith("A") else 1
        for i in range(n):
            arr = index_image(i, size, channel) if indexed else np.random.default_rng(i).integers(0, 256, (size, size, 3))
            save(root / split / f"{i:03d}.png", arr)
    return root


def read_index(batch, channel: int = 0) -> list[int]:
    """Indices encoded by `index_image` in a float [-1, 1] batch (N, H, W, 3)."""
    values = (np.asarray(batch)[:, 0, 0, channel] + 1.0) * 127.5
    return [int(round(v / 10.0)) for v in values]

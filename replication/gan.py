"""What every GAN model of the kit shares: network builders, Adam, the update step, the float32 export.

CycleGAN (replication/cyclegan.py) and pix2pix build their networks, their
optimizers and their exports through these functions, so the choices the
paper fixes (Adam's betas, loss scaling under mixed_float16, float32
exports that load anywhere) are written once.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import keras
import tensorflow as tf

from replication import machine, networks
from replication.errors import ConfigError
from replication.io import atomic_replace, atomic_write_text

MANIFEST = "manifest.json"


def build_generator(model_cfg: dict) -> keras.Model:
    if model_cfg["generator"] == "resnet":
        return networks.resnet_generator(model_cfg["n_blocks"], model_cfg["ngf"], model_cfg["upsample"])
    if model_cfg["generator"] == "unet":
        return networks.unet_generator(model_cfg["num_downs"], model_cfg["ngf"], model_cfg["generator_norm"])
    raise ConfigError(f"Unknown model.generator '{model_cfg['generator']}': choose 'resnet' or 'unet'.")


def build_discriminator(model_cfg: dict, in_channels: int = 3) -> keras.Model:
    """PatchGAN or PixelGAN; `in_channels` 6 makes pix2pix's conditional D (input and output stacked)."""
    norm = model_cfg["discriminator_norm"]
    if model_cfg["discriminator"] == "patchgan":
        return networks.patchgan_discriminator(model_cfg["n_layers_d"], model_cfg["ndf"], in_channels, norm)
    if model_cfg["discriminator"] == "pixel":
        return networks.pixel_discriminator(model_cfg["ndf"], in_channels, norm)
    raise ConfigError(f"Unknown model.discriminator '{model_cfg['discriminator']}': choose 'patchgan' or 'pixel'.")


def adam(train_cfg: dict, precision: str = "float32") -> keras.optimizers.Optimizer:
    """Adam(lr 2e-4, beta1 0.5, beta2 0.999) (paper §7.1), loss-scaled under mixed_float16 only
    (`precision` is the Keras policy the networks were built under; bfloat16 needs no scaling)."""
    optimizer = keras.optimizers.Adam(
        float(train_cfg["lr"]), beta_1=float(train_cfg["beta_1"]), beta_2=float(train_cfg["beta_2"])
    )
    return keras.optimizers.LossScaleOptimizer(optimizer) if machine.loss_scaling(precision) else optimizer


def scaled_loss(loss, optimizer):
    """What this replica differentiates: its mean loss over the replicas (Keras sums their
    gradients), times the loss scale under mixed_float16. Call it inside the tape."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return optimizer.scale_loss(loss / replicas)


def apply_gradients(tape: tf.GradientTape, scaled, optimizer, variables) -> None:
    """One update from a `scaled_loss` (the optimizer unscales under mixed_float16)."""
    grads = tape.gradient(scaled, variables)
    optimizer.apply_gradients(zip(grads, variables))


@contextmanager
def dtype_policy(name: str):
    """Keras layers built inside take the policy `name` (float32, mixed_float16, mixed_bfloat16)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def export_float32(model: keras.Model, model_cfg: dict, path: Path) -> None:
    """Write the generator rebuilt with a float32 policy (it loads and runs anywhere)."""
    with dtype_policy("float32"):
        copy = build_generator(model_cfg)
    copy.set_weights(model.get_weights())
    with atomic_replace(path) as tmp:
        copy.save(tmp)


def export_generators(
    folder: Path, model_type: str, generators: dict, model_cfg: dict, training_mode_at_test: bool, **trained
) -> dict:
    """Each direction's generator as `<name>_<direction>.keras`, plus `manifest.json` saying which is which.

    generators: {direction: (checkpoint name, keras model)}; `trained`: step and epoch, recorded as
    they are. Returns {direction: path}.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths, entries = {}, {}
    for direction, (name, model) in generators.items():
        paths[direction] = folder / f"{name}_{direction}.keras"
        export_float32(model, model_cfg, paths[direction])
        entries[direction] = {"keras": paths[direction].name}
    manifest = {
        "model": model_type,
        "generators": entries,
        "input_range": [-1, 1],
        "size_multiple": networks.size_multiple(next(iter(generators.values()))[1]),
        "training_mode_at_test": training_mode_at_test,
        **trained,
    }
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return paths

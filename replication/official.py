"""The official PyTorch code's networks (junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py)
read from their state dicts into the kit's Keras networks, which are the same layers in the same order.

The architecture is read from the keys and shapes, never from a file name:
  ResnetGenerator        model.1 (7x7 conv), model.{10+i}.conv_block.{1,5}: n blocks, ngf
  UnetGenerator          model.model.0, nested model.model.1(.model.3)*: num_downs (128: 7, 256: 8), ngf
  NLayerDiscriminator    model.0, model.{3n-1}: the PatchGAN's n_layers (3: 70x70), ndf, its input channels
  PixelDiscriminator     net.0, net.2, net.5
A norm layer with a weight is batch norm (its running statistics are kept); one without is instance
norm, which has no learned values: the official code builds it with affine=False,
track_running_stats=False, so its convolutions keep their biases, and the running_mean/running_var
keys of files saved before PyTorch 0.4 are dropped as its BaseModel.load_networks drops them.

PyTorch keeps convolution kernels as (out, in, kh, kw) and ConvTranspose2d kernels as
(in, out, kh, kw); Keras as (kh, kw, in, out) and (kh, kw, out, in): one transpose serves both.
The transposed convolutions' padding (padding=1, output_padding=1 in the ResNet, padding=1 in the
U-Net) is the kit's own (layers.conv_transpose).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from replication import config as config_lib
from replication import gan
from replication.pth import PthError

CONV, TRANSPOSED, BATCH_NORM, INSTANCE_NORM = "conv", "transposed", "batch_norm", "instance_norm"
IGNORED_NORM_KEYS = ("running_mean", "running_var", "num_batches_tracked")  # of instance norm, before PyTorch 0.4


@dataclass(frozen=True)
class Slot:
    """One layer of the official network: its key prefix, what it is, and whether it has a bias."""

    prefix: str
    kind: str
    bias: bool = False

    def keys(self) -> tuple[str, ...]:
        if self.kind in (CONV, TRANSPOSED):
            return (f"{self.prefix}.weight",) + ((f"{self.prefix}.bias",) if self.bias else ())
        if self.kind == BATCH_NORM:
            return tuple(f"{self.prefix}.{name}" for name in ("weight", "bias", "running_mean", "running_var"))
        return ()

    def optional_keys(self) -> tuple[str, ...]:
        if self.kind == BATCH_NORM:
            return (f"{self.prefix}.num_batches_tracked",)
        if self.kind == INSTANCE_NORM:
            return tuple(f"{self.prefix}.{name}" for name in IGNORED_NORM_KEYS)
        return ()


@dataclass(frozen=True)
class Architecture:
    """What a state dict holds: a generator or a discriminator, its model keys in the kit's config, its layers."""

    role: str  # "generator" or "discriminator"
    model: dict  # the model: section's keys that build it
    slots: tuple
    described: str
    in_channels: int = 3

    def build(self) -> keras.Model:
        """The kit's network for it, in float32, with the weights the kit would draw (load_weights sets them)."""
        # base.yaml's model section below the keys read from the file: whatever else a builder reads
        # takes its default; dropout has no weights, so a network without it takes the same ones.
        config = {**config_lib.load_chain(config_lib.BASE)["model"], **self.model, "upsample": "transpose", "dropout": 0.0}
        with gan.dtype_policy("float32"):
            if self.role == "generator":
                return gan.build_generator(config)
            return gan.build_discriminator(config, self.in_channels)


def norm_slot(prefix: str, norm: str) -> Slot:
    return Slot(prefix, BATCH_NORM if norm == "batch" else INSTANCE_NORM)


def resnet_slots(n_blocks: int, norm: str) -> list:
    """c7s1, d, d, R x n, u, u, c7s1-3: official ResnetGenerator's Sequential indices, in the kit's layer order."""
    bias = norm != "batch"
    slots = [Slot("model.1", CONV, bias), norm_slot("model.2", norm)]
    for index in (4, 7):
        slots += [Slot(f"model.{index}", CONV, bias), norm_slot(f"model.{index + 1}", norm)]
    for block in range(n_blocks):
        prefix = f"model.{10 + block}.conv_block"
        slots += [Slot(f"{prefix}.1", CONV, bias), norm_slot(f"{prefix}.2", norm),
                  Slot(f"{prefix}.5", CONV, bias), norm_slot(f"{prefix}.6", norm)]
    for index in (10 + n_blocks, 13 + n_blocks):
        slots += [Slot(f"model.{index}", TRANSPOSED, bias), norm_slot(f"model.{index + 1}", norm)]
    return slots + [Slot(f"model.{17 + n_blocks}", CONV, True)]


def unet_level(level: int) -> str:
    """The prefix of the U-Net block `level` steps below the outermost (UnetSkipConnectionBlock nesting)."""
    return "model.model.1" + ".model.3" * (level - 1)


def unet_slots(num_downs: int, norm: str) -> list:
    """The encoder's convolutions (and norms) down, then the decoder's up, as networks.unet_generator builds them."""
    bias = norm != "batch"
    innermost = num_downs - 1
    slots = [Slot("model.model.0", CONV, bias)]
    for level in range(1, num_downs):
        slots.append(Slot(f"{unet_level(level)}.model.1", CONV, bias))
        if level != innermost:
            slots.append(norm_slot(f"{unet_level(level)}.model.2", norm))
    for level in reversed(range(1, num_downs)):
        up = 3 if level == innermost else 5  # innermost: [relu, down, relu, up, norm]; else [relu, down, norm, sub, relu, up, norm]
        slots += [Slot(f"{unet_level(level)}.model.{up}", TRANSPOSED, bias), norm_slot(f"{unet_level(level)}.model.{up + 1}", norm)]
    return slots + [Slot("model.model.3", TRANSPOSED, True)]


def patchgan_slots(n_layers: int, norm: str) -> list:
    """C64 (no norm), n_layers Ck with norm (the last of stride 1), then the 1-channel conv."""
    bias = norm != "batch"
    slots = [Slot("model.0", CONV, True)]
    for n in range(1, n_layers + 1):
        slots += [Slot(f"model.{3 * n - 1}", CONV, bias), norm_slot(f"model.{3 * n}", norm)]
    return slots + [Slot(f"model.{3 * n_layers + 2}", CONV, True)]


def pixel_slots(norm: str) -> list:
    bias = norm != "batch"
    return [Slot("net.0", CONV, True), Slot("net.2", CONV, bias), norm_slot("net.3", norm), Slot("net.5", CONV, bias)]


def four_dimensional(state: dict) -> int:
    return sum(1 for name, value in state.items() if name.endswith(".weight") and value.ndim == 4)


def norm_of(state: dict, key: str) -> str:
    return "batch" if key in state else "instance"


def architecture(state: dict, path) -> Architecture:
    """The official network the state dict is of, checked key by key against the kit's; one PthError line if it is none."""
    def first(key):
        return state[key] if key in state and state[key].ndim == 4 else None

    if first("model.1.weight") is not None and "model.0.weight" not in state:
        ngf, channels = state["model.1.weight"].shape[:2]
        n_blocks = sum(1 for name in state if name.endswith(".conv_block.1.weight"))
        norm = norm_of(state, "model.2.weight")
        if norm == "batch":
            raise PthError(f"{path}: model.2.weight (batch norm in a ResNet generator) does not fit: the kit's ResNet "
                           "generators use instance norm, as the official CycleGAN does.")
        model = {"generator": "resnet", "n_blocks": n_blocks, "ngf": int(ngf)}
        arch = Architecture("generator", model, tuple(resnet_slots(n_blocks, norm)), f"ResNet-{n_blocks} generator, ngf {ngf}, instance norm", int(channels))
    elif first("model.model.0.weight") is not None:
        ngf, channels = state["model.model.0.weight"].shape[:2]
        num_downs = four_dimensional(state) // 2
        norm = norm_of(state, "model.model.1.model.2.weight")
        if num_downs < 5:
            raise PthError(f"{path}: a U-Net of {num_downs} levels does not fit: the kit builds U-Nets of 5 levels or more.")
        model = {"generator": "unet", "num_downs": num_downs, "ngf": int(ngf), "generator_norm": norm}
        arch = Architecture("generator", model, tuple(unet_slots(num_downs, norm)), f"U-Net-{2 ** num_downs} generator, ngf {ngf}, {norm} norm", int(channels))
    elif first("model.0.weight") is not None and state["model.0.weight"].shape[2:] == (4, 4):
        ndf, channels = state["model.0.weight"].shape[:2]
        n_layers = four_dimensional(state) - 2
        norm = norm_of(state, "model.3.weight")
        if n_layers < 1:
            raise PthError(f"{path}: a PatchGAN without a middle layer does not fit the kit's.")
        model = {"discriminator": "patchgan", "n_layers_d": n_layers, "ndf": int(ndf), "discriminator_norm": norm}
        arch = Architecture("discriminator", model, tuple(patchgan_slots(n_layers, norm)), f"PatchGAN n_layers {n_layers}, ndf {ndf}, {norm} norm", int(channels))
    elif first("net.0.weight") is not None and state["net.0.weight"].shape[2:] == (1, 1):
        ndf, channels = state["net.0.weight"].shape[:2]
        norm = norm_of(state, "net.3.weight")
        model = {"discriminator": "pixel", "ndf": int(ndf), "discriminator_norm": norm}
        arch = Architecture("discriminator", model, tuple(pixel_slots(norm)), f"PixelGAN, ndf {ndf}, {norm} norm", int(channels))
    else:
        first_key = next(iter(state))
        raise PthError(f"{path}: its first key {first_key!r} does not fit any network of the official code the kit builds "
                       "(ResNet or U-Net generator, PatchGAN or PixelGAN discriminator): a state dict of another model.")
    check_keys(state, arch, path)
    if arch.role == "generator" and arch.in_channels != 3:
        raise PthError(f"{path}: the generator takes {arch.in_channels} channels; the kit's generators take 3 (RGB).")
    return arch


def check_keys(state: dict, arch: Architecture, path) -> None:
    """Every key of the file is one the kit's network has (or an ignored instance-norm statistic), and none is missing."""
    needed = [key for slot in arch.slots for key in slot.keys()]
    allowed = set(needed) | {key for slot in arch.slots for key in slot.optional_keys()}
    for key in state:
        if key not in allowed:
            raise PthError(f"{path}: {key} does not fit the kit's {arch.described}; nothing was written.")
    for key in needed:
        if key not in state:
            raise PthError(f"{path}: lacks {key}, which the kit's {arch.described} needs; nothing was written.")


def keras_weights(slot: Slot, state: dict) -> list:
    """The slot's arrays as Keras holds them."""
    if slot.kind == BATCH_NORM:
        return [state[key] for key in slot.keys()]  # gamma, beta, moving mean, moving variance
    kernel = np.transpose(state[f"{slot.prefix}.weight"], (2, 3, 1, 0))  # (out|in, in|out, kh, kw) -> (kh, kw, ., .)
    return [kernel] + ([state[f"{slot.prefix}.bias"]] if slot.bias else [])


KERAS_KINDS = {CONV: keras.layers.Conv2D, TRANSPOSED: keras.layers.Conv2DTranspose, BATCH_NORM: keras.layers.BatchNormalization}


def load_weights(model: keras.Model, arch: Architecture, state: dict, path) -> keras.Model:
    """Set the kit's network's weights from the state dict, layer by layer; a shape that differs names its key."""
    layers = [layer for layer in model.layers if isinstance(layer, tuple(KERAS_KINDS.values()))]
    slots = [slot for slot in arch.slots if slot.kind in KERAS_KINDS]
    if len(layers) != len(slots):  # the builders and the slots above disagree: the kit's mistake, not the user's
        raise AssertionError(f"{len(layers)} weighted layers in {model.name}, {len(slots)} in the official {arch.described}")
    for layer, slot in zip(layers, slots):
        assert isinstance(layer, KERAS_KINDS[slot.kind]), (layer.name, slot)
        values = keras_weights(slot, state)
        for key, value, weight in zip(slot.keys(), values, layer.weights):
            if tuple(value.shape) != tuple(weight.shape):
                raise PthError(f"{path}: {key} has shape {tuple(state[key].shape)}, which does not fit the kit's "
                               f"{arch.described} there; nothing was written.")
        layer.set_weights([np.asarray(v, dtype=np.float32) for v in values])
    return model


def network_from(state: dict, path) -> tuple[Architecture, keras.Model]:
    """(its architecture, the kit's Keras network holding its weights) of one official state dict."""
    arch = architecture(state, path)
    return arch, load_weights(arch.build(), arch, state, path)

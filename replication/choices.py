"""The values configuration keys may take, and the image sizes a generator accepts.

Plain data at the bottom of the kit's imports (no TensorFlow): `config` checks
an experiment against them before anything heavy is imported (the only check of
a value: the modules that act on it trust it), and the modules that need them
(`layers`, `networks`, `cyclegan`, `models`, `data/sources`, `runs`, `cli`) read them
from here. The model table, `MODELS`, holds each model's row: what describes it without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

from replication.errors import ConfigError, ImageSizeError


@dataclass(frozen=True)
class ModelRow:
    """One row of the model table: what the kit knows of a model without importing it. `config`
    checks an experiment against it; `replication experiments`, the run pages and the paper tables
    describe a run by it."""

    where: str  # its class, "module:Class" (models.py imports it when a run needs it)
    data: str  # how its training data is read: "unpaired" (as CycleGAN) or "paired" (as pix2pix; data.direction picks the input half)
    keys: tuple[str, ...] = ()  # the loss and train keys it reads; a run page sets aside those only other models read
    terms: Callable[[dict], tuple[str, ...]] = lambda loss: ()  # the loss section -> the terms of its objective, in words
    variant: Callable[[dict], str] | None = None  # the loss section -> the paper's name for what it trains; None: its model.type
    dropout: float = 0.0  # what model.dropout auto means for it
    check: Callable[[dict], None] = lambda loss: None  # a rule that joins several of its keys; raises ConfigError


# loss.cycle -> CycleGAN's cycle term, in words
CYCLE_TERMS = {"both": "cycle", "forward": "forward cycle", "backward": "backward cycle", "none": None}


def cyclegan_terms(loss: dict) -> tuple[str, ...]:
    """LSGAN + lambda * cycle + 0.5 * lambda * identity (paper §3, §4), less what an ablation switches off."""
    terms = ("GAN" if loss["gan"] else None, CYCLE_TERMS[loss["cycle"]], "identity" if loss["lambda_identity"] else None)
    return tuple(term for term in terms if term)


def cyclegan_variant(loss: dict) -> str:
    """CycleGAN, or the name its ablation has in the paper's Tables 4 and 5 (identity aside)."""
    if not loss.get("gan", True):
        return "cycle alone"
    return {"none": "GAN alone", "forward": "GAN + forward cycle", "backward": "GAN + backward cycle"}.get(loss.get("cycle", "both"), "CycleGAN")


def cyclegan_keeps_a_term(loss: dict) -> None:
    """CycleGAN's ablations (paper Tables 4, 5) drop terms of its objective; one term must remain."""
    identity_weight = loss["lambda_identity"] * loss["lambda_cycle"]
    if not loss["gan"] and loss["cycle"] == "none" and identity_weight == 0:
        raise ConfigError(
            f"loss.gan=false, loss.cycle=none and an identity loss weighing 0 (loss.lambda_identity={loss['lambda_identity']} "
            f"x loss.lambda_cycle={loss['lambda_cycle']}) leave nothing to train: set loss.gan=true, another loss.cycle, "
            "or both lambdas above 0."
        )


# model.type -> its row. The model table: a new model is its own file and one row here.
MODELS = {
    "cyclegan": ModelRow(
        "replication.cyclegan:CycleGAN", "unpaired",
        keys=("loss.gan_mode", "loss.gan", "loss.cycle", "loss.lambda_cycle", "loss.lambda_identity", "train.pool_size"),
        terms=cyclegan_terms, variant=cyclegan_variant, check=cyclegan_keeps_a_term,
        dropout=0.0,  # the official code's cycle_gan_model.py sets no_dropout: "default CycleGAN did not use dropout"
    ),
    "pix2pix": ModelRow(
        "replication.pix2pix:Pix2Pix", "paired", keys=("loss.gan_mode", "loss.lambda_L1"),
        terms=lambda loss: ("GAN", f"{loss['lambda_L1']:g} L1"),  # GAN + lambda L1 (pix2pix eq. 4)
        dropout=0.5,  # its only noise (pix2pix §2.1), the official code's default
    ),
}


def moot_keys(model_type: str) -> set[str]:
    """The loss and train keys that other models read and `model_type` does not."""
    read_by_any = {key for row in MODELS.values() for key in row.keys}
    return read_by_any - set(MODELS[model_type].keys)


# data.direction, and the two generators of a run: A -> B and B -> A
DIRECTIONS = {"AtoB": ("A", "B"), "BtoA": ("B", "A")}  # direction -> (input domain, output domain)


def reverse(direction: str) -> str:
    """The direction back: AtoB -> BtoA, BtoA -> AtoB."""
    source, target = DIRECTIONS[direction]
    return f"{target}to{source}"


# data.preprocess, as in the reference code's get_transform (data/transforms.py)
PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
# the modes that resize to data.load_size and then crop data.crop_size from it
RESIZE_THEN_CROP = ("resize_and_crop", "scale_width", "scale_width_and_crop")
RESIZE_METHODS = ("nearest", "bilinear", "bicubic", "area")

# The data: keys that say where a dataset is; each source reads some of them (its row says which),
# and every source reads the others (direction, cache, skip_bad_images, seed, the sizes).
DATASET_KEYS = ("name", "root", "data_dir", "download_url", "download_sha256")


class SourceRow(NamedTuple):
    """One data.source: its class, the DATASET_KEYS it reads, and its data in words (`replication
    experiments`' DATA column), a format string of those keys."""

    where: str  # "module:Class", imported when the source is used (data/sources.py, source_named)
    keys: tuple[str, ...]
    words: str


# data.source -> its row. The source table: a new source is its own file (a subclass of
# data/sources.py's DataSource) and one row here.
SOURCES = {
    "tfds": SourceRow("replication.data.tfds_source:Tfds", ("name", "data_dir"), "TFDS {name}"),
    "folder": SourceRow("replication.data.sources:Folder", ("root",), "folder {root}"),
    "cityscapes": SourceRow("replication.data.sources:Cityscapes", ("root", "data_dir", "download_url", "download_sha256"), "cityscapes"),
    "synthetic": SourceRow("replication.data.sources:Synthetic", ("root",), "synthetic {root}"),
    "pix2pix": SourceRow("replication.data.sources:Pix2pix", ("name", "root", "data_dir", "download_url", "download_sha256"), "pix2pix {name}"),
    "paired": SourceRow("replication.data.sources:SideBySide", ("root",), "paired {root}"),
}


def describe_source(data: dict) -> str:
    """Where a resolved `data:` section's images come from, in a few words: `TFDS horse2zebra`, `folder /photos`."""
    return SOURCES[data["source"]].words.format(**data)


# model.generator and model.discriminator (gan.GENERATORS and gan.DISCRIMINATORS build each), model.upsample (layers.u)
GENERATORS = ("resnet", "unet")
DISCRIMINATORS = ("patchgan", "pixel")
UPSAMPLES = ("transpose", "resize_conv")

# model.generator_norm, model.discriminator_norm
NORMS = ("instance", "batch", "none")

# loss.gan_mode
GAN_MODES = ("lsgan", "vanilla")

# loss.cycle: which cycle-consistency terms the objective keeps (paper §3.2, Tables 4 and 5).
# Forward: x -> G(x) -> F(G(x)) ~ x (cycle_X); backward: y -> F(y) -> G(F(y)) ~ y (cycle_Y).
CYCLES = {"both": ("forward", "backward"), "forward": ("forward",), "backward": ("backward",), "none": ()}

# train.precision (Keras dtype policies) and train.conv_gradients; `auto` is chosen by speed/machine.py
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
CONV_GRADIENTS = ("auto", "native", "forward")
# train.strategy: one machine's default device or all its GPUs (training.make_strategy), or several machines (cluster.py)
STRATEGIES = ("default", "mirrored", "multi_worker")


def generator_input_rule(generator: str, num_downs: int = 8) -> tuple[int, int]:
    """(multiple, minimum): the input height and width a generator takes are multiples of the one, at least the other."""
    if generator == "unet":
        return 2**num_downs, 2**num_downs  # num_downs stride-2 steps
    return 4, 8  # resnet: two stride-2 steps


def patchgan_receptive_field(n_layers: int) -> int:
    """The square of input pixels one PatchGAN score sees: 70 for n_layers=3 (paper §7.2), 16 for 1, 286 for 5.

    Its convolutions are 4x4: n_layers with stride 2, then two with stride 1 (networks.patchgan_discriminator).
    """
    field = 1
    for stride in [1, 1] + [2] * n_layers:  # from the scores back to the image
        field = (field - 1) * stride + 4
    return field


def check_image_size(height: int, width: int, multiple: int, minimum: int) -> None:
    if height % multiple or width % multiple or height < minimum or width < minimum:
        down = lambda n: max(minimum, n // multiple * multiple)  # noqa: E731
        raise ImageSizeError(
            f"Image size {height}x{width} does not fit this generator: height and width must be "
            f"multiples of {multiple} and at least {minimum} (e.g. {down(height)}x{down(width)} "
            f"or {down(height) + multiple}x{down(width) + multiple})."
        )

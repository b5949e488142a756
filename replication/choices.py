"""The values configuration keys may take, and the image sizes a generator accepts.

Plain data at the bottom of the kit's imports (no TensorFlow): `config` checks
an experiment against them before anything heavy is imported (the only check of
a value: the modules that act on it trust it), and the modules that need them
(`layers`, `networks`, `cyclegan`, `models`, `data/sources`, `runs`, `cli`) read them
from here.
"""

from __future__ import annotations

from typing import NamedTuple

from replication.errors import ImageSizeError

# model.type -> (its class, "module:Class"; how its training data is read, "unpaired" or "paired").
# The model table: a new model is its own file and one row here (models.py imports it when asked).
MODELS = {
    "cyclegan": ("replication.cyclegan:CycleGAN", "unpaired"),
    "pix2pix": ("replication.pix2pix:Pix2Pix", "paired"),
}

# model.dropout auto: the official code's default per model.type (0 where not listed: its
# cycle_gan_model.py sets no_dropout, "default CycleGAN did not use dropout").
DROPOUT_BY_DEFAULT = {"pix2pix": 0.5}

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

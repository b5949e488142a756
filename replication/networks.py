"""The paper's networks as Keras functional models (CycleGAN paper §7.2; pix2pix §6.1).

Each function returns a `keras.Model` on NHWC float images in [-1, 1] of any
size the architecture takes. Generators end in tanh and discriminators in raw
scores; both leave the model in float32 under a mixed-precision policy.
Trainable parameter counts match the official PyTorch code exactly (asserted
in tests/test_networks.py against shared/SPEC.md).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from replication.choices import generator_input_rule
from replication.errors import ConfigError
from replication.layers import (
    InputSizeCheck,
    KeyedDropout,
    C,
    R,
    c7s1,
    conv,
    conv_bias,
    conv_transpose,
    d,
    leaky_relu,
    normalize,
    relu,
    to_float32,
    u,
)


def resnet_generator(n_blocks=9, ngf=64, upsample="transpose", norm="instance", channels=3, dropout=0.0):
    """c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-3 (paper §7.2).

    n_blocks=9 for 256x256 training images, 6 for 128x128. Two stride-2
    steps: height and width must be multiples of 4 (and at least 8).
    `dropout` > 0 puts dropout inside each R block (the official code's
    use_dropout; off for CycleGAN, whose official code sets no_dropout).
    """
    image = keras.Input(shape=(None, None, channels), name="image")
    x = InputSizeCheck(*generator_input_rule("resnet"))(image)
    x = c7s1(x, ngf, norm)
    x = d(x, 2 * ngf, norm)
    x = d(x, 4 * ngf, norm)
    for _ in range(n_blocks):
        x = R(x, 4 * ngf, norm, dropout)
    x = u(x, 2 * ngf, norm, upsample)
    x = u(x, ngf, norm, upsample)
    # c7s1-3 without norm, then tanh (paper §7.2)
    x = conv(x, channels, 7, reflect_pad=3, bias=True)
    x = keras.layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return keras.Model(image, x, name=f"resnet_{n_blocks}blocks_generator")


def unet_generator(num_downs=8, ngf=64, norm="batch", channels=3, dropout=0.5):
    """pix2pix's U-Net (`unet_256` with num_downs=8, `unet_128` with 7), as the reference code builds it.

    Encoder: Conv 4x4 stride 2 (pad 1) - norm - LeakyReLU(0.2) with filters
    64-128-256-512-512-...; no norm on the first conv nor on the innermost.
    Decoder: ReLU - ConvTranspose 4x4 stride 2 (pad 1) - norm, concatenated
    with the mirrored encoder output; dropout (pix2pix's 0.5; 0 leaves it
    out) in the num_downs - 5 decoder steps of the intermediate 512-filter
    levels; tanh at the end.
    Height and width must be multiples of 2**num_downs.
    """
    if num_downs < 5:
        raise ConfigError(f"unet_generator needs num_downs >= 5 (got {num_downs}).")
    bias = conv_bias(norm)
    filters = [ngf, 2 * ngf, 4 * ngf] + [8 * ngf] * (num_downs - 3)  # encoder output of each level
    image = keras.Input(shape=(None, None, channels), name="image")
    x = InputSizeCheck(*generator_input_rule("unet", num_downs))(image)

    skips = []
    x = conv(x, filters[0], 4, stride=2, zero_pad=1, bias=bias)  # outermost: no norm
    for level in range(1, num_downs):
        skips.append(x)
        innermost = level == num_downs - 1
        x = conv(leaky_relu(x), filters[level], 4, stride=2, zero_pad=1, bias=bias)
        if not innermost:
            x = normalize(x, norm)

    for level in reversed(range(1, num_downs)):
        x = conv_transpose(relu(x), filters[level - 1], 4, stride=2, padding=1, bias=bias)
        x = normalize(x, norm)
        if dropout and 4 <= level <= num_downs - 2:  # the intermediate 512-filter levels
            x = KeyedDropout(dropout)(x)
        x = keras.layers.Concatenate()([skips[level - 1], x])

    x = conv_transpose(relu(x), channels, 4, stride=2, padding=1, bias=True)
    x = keras.layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return keras.Model(image, x, name=f"unet_{2**num_downs}_generator")


def patchgan_discriminator(n_layers=3, ndf=64, in_channels=3, norm="instance"):
    """C64-C128-C256-C512 then a 1-channel conv: the 70x70 PatchGAN for n_layers=3 (paper §7.2).

    n_layers=1 gives a 16x16 receptive field, 5 gives 286x286 (ImageGAN at
    286 input). The last C uses stride 1; all convs pad 1 with zeros, so a
    256x256 input gives a 30x30 map of scores. No sigmoid: LSGAN takes raw
    scores and the vanilla loss takes logits. in_channels=6 is pix2pix's
    conditional form (input and output concatenated).
    """
    image = keras.Input(shape=(None, None, in_channels), name="image")
    x = C(image, ndf, norm="none")  # no norm on C64
    for n in range(1, n_layers):
        x = C(x, ndf * min(2**n, 8), stride=2, norm=norm)
    x = C(x, ndf * min(2**n_layers, 8), stride=1, norm=norm)
    x = conv(x, 1, 4, zero_pad=1, bias=True)
    return keras.Model(image, to_float32(x, name="scores"), name=f"patchgan_{n_layers}layers_discriminator")


def pixel_discriminator(ndf=64, in_channels=3, norm="instance"):
    """PixelGAN (1x1 PatchGAN): Conv1x1(64) - LeakyReLU - Conv1x1(128) - norm - LeakyReLU - Conv1x1(1)."""
    image = keras.Input(shape=(None, None, in_channels), name="image")
    x = leaky_relu(conv(image, ndf, 1, bias=True))
    x = leaky_relu(normalize(conv(x, 2 * ndf, 1, bias=conv_bias(norm)), norm))
    x = conv(x, 1, 1, bias=conv_bias(norm))
    return keras.Model(image, to_float32(x, name="scores"), name="pixel_discriminator")


def input_rule(model: keras.Model) -> tuple[int, int]:
    """(multiple, minimum) of a generator's input height and width; (1, 1) for a model without a size check."""
    for layer in model.layers:
        if isinstance(layer, InputSizeCheck):
            return layer.multiple, layer.minimum
    return 1, 1


def size_multiple(model: keras.Model) -> int:
    """The number a generator's input height and width must be multiples of."""
    return input_rule(model)[0]


def dropout_layers(model: keras.Model) -> list:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]


# Draws a network may make from one counter: each call of a dropout layer takes the next (CycleGAN
# calls each generator up to three times in a step).
DRAWS_PER_COUNTER = 8


def seed_dropout(model: keras.Model, key, counter) -> None:
    """Make the masks of the model's i-th dropout layer the stateless draws of seed
    (key * 64 + i, counter * DRAWS_PER_COUNTER), the next call's, and so on.

    A dropout layer draws from its seed state, which nothing else sets; setting it from numbers
    the caller derives (the run's seed and the step) makes every mask reproducible, so a resumed
    run draws the masks the uninterrupted run drew (and layers.KeyedDropout makes them the same
    however the batch is split between workers).
    """
    for i, layer in enumerate(dropout_layers(model)):
        seed = tf.stack([tf.cast(key, tf.int64) * 64 + i, tf.cast(counter, tf.int64) * DRAWS_PER_COUNTER])
        layer.seed_generator.state.assign(tf.cast(seed, layer.seed_generator.state.dtype))


def call_as_tested(model: keras.Model, images):
    """The model in training mode, as pix2pix is tested (dropout on, batch norm on the batch's own
    statistics), leaving its batch-norm moving statistics as they are.

    A plain training-mode call would move those statistics: harmless for a loaded export, but on
    the model being trained it would change what the next checkpoint keeps. The dropout draws
    move on, so each call gets fresh masks.
    """
    outputs, updated = model.stateless_call(model.trainable_variables, model.non_trainable_variables, images, training=True)
    seed_states = [layer.seed_generator.state for layer in dropout_layers(model)]
    for variable, value in zip(model.non_trainable_variables, updated):
        if any(variable is state for state in seed_states):
            variable.assign(value)
    return outputs


def trainable_parameter_count(model: keras.Model) -> int:
    return int(sum(w.numpy().size for w in model.trainable_weights))

"""The paper's building blocks (CycleGAN paper §7.2, after Johnson et al.).

Notation, as in the paper and shared/SPEC.md:
  c7s1-k  ReflectionPad(3), Conv 7x7 stride 1, k filters, InstanceNorm, ReLU
  dk      Conv 3x3 stride 2 (zero pad 1), k filters, InstanceNorm, ReLU
  Rk      residual block of two 3x3 convs with reflection padding
  uk      fractional-strided conv 3x3 stride 1/2, k filters, InstanceNorm, ReLU
  Ck      Conv 4x4 stride 2 (zero pad 1), k filters, InstanceNorm, LeakyReLU(0.2)

Conventions of the official code, which the paper's numbers came from:
instance norm has no learned scale or offset (eps 1e-5), so convs keep their
biases; batch norm has scale and offset, so convs before it have no bias;
weights are drawn from N(0, 0.02) and biases start at 0. Padding is explicit
(never Keras' 'same'), so every output pixel sits where PyTorch puts it.

Each block is a function `block(x, ...) -> y` on Keras tensors, so a network
reads as its spec string: `x = c7s1(x, 64); x = d(x, 128); ...`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# Keras' Conv2D, whose stride-1 gradients may be computed faster; never a different output
from replication.speed.conv_gradients import Conv2D
from replication.choices import NORMS, check_image_size
from replication.errors import ConfigError


def conv_init():
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


# ---------------------------------------------------------------- layers


@keras.saving.register_keras_serializable(package="replication")
class ReflectionPadding2D(keras.layers.Layer):
    """Pads height and width by mirroring, without repeating the edge (PyTorch's ReflectionPad2d)."""

    def __init__(self, padding: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, x):
        p = self.padding
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")

    def compute_output_shape(self, shape):
        grow = lambda n: None if n is None else n + 2 * self.padding  # noqa: E731
        return (shape[0], grow(shape[1]), grow(shape[2]), shape[3])

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package="replication")
class InputSizeCheck(keras.layers.Layer):
    """Passes images through; refuses sizes the fully convolutional network cannot take.

    A generator with k stride-2 steps needs height and width that are
    multiples of 2**k (and at least `minimum`), or its skip connections and
    output no longer line up with the input.
    """

    def __init__(self, multiple: int, minimum: int, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)
        self.minimum = int(minimum)

    def call(self, x):
        height, width = x.shape[1], x.shape[2]
        if height is not None and width is not None:
            check_image_size(height, width, self.multiple, self.minimum)
        return x

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple, "minimum": self.minimum}


DRAW_RANGE = 1 << 30  # a dropout draw is a whole number below this; it drops its unit below rate * DRAW_RANGE


@keras.saving.register_keras_serializable(package="replication")
class KeyedDropout(keras.layers.Dropout):
    """Dropout whose masks are fixed by its seed state and each image's place in the global batch.

    The seed state is (key, counter): networks.seed_dropout sets it before a step, and each call
    draws from it, then moves the counter on by one. The mask is drawn for the whole global batch
    (every replica draws the same) and each replica keeps the rows of its own images, so a batch
    split over any number of replicas and workers gets the masks one replica of the whole batch gets.
    """

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        seed = tf.cast(self.seed_generator.next(), tf.int64)
        context = tf.distribute.get_replica_context()
        replicas, replica = (context.num_replicas_in_sync, context.replica_id_in_sync_group) if context else (1, 0)
        rows = tf.shape(inputs)[0]
        everyone = tf.concat([[replicas * rows], tf.shape(inputs)[1:]], axis=0)
        # integers from Philox, not floats: the same draws with XLA as without (as history.draw_choices)
        draws = tf.random.stateless_uniform(everyone, seed, minval=0, maxval=DRAW_RANGE, dtype=tf.int32, alg="philox")
        kept = draws[replica * rows :][:rows] >= round(self.rate * DRAW_RANGE)
        return tf.where(kept, inputs / (1 - self.rate), tf.zeros_like(inputs))


def instance_norm(name=None):
    """Instance norm without learned scale/offset, eps 1e-5, always computed in float32.

    GroupNormalization with one group per channel normalises each channel of
    each image over its height and width, which is instance norm.
    """
    return keras.layers.GroupNormalization(
        groups=-1, epsilon=1e-5, center=False, scale=False, dtype="float32", name=name
    )


def batch_norm(name=None):
    # PyTorch BatchNorm2d defaults (momentum 0.1 there is 0.9 here), weight ~ N(1, 0.02) as in the
    # reference init_weights.
    return keras.layers.BatchNormalization(
        momentum=0.9,
        epsilon=1e-5,
        gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02),
        synchronized=True,  # statistics over the global batch, however many replicas and workers share it
        name=name,
    )


def norm_layer(norm: str, name=None):
    if norm == "instance":
        return instance_norm(name)
    if norm == "batch":
        return batch_norm(name)
    if norm == "none":
        return None
    raise ConfigError(f"Unknown norm '{norm}': choose one of {', '.join(NORMS)}.")


def conv_bias(norm: str) -> bool:
    """Batch norm brings its own offset; instance norm (without one) and no norm need the conv bias."""
    return norm != "batch"


def normalize(x, norm: str):
    layer = norm_layer(norm)
    return x if layer is None else layer(x)


def conv(x, filters, kernel, stride=1, zero_pad=0, reflect_pad=0, bias=True):
    """A convolution with explicit padding, as PyTorch pads it."""
    if reflect_pad:
        x = ReflectionPadding2D(reflect_pad)(x)
    if zero_pad:
        x = keras.layers.ZeroPadding2D(zero_pad)(x)
    return Conv2D(
        filters, kernel, strides=stride, padding="valid", use_bias=bias,
        kernel_initializer=conv_init(), bias_initializer="zeros",
    )(x)


def conv_transpose(x, filters, kernel, stride=2, padding=1, output_padding=0, bias=True):
    """PyTorch's ConvTranspose2d(kernel, stride, padding, output_padding).

    A 'valid' transposed conv puts input pixel i at output rows s*i .. s*i+k-1;
    PyTorch shifts that by -padding and keeps (n-1)*s - 2*padding + k +
    output_padding rows. Cropping `padding` rows before and
    `padding - output_padding` after gives exactly that. (Keras' 'same' is
    one pixel off for kernel 3, stride 2.)
    """
    x = keras.layers.Conv2DTranspose(
        filters, kernel, strides=stride, padding="valid", use_bias=bias,
        kernel_initializer=conv_init(), bias_initializer="zeros",
    )(x)
    after = padding - output_padding
    return keras.layers.Cropping2D(((padding, after), (padding, after)))(x)


def relu(x):
    return keras.layers.ReLU()(x)


def leaky_relu(x):
    return keras.layers.LeakyReLU(negative_slope=0.2)(x)


# ---------------------------------------------------------------- the paper's blocks


def c7s1(x, k, norm="instance"):
    """c7s1-k: 7x7 Convolution-InstanceNorm-ReLU, stride 1, reflection padding 3 (paper §7.2)."""
    x = conv(x, k, 7, reflect_pad=3, bias=conv_bias(norm))
    return relu(normalize(x, norm))


def d(x, k, norm="instance"):
    """dk: 3x3 Convolution-InstanceNorm-ReLU, stride 2, zero padding 1 (paper §7.2)."""
    x = conv(x, k, 3, stride=2, zero_pad=1, bias=conv_bias(norm))
    return relu(normalize(x, norm))


def R(x, k, norm="instance", dropout=0.0):  # noqa: N802  (the paper's name)
    """Rk: residual block, two 3x3 convs with k filters and reflection padding; no ReLU after the sum (paper §7.2).

    `dropout` > 0 puts dropout between the two convs, where the official code's ResnetBlock has it
    when dropout is on (pix2pix's default; CycleGAN trains without).
    """
    y = conv(x, k, 3, reflect_pad=1, bias=conv_bias(norm))
    y = relu(normalize(y, norm))
    if dropout:
        y = KeyedDropout(dropout)(y)
    y = conv(y, k, 3, reflect_pad=1, bias=conv_bias(norm))
    y = normalize(y, norm)
    return keras.layers.Add()([x, y])


def u(x, k, norm="instance", upsample="transpose"):
    """uk: 3x3 fractional-strided Convolution-InstanceNorm-ReLU, stride 1/2 (paper §7.2).

    upsample="transpose" is the paper's layer (ConvTranspose2d(3, 2, padding 1,
    output_padding 1)); "resize_conv" is nearest-neighbour resize then a 3x3
    conv, which avoids checkerboard artefacts (Odena et al. 2016) with the
    same number of parameters.
    """
    if upsample == "transpose":
        x = conv_transpose(x, k, 3, stride=2, padding=1, output_padding=1, bias=conv_bias(norm))
    elif upsample == "resize_conv":
        x = keras.layers.UpSampling2D(2, interpolation="nearest")(x)
        x = conv(x, k, 3, reflect_pad=1, bias=conv_bias(norm))
    else:
        raise ConfigError(f"Unknown upsample '{upsample}': choose 'transpose' or 'resize_conv'.")
    return relu(normalize(x, norm))


def C(x, k, stride=2, norm="instance"):  # noqa: N802  (the paper's name)
    """Ck: 4x4 Convolution-InstanceNorm-LeakyReLU(0.2), zero padding 1 (paper §7.2). norm="none" for C64."""
    x = conv(x, k, 4, stride=stride, zero_pad=1, bias=conv_bias(norm))
    return leaky_relu(normalize(x, norm))


def to_float32(x, name=None):
    """Network outputs leave in float32, whatever the mixed-precision policy computed inside."""
    return keras.layers.Activation("linear", dtype="float32", name=name)(x)

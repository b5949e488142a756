"""The networks are the paper's networks: exact parameter counts, shapes,
receptive fields, padding and alignment, dtypes and initialisation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from replication import layers, networks
from replication.speed import conv_gradients
from replication.errors import ImageSizeError

# shared/SPEC.md, "Networks": trainable parameters of the official PyTorch code.
PARAMETER_COUNTS = {
    "ResNet-9 generator": (lambda: networks.resnet_generator(n_blocks=9), 11_378_179),
    "ResNet-6 generator": (lambda: networks.resnet_generator(n_blocks=6), 7_837_699),
    "70x70 PatchGAN": (lambda: networks.patchgan_discriminator(n_layers=3), 2_764_737),
    "16x16 PatchGAN": (lambda: networks.patchgan_discriminator(n_layers=1), 136_385),
    "unet_256 batch norm": (lambda: networks.unet_generator(num_downs=8, norm="batch"), 54_413_955),
    "unet_256 instance norm": (lambda: networks.unet_generator(num_downs=8, norm="instance"), 54_409_603),
    "unet_128 batch norm": (lambda: networks.unet_generator(num_downs=7, norm="batch"), 41_828_995),
    "pix2pix PatchGAN (6 channels, batch norm)": (
        lambda: networks.patchgan_discriminator(n_layers=3, in_channels=6, norm="batch"),
        2_768_705,
    ),
}


@pytest.mark.parametrize("name", PARAMETER_COUNTS)
def test_trainable_parameter_count_matches_reference(name):
    build, expected = PARAMETER_COUNTS[name]
    assert networks.trainable_parameter_count(build()) == expected


def test_resize_conv_upsampling_has_the_same_parameters_as_transpose():
    assert networks.trainable_parameter_count(
        networks.resnet_generator(n_blocks=9, upsample="resize_conv")
    ) == 11_378_179


def test_batch_norm_moving_statistics_are_not_trainable():
    unet = networks.unet_generator(num_downs=7, norm="batch")
    moving = [w for w in unet.non_trainable_weights if "moving" in w.path]
    assert moving and len(moving) == len(unet.non_trainable_weights)


@pytest.mark.parametrize("size, expected", [(256, 30), (128, 14)])
def test_patchgan_score_map_size(size, expected):
    scores = networks.patchgan_discriminator(n_layers=3)(tf.zeros((2, size, size, 3)))
    assert scores.shape == (2, expected, expected, 1)


def test_conditional_patchgan_takes_input_and_output_concatenated():
    scores = networks.patchgan_discriminator(in_channels=6, norm="batch")(tf.zeros((1, 256, 256, 6)))
    assert scores.shape == (1, 30, 30, 1)


@pytest.mark.parametrize(
    "build, shape",
    [
        (lambda: networks.resnet_generator(n_blocks=9), (1, 256, 256, 3)),
        (lambda: networks.resnet_generator(n_blocks=2, ngf=8), (2, 32, 48, 3)),
        (lambda: networks.resnet_generator(n_blocks=2, ngf=8, upsample="resize_conv"), (1, 40, 24, 3)),
        (lambda: networks.unet_generator(num_downs=8), (1, 256, 256, 3)),
        (lambda: networks.unet_generator(num_downs=7, ngf=8), (1, 128, 384, 3)),
    ],
)
def test_generator_returns_the_input_shape_in_tanh_range(build, shape):
    out = build()(tf.random.uniform(shape, -1, 1)).numpy()
    assert out.shape == shape
    assert np.all(np.abs(out) <= 1.0)


@pytest.mark.parametrize(
    "build, size, message",
    [
        (lambda: networks.resnet_generator(n_blocks=1, ngf=4), (30, 32), "multiples of 4"),
        (lambda: networks.resnet_generator(n_blocks=1, ngf=4), (4, 4), "at least 8"),
        (lambda: networks.unet_generator(num_downs=7, ngf=4), (64, 128), "multiples of 128"),
    ],
)
def test_generator_refuses_sizes_it_cannot_take_with_a_clear_message(build, size, message):
    with pytest.raises(ImageSizeError, match=message) as info:
        build()(tf.zeros((1, *size, 3)))
    assert f"{size[0]}x{size[1]}" in str(info.value)


def test_size_multiple_is_read_from_the_model():
    assert networks.size_multiple(networks.resnet_generator(n_blocks=1, ngf=4)) == 4
    assert networks.size_multiple(networks.unet_generator(num_downs=7, ngf=4)) == 128


# ---------------------------------------------------------------- receptive fields


def nonzero_window(discriminator, size):
    """Rows and columns of the input that one central score depends on."""
    image = tf.Variable(tf.random.normal((1, size, size, 3), seed=1))
    with tf.GradientTape() as tape:
        scores = discriminator(image)
        h, w = scores.shape[1] // 2, scores.shape[2] // 2
        central = scores[0, h, w, 0]
    grad = np.abs(tape.gradient(central, image).numpy()[0]).sum(axis=-1)
    rows, cols = np.nonzero(grad)
    box = grad[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    assert np.all(box > 0), "the receptive field has holes"
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


@pytest.mark.parametrize("n_layers, size, field", [(1, 64, 16), (3, 128, 70), (5, 384, 286)])
def test_patchgan_receptive_field_is_measured_not_assumed(n_layers, size, field):
    # Without normalisation: instance norm's statistics make every score depend on the whole image.
    discriminator = networks.patchgan_discriminator(n_layers=n_layers, ndf=8, norm="none")
    assert nonzero_window(discriminator, size) == (field, field)


def test_pixelgan_sees_one_pixel():
    assert nonzero_window(networks.pixel_discriminator(ndf=8, norm="none"), 16) == (1, 1)


# ---------------------------------------------------------------- layers against NumPy


def run_block(block, x):
    inp = keras.Input(shape=x.shape[1:])
    model = keras.Model(inp, block(inp))
    return model, model(x).numpy()


def torch_conv2d(x, w, b, stride, pad):
    """PyTorch's Conv2d (cross-correlation, zero padding) in NumPy; w is (kh, kw, in, out)."""
    x = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    kh, kw = w.shape[:2]
    oh = (x.shape[1] - kh) // stride + 1
    ow = (x.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], oh, ow, w.shape[3]))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
            out[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return out + b


def torch_conv_transpose2d(x, w, b, stride, pad, output_pad):
    """PyTorch's ConvTranspose2d in NumPy: input pixel i adds w[k] at output row stride*i - pad + k.

    w is laid out as Keras stores it: (kh, kw, out, in).
    """
    n, h, wd, _ = x.shape
    kh, kw, cout, _ = w.shape
    oh = (h - 1) * stride - 2 * pad + kh + output_pad
    ow = (wd - 1) * stride - 2 * pad + kw + output_pad
    out = np.zeros((n, oh, ow, cout))
    for i in range(h):
        for j in range(wd):
            for ki in range(kh):
                for kj in range(kw):
                    r, c = stride * i - pad + ki, stride * j - pad + kj
                    if 0 <= r < oh and 0 <= c < ow:
                        out[:, r, c, :] += x[:, i, j, :] @ w[ki, kj].T
    return out + b


def random_input(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_reflection_padding_mirrors_without_repeating_the_edge():
    x = random_input((2, 5, 6, 3))
    _, got = run_block(lambda t: layers.ReflectionPadding2D(3)(t), x)
    expected = np.pad(x, [(0, 0), (3, 3), (3, 3), (0, 0)], mode="reflect")
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_instance_norm_normalises_each_channel_of_each_image():
    x = random_input((2, 7, 5, 4)) * 3 + 2
    model, got = run_block(lambda t: layers.instance_norm()(t), x)
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)  # biased, as PyTorch's InstanceNorm2d
    np.testing.assert_allclose(got, (x - mean) / np.sqrt(var + 1e-5), atol=1e-5)
    assert model.trainable_weights == []  # no learned scale or offset


def test_dk_conv_pads_one_pixel_on_every_side():
    x = random_input((1, 8, 10, 3))
    model, got = run_block(lambda t: layers.conv(t, 4, 3, stride=2, zero_pad=1), x)
    kernel, bias = (v.numpy() for v in model.weights)
    bias = np.random.default_rng(1).normal(size=bias.shape)
    model.weights[1].assign(bias)
    expected = torch_conv2d(x, kernel, bias, stride=2, pad=1)
    np.testing.assert_allclose(model(x).numpy(), expected, atol=1e-5)
    assert got.shape == (1, 4, 5, 4)


@pytest.mark.parametrize("kernel, output_padding", [(3, 1), (4, 0)])
def test_transposed_conv_matches_pytorch_padding_rule(kernel, output_padding):
    x = random_input((1, 5, 4, 3))
    model, got = run_block(
        lambda t: layers.conv_transpose(t, 2, kernel, stride=2, padding=1, output_padding=output_padding), x
    )
    kernel_w, _ = (v.numpy() for v in model.weights)
    expected = torch_conv_transpose2d(x, kernel_w, 0.0, stride=2, pad=1, output_pad=output_padding)
    assert got.shape == (1, 10, 8, 2)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_keras_same_padding_would_shift_the_uk_output():
    # Why conv_transpose crops explicitly: Keras' 'same' is one pixel off PyTorch for kernel 3.
    x = random_input((1, 5, 5, 3))
    model, ours = run_block(lambda t: layers.conv_transpose(t, 2, 3, stride=2, padding=1, output_padding=1), x)
    same = keras.layers.Conv2DTranspose(2, 3, strides=2, padding="same", use_bias=False)
    same.build(x.shape)
    same.kernel.assign(model.weights[0])
    assert np.max(np.abs(same(x).numpy() - ours)) > 1e-2


# ---------------------------------------------------------------- dtypes and initialisation


def test_mixed_precision_convs_run_in_half_and_outputs_leave_in_float32(mixed_policy):
    generator = networks.resnet_generator(n_blocks=1, ngf=8)
    discriminator = networks.patchgan_discriminator(n_layers=3, ndf=8)
    for model in (generator, discriminator):
        convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
        assert convs and all(l.compute_dtype == mixed_policy for l in convs)
        assert all(l.variable_dtype == "float32" for l in convs)
        norms = [l for l in model.layers if isinstance(l, keras.layers.GroupNormalization)]
        assert all(l.compute_dtype == "float32" for l in norms)
    image = tf.random.uniform((1, 32, 32, 3), -1, 1)
    assert generator(image).dtype == tf.float32
    assert discriminator(image).dtype == tf.float32


def test_weights_are_drawn_from_normal_0_002_and_biases_start_at_zero():
    generator = networks.resnet_generator(n_blocks=1)
    kernels = [w.numpy() for w in generator.trainable_weights if "kernel" in w.path]
    biases = [w.numpy() for w in generator.trainable_weights if "bias" in w.path]
    largest = max(kernels, key=np.size)  # an R256 conv, 589,824 values
    assert largest.size == 3 * 3 * 256 * 256
    assert abs(largest.std() - 0.02) < 0.05 * 0.02
    assert abs(largest.mean()) < 1e-3
    assert all(np.all(b == 0) for b in biases)


def test_generator_survives_a_keras_file_round_trip(tmp_path):
    generator = networks.resnet_generator(n_blocks=1, ngf=4)
    path = tmp_path / "generator.keras"
    generator.save(path)
    loaded = keras.models.load_model(path)
    image = tf.random.uniform((1, 16, 16, 3), -1, 1)
    np.testing.assert_allclose(loaded(image).numpy(), generator(image).numpy(), atol=1e-6)
    assert networks.size_multiple(loaded) == 4


def test_dropout_masks_are_the_seeds_whatever_the_call_and_the_same_under_xla():
    """Each call draws the next mask of the seed state networks.seed_dropout sets; a mask keeps
    each unit with probability 1 - rate, scaled by 1 / (1 - rate); XLA draws the same masks."""
    x = tf.ones((2, 8, 8, 64))
    model = keras.Sequential([keras.Input((8, 8, 64)), layers.KeyedDropout(0.25)])
    networks.seed_dropout(model, 3, 7)
    first, second = model(x, training=True).numpy(), model(x, training=True).numpy()
    networks.seed_dropout(model, 3, 7)
    compiled = tf.function(lambda images: model(images, training=True), jit_compile=True)
    np.testing.assert_array_equal(compiled(x).numpy(), first)
    np.testing.assert_array_equal(compiled(x).numpy(), second)
    assert not np.array_equal(first, second)
    assert set(np.unique(first).tolist()) == {0.0, np.float32(1 / 0.75)}
    assert abs((first == 0).mean() - 0.25) < 0.02  # 8,192 units
    np.testing.assert_array_equal(model(x, training=False).numpy(), x.numpy())


# ---------------------------------------------------------------- conv gradients as forward convolutions


@pytest.mark.parametrize("batch, height, width, kernel, c_in, c_out", [
    (1, 9, 9, 3, 4, 5), (3, 10, 7, 4, 2, 6), (2, 12, 12, 7, 3, 4), (1, 5, 6, 1, 8, 1),
])
def test_forward_convolution_gradients_are_tensorflows_gradients(batch, height, width, kernel, c_in, c_out):
    x = tf.random.stateless_normal((batch, height, width, c_in), seed=(1, 2))
    w = tf.random.stateless_normal((kernel, kernel, c_in, c_out), seed=(3, 4))
    dy = tf.random.stateless_normal((batch, height - kernel + 1, width - kernel + 1, c_out), seed=(5, 6))

    def gradients(conv):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = conv(x, w)
        return (y, *tape.gradient(y, [x, w], output_gradients=dy))

    native = gradients(lambda x, w: tf.nn.conv2d(x, w, strides=1, padding="VALID"))
    forward = gradients(conv_gradients.conv_with_forward_gradients)
    np.testing.assert_array_equal(forward[0], native[0])  # the output is the same op
    for got, expected in zip(forward[1:], native[1:]):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * float(tf.reduce_max(tf.abs(expected))))


def test_forward_gradients_reach_every_stride_1_conv_and_change_no_output():
    generator = networks.resnet_generator(n_blocks=2, ngf=8)
    discriminator = networks.patchgan_discriminator(n_layers=3, ndf=8)
    # c7s1-8 and the last c7s1-3, two per R block; C512's stride-1 conv and the 1-channel conv
    assert conv_gradients.use_forward_gradients(generator) == 2 + 2 * 2
    assert conv_gradients.use_forward_gradients(discriminator) == 2
    strided = [l for l in generator.layers if isinstance(l, keras.layers.Conv2D) and l.strides == (2, 2)]
    assert len(strided) == 2 and not any(l.forward_gradients for l in strided)  # the dk convs keep TF's gradients

    reference = networks.resnet_generator(n_blocks=2, ngf=8)
    reference.set_weights(generator.get_weights())
    image = tf.random.stateless_uniform((2, 32, 32, 3), seed=(7, 8), minval=-1, maxval=1)

    def weight_gradients(network):
        with tf.GradientTape() as tape:
            out = network(image)
            loss = tf.reduce_mean(tf.abs(out - image))
        return out, tape.gradient(loss, network.trainable_weights)

    (out, grads), (ref_out, ref_grads) = weight_gradients(generator), weight_gradients(reference)
    np.testing.assert_array_equal(out, ref_out)
    for got, expected in zip(grads, ref_grads):
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-6)


def test_forward_gradients_run_in_the_mixed_policy(mixed_policy):
    conv = conv_gradients.Conv2D(4, 3, kernel_initializer=layers.conv_init())
    x = tf.random.stateless_normal((1, 8, 8, 3), seed=(1, 1))

    def output_and_kernel_gradient():
        with tf.GradientTape() as tape:
            y = conv(x)
            loss = tf.reduce_sum(tf.cast(y, "float32") ** 2)
        return y, tape.gradient(loss, conv.kernel)

    native, native_grad = output_and_kernel_gradient()
    conv.forward_gradients = True
    forward, forward_grad = output_and_kernel_gradient()
    assert forward.dtype == native.dtype == mixed_policy
    assert forward_grad.dtype == native_grad.dtype == tf.float32  # the float32 variable's gradient
    np.testing.assert_array_equal(forward, native)
    np.testing.assert_allclose(forward_grad, native_grad, rtol=2e-2, atol=2e-2 * float(tf.reduce_max(tf.abs(native_grad))))

"""Convolution gradients computed as forward convolutions (`train.conv_gradients: forward`).

The networks build every convolution with this module's `Conv2D`, which is Keras' own until
`use_forward_gradients` switches a network's stride-1 convolutions to take their gradients as
forward convolutions. Outputs, weights, checkpoints and exports are the same either way.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@tf.custom_gradient
def conv_with_forward_gradients(x, kernel):
    """The stride-1 'valid' convolution of `x` [N, H, W, C] by `kernel` [k, k, C, K], whose two
    gradients are computed as forward convolutions too.

    The input gradient is the full convolution of dy with the kernel flipped in space and
    its input and output channels swapped. The kernel gradient correlates x with dy over
    the batch and the output pixels: a convolution of x seen as C images of N channels
    [C, H, W, N] by dy seen as a kernel [Ho, Wo, N, K]. The numbers are TensorFlow's own
    gradients up to float rounding; where TensorFlow runs its Eigen kernels, whose
    Conv2DBackprop kernels are slow, these are faster (bench/conv_gradients.py measures it).
    """
    y = tf.nn.conv2d(x, kernel, strides=1, padding="VALID")

    def gradients(dy):
        kh, kw = kernel.shape[0], kernel.shape[1]
        flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
        full = tf.pad(dy, [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]])
        dx = tf.nn.conv2d(full, flipped, strides=1, padding="VALID")
        by_channel = tf.transpose(x, [3, 1, 2, 0])
        dkernel = tf.nn.conv2d(by_channel, tf.transpose(dy, [1, 2, 0, 3]), strides=1, padding="VALID")
        return dx, tf.transpose(dkernel, [1, 2, 0, 3])

    return y, gradients


@keras.saving.register_keras_serializable(package="replication")
class Conv2D(keras.layers.Conv2D):
    """Keras' Conv2D, whose gradients can be forward convolutions where it has stride 1.

    `forward_gradients` (set by `use_forward_gradients`) changes how the gradients are
    computed, never the output nor the weights it holds, so checkpoints and exports are
    the same either way.
    """

    forward_gradients = False

    def convolution_op(self, inputs, kernel):
        if self.forward_gradients and self.takes_forward_gradients():
            return conv_with_forward_gradients(inputs, tf.cast(kernel, inputs.dtype))
        return super().convolution_op(inputs, kernel)

    def takes_forward_gradients(self) -> bool:
        plain = (self.padding, self.data_format, self.groups) == ("valid", "channels_last", 1)
        return plain and tuple(self.strides) == (1, 1) and tuple(self.dilation_rate) == (1, 1)


def use_forward_gradients(network: keras.Model) -> int:
    """Every stride-1 conv of `network` takes its gradients as forward convolutions
    (`conv_with_forward_gradients`); returns how many convs do."""
    convs = [layer for layer in network.layers if isinstance(layer, Conv2D) and layer.takes_forward_gradients()]
    for layer in convs:
        layer.forward_gradients = True
    return len(convs)

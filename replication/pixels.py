"""Pixels: 8-bit levels 0..255 and the networks' range [-1, 1], level / 127.5 - 1 (the reference's
`Normalize((0.5,)*3, (0.5,)*3)` in, its `tensor2im` out).

Plain float32 arithmetic, so `to_unit` serves NumPy arrays and TensorFlow tensors alike and this
module imports no TensorFlow (the figures command runs without it).
"""

from __future__ import annotations

import numpy as np

HALF_RANGE = np.float32(127.5)
ONE = np.float32(1.0)


def to_unit(levels):
    """Levels 0..255 to [-1, 1] in float32: a uint8 or float32 NumPy array gives a NumPy array, a float32
    TensorFlow tensor a tensor (cast it with tf.cast first: TensorFlow does not mix dtypes)."""
    return levels / HALF_RANGE - ONE


def to_uint8(images) -> np.ndarray:
    """[-1, 1] floats (NumPy or TensorFlow) to 0..255 bytes, rounded to the nearest level."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.rint((images + ONE) * HALF_RANGE), 0, 255).astype(np.uint8)

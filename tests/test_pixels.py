"""Pixels to the networks' range and back: the one conversion the pipeline, translate, evaluate and figures share."""

import numpy as np
import tensorflow as tf

from replication.data import transforms
from replication.pixels import to_uint8, to_unit

LEVELS = np.arange(256, dtype=np.uint8)


def test_levels_map_linearly_onto_minus_one_to_one_in_float32():
    x = to_unit(LEVELS)
    assert x.dtype == np.float32
    assert (x[0], x[255]) == (-1.0, 1.0)
    np.testing.assert_allclose(x, np.arange(256) / 127.5 - 1, rtol=0, atol=1e-7)
    assert np.all(np.diff(x) > 0)


def test_back_to_bytes_rounds_to_the_nearest_level_and_clips():
    x = np.array([-3.0, -1.0, 0.0, 1.0, 2.0], np.float32)
    np.testing.assert_array_equal(to_uint8(x), [0, 0, 128, 255, 255])  # 127.5 rounds to the even 128
    below, above = (np.array([100.4, 100.6]) / 127.5 - 1).astype(np.float32)
    np.testing.assert_array_equal(to_uint8(np.array([below, above])), [100, 101])  # rounded, not cut
    assert to_uint8(x).dtype == np.uint8


def test_every_level_survives_the_round_trip():
    np.testing.assert_array_equal(to_uint8(to_unit(LEVELS)), LEVELS)
    np.testing.assert_array_equal(to_uint8(tf.constant(to_unit(LEVELS))), LEVELS)  # a tensor, as the networks give


def test_numpy_and_tensorflow_give_the_same_bits_on_every_level_and_float_level():
    """translate and evaluate convert in NumPy, the data pipeline and the FID features in TensorFlow:
    the same float32 for every input, so a photo gives the same numbers whichever reads it."""
    floats = np.linspace(0, 255, 100_001, dtype=np.float32)  # levels after a resize
    for levels in (LEVELS, floats):
        in_numpy = to_unit(levels)
        as_float = tf.cast(tf.constant(levels), tf.float32)
        np.testing.assert_array_equal(to_unit(as_float).numpy(), in_numpy)
        np.testing.assert_array_equal((as_float / 127.5 - 1.0).numpy(), in_numpy)  # TensorFlow's own arithmetic
        in_pipeline = tf.data.Dataset.from_tensors(levels).map(transforms.to_unit_range).get_single_element()
        np.testing.assert_array_equal(in_pipeline.numpy(), in_numpy)

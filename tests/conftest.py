import os

# Quiet TensorFlow's start-up chatter in test output; keep tests on the CPU.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPU devices, so tf.distribute.MirroredStrategy can be tested
# with two replicas on a machine without GPUs. Must happen before any op runs.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


@pytest.fixture(params=["mixed_float16", "mixed_bfloat16"])
def mixed_policy(request):
    """Run a test under each mixed-precision policy (yields its half dtype) and restore float32 afterwards."""
    keras.config.set_dtype_policy(request.param)
    try:
        yield request.param.removeprefix("mixed_")
    finally:
        keras.config.set_dtype_policy("float32")

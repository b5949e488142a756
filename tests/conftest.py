import os
import warnings

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


@pytest.fixture(scope="session")
def two_replicas():
    """A MirroredStrategy over the two logical CPUs, one per test process: the collectives of two
    such strategies in one process can take each other's keys and abort."""
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture(params=["mixed_float16", "mixed_bfloat16"])
def mixed_policy(request):
    """Run a test under each mixed-precision policy (yields its half dtype) and restore float32 afterwards."""
    keras.config.set_dtype_policy(request.param)
    try:
        yield request.param.removeprefix("mixed_")
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="session")
def tiny_synthetic_root(tmp_path_factory):
    """The synthetic dataset at the tiny runs' size (8 train, 3 test images per domain)."""
    from replication import data
    from helpers import SIZE

    return data.write_synthetic(tmp_path_factory.mktemp("data") / "synthetic", seed=0, size=SIZE, n_train=8, n_test=3)


@pytest.fixture(scope="module")
def synthetic_root(tiny_synthetic_root):
    """The tiny dataset under the name most test files use; a file that needs other data defines its own."""
    return tiny_synthetic_root


@pytest.fixture(scope="session")
def tiny_finished_run(tiny_synthetic_root, tmp_path_factory):
    """One finished tiny run (3 epochs of 3 steps, one step per call), trained once per test process
    and shared by the modules that only read it: never train in it or change its files."""
    from replication.training import train
    from helpers import tiny_config

    return train(tiny_config(tiny_synthetic_root), run_dir=tmp_path_factory.mktemp("runs") / "straight")


@pytest.fixture(scope="session")
def tiny_stopped_run(tiny_synthetic_root, tmp_path_factory):
    """The same tiny run stopped at step 4, inside epoch 2: checkpoints ckpt-3 (epoch 1's end) and
    ckpt-4, no export. Shared like tiny_finished_run: copy it before training in it."""
    from replication.training import train
    from helpers import tiny_config

    return train(tiny_config(tiny_synthetic_root), run_dir=tmp_path_factory.mktemp("runs") / "stopped", until_step=4)


@pytest.fixture
def worker_env(tmp_path):
    """The workers' environment; their temporary folders go to a folder of the test's own."""
    temp = tmp_path / "temp"
    temp.mkdir()
    return dict(os.environ, TMPDIR=str(temp), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")


@pytest.fixture
def launcher_env(worker_env, monkeypatch):
    """`train --workers N` run by this process: the launcher's workers inherit this environment."""
    for name in ("TMPDIR", "TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.setenv(name, worker_env[name])
    return worker_env


# The session's trained runs: the tests that read one of them share one worker (one group each).
SESSION_RUNS = ("tiny_finished_run", "tiny_stopped_run")


# Module- and session-scoped fixtures that are cheap to make twice; the others train a run.
CHEAP_SHARED_FIXTURES = {"synthetic_root", "tiny_synthetic_root", "tmp_path_factory", "two_replicas"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own, which reads the markers
def pytest_collection_modifyitems(config, items):
    """Under `--dist loadgroup` (make test), the tests that read one trained run go to one worker,
    so that two workers do not each train it: by default pytest-xdist spreads a module's tests over
    the workers, and each worker makes the module's fixtures for itself."""
    for item in items:
        fixtures = getattr(item, "_fixtureinfo", None)
        if fixtures is None:
            continue
        shared = {name for name, defs in fixtures.name2fixturedefs.items()
                  if defs and defs[-1].scope in ("module", "session") and name not in CHEAP_SHARED_FIXTURES}
        run = next((name for name in SESSION_RUNS if name in shared), None)
        if run:
            item.add_marker(pytest.mark.xdist_group(run))
        elif shared:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


def pytest_collection_finish(session):
    """pytest-xdist sends a group to one worker by a suffix on each test's id, which pytest 9.2
    no longer lets it set (pytest-xdist#1386): then each worker trains the shared runs again,
    silently. requirements.txt keeps pytest below 9.2; this warns if that stops holding."""
    if not getattr(session.config.option, "loadgroup", False):  # set in xdist's workers under --dist loadgroup
        return
    lost = [item.nodeid for item in session.items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
    if lost:
        warnings.warn(pytest.PytestWarning(
            f"pytest-xdist did not group {len(lost)} tests (first: {lost[0]}) under pytest {pytest.__version__}, so each "
            "worker trains their shared runs again; install the pytest that requirements.txt asks for (make test does)."
        ))

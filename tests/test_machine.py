"""What `auto` picks for a machine: precision, XLA and threads per op, from CPU flags and cores and GPU
compute capabilities."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from replication.speed.machine import (
    Choice,
    Machine,
    apply_threads,
    choose_conv_gradients,
    choose_jit_compile,
    choose_settings,
    choose_precision,
    choose_threads_per_op,
    loss_scaling,
    ops_at_once,
    precision_for_checkpoints,
    read_cpu_flags,
)

ROOT = Path(__file__).resolve().parent.parent

ZEN4 = Machine(cpu_flags=frozenset({"sse4_2", "avx2", "avx512f", "avx512_vnni", "avx512_bf16"}))
SAPPHIRE_RAPIDS = Machine(cpu_flags=frozenset({"avx512f", "amx_tile", "amx_bf16"}))
ZEN3 = Machine(cpu_flags=frozenset({"sse4_2", "avx2"}))


@pytest.mark.parametrize(
    "machine, policy",
    [
        (ZEN4, "mixed_bfloat16"),
        (SAPPHIRE_RAPIDS, "mixed_bfloat16"),
        (ZEN3, "float32"),
        (Machine(ZEN3.cpu_flags, ((8, 0),)), "mixed_bfloat16"),  # A100: bfloat16 tensor cores
        (Machine(ZEN3.cpu_flags, ((9, 0), (9, 0))), "mixed_bfloat16"),  # two H100s
        (Machine(ZEN4.cpu_flags, ((7, 5),)), "mixed_float16"),  # T4: the GPU decides, not the CPU
        (Machine(ZEN3.cpu_flags, ((7, 0), (8, 6))), "mixed_float16"),  # the slowest GPU decides
        (Machine(ZEN4.cpu_flags, ((6, 1),)), "float32"),  # Pascal: no tensor cores
    ],
)
def test_auto_precision_follows_the_machine(machine, policy):
    choice = choose_precision("auto", machine)
    assert choice.value == policy
    assert choice.reason.startswith("auto: ")


def test_the_reason_names_what_was_found():
    assert choose_precision("auto", ZEN4).reason == "auto: CPU with avx512_bf16"
    assert "compute capability 7.5" in choose_precision("auto", Machine(gpu_capabilities=((7, 5),))).reason
    assert choose_precision("auto", ZEN3).reason == "auto: CPU without native bfloat16"


def test_a_set_precision_is_kept():
    assert choose_precision("mixed_float16", ZEN3).value == "mixed_float16"
    assert choose_precision("float32", ZEN4).reason == "set in the config"


def test_only_float16_scales_its_loss():
    assert [loss_scaling(p) for p in ("float32", "mixed_float16", "mixed_bfloat16")] == [False, True, False]


def test_auto_xla_is_on_with_gpus_and_cpus_without_avx512_and_true_false_are_kept():
    assert choose_jit_compile("auto", ZEN4).value is False  # oneDNN's AVX-512 kernels beat XLA's (measured)
    assert choose_jit_compile("auto", SAPPHIRE_RAPIDS).value is False
    # where TensorFlow runs Eigen kernels, XLA beat their native gradients, and forward gradients beat XLA (measured)
    assert choose_jit_compile("auto", ZEN3, "native").value is True
    assert "Eigen kernels" in choose_jit_compile("auto", ZEN3, "native").reason
    assert choose_jit_compile("auto", ZEN3, "forward").value is False
    assert "forward conv gradients" in choose_jit_compile("auto", ZEN3, "forward").reason
    skylake = Machine(cpu_flags=frozenset({"avx2", "avx512f"}))  # AVX-512 without VNNI: TensorFlow runs Eigen there too
    assert choose_jit_compile("auto", skylake).value is True
    assert choose_jit_compile("auto", Machine(gpu_capabilities=((8, 0),)), "forward").value is True
    assert choose_jit_compile("auto", Machine(gpu_capabilities=((8, 0),))).value is True
    assert choose_jit_compile("auto", Machine(ZEN4.cpu_flags, ((8, 0),))).value is True  # the GPU decides
    assert choose_jit_compile(True, ZEN4).value is True
    assert choose_jit_compile(False, Machine(gpu_capabilities=((8, 0),))).value is False


def test_auto_conv_gradients_are_forward_only_where_tensorflow_runs_eigen_kernels():
    assert choose_conv_gradients("auto", ZEN3).value == "forward"
    assert "Eigen kernels" in choose_conv_gradients("auto", ZEN3).reason
    assert choose_conv_gradients("auto", Machine(cpu_flags=frozenset({"avx2", "avx512f"}))).value == "forward"
    assert choose_conv_gradients("auto", ZEN4).value == "native"
    assert choose_conv_gradients("auto", SAPPHIRE_RAPIDS).value == "native"
    assert choose_conv_gradients("auto", Machine(ZEN3.cpu_flags, ((7, 5),))).value == "native"  # cuDNN's
    assert choose_conv_gradients("native", ZEN3) == Choice("native", "set in the config")
    assert choose_conv_gradients("forward", ZEN4) == Choice("forward", "set in the config")


AUTO = {"precision": "auto", "conv_gradients": "auto", "jit_compile": "auto", "threads_per_op": "auto"}


@pytest.mark.parametrize("machine, gradients, jit, threads, jit_with_native_gradients", [
    (Machine(ZEN4.cpu_flags, cpu_cores=2), "native", False, 1, False),
    (Machine(ZEN3.cpu_flags, cpu_cores=2), "forward", False, 1, True),
    (Machine(ZEN3.cpu_flags, ((8, 0),), cpu_cores=8), "native", True, 0, True),
])
def test_settings_choose_xla_for_their_gradients_and_threads_for_their_xla(machine, gradients, jit, threads,
                                                                           jit_with_native_gradients):
    settings = choose_settings(AUTO, machine)
    assert (settings["conv_gradients"].value, settings["jit_compile"].value, settings["threads_per_op"].value) == (gradients, jit, threads)
    pinned = choose_settings({**AUTO, "jit_compile": False}, machine)
    assert pinned["threads_per_op"].value == (0 if machine.gpu_capabilities else 1)
    native = choose_settings({**AUTO, "conv_gradients": "native"}, machine)
    assert native["jit_compile"].value is jit_with_native_gradients


def test_cpu_flags_are_read_from_proc_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu sse4_2 avx512f avx512_bf16\n\n"
        "processor\t: 1\nflags\t\t: fpu sse4_2 avx512f avx512_bf16\n"
    )
    assert read_cpu_flags(cpuinfo) == {"fpu", "sse4_2", "avx512f", "avx512_bf16"}
    assert read_cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize(
    "machine, per_op, at_once",
    [
        (Machine(ZEN4.cpu_flags, cpu_cores=2), 1, 2),  # this project's machine: one thread per op, two ops at once
        (Machine(ZEN4.cpu_flags, cpu_cores=8), 4, 2),
        (Machine(ZEN3.cpu_flags, cpu_cores=3), 1, 3),
        (Machine(ZEN3.cpu_flags, cpu_cores=1), 1, 1),
    ],
)
def test_auto_threads_split_the_cores_between_two_ops(machine, per_op, at_once):
    choice = choose_threads_per_op("auto", machine)
    assert choice.value == per_op and ops_at_once(choice.value, machine) == at_once
    assert choice.reason == f"auto: {machine.cpu_cores} CPU cores, {at_once} ops at once"


def test_threads_are_tensorflows_default_with_gpus_or_xla_and_a_set_number_is_kept():
    assert choose_threads_per_op("auto", Machine(gpu_capabilities=((8, 0),), cpu_cores=16)).value == 0
    # the XLA-compiled step is one op: one thread per op would leave it one core (1.9x slower, measured)
    xla = choose_threads_per_op("auto", Machine(ZEN3.cpu_flags, cpu_cores=2), jit_compile=True)
    assert xla == Choice(0, "auto: TensorFlow's default, every core for the XLA-compiled step, which is one op")
    assert choose_threads_per_op(1, Machine(cpu_cores=2), jit_compile=True).value == 1  # a set number is kept
    assert choose_threads_per_op(3, Machine(cpu_cores=8)) == Choice(3, "set in the config")
    assert ops_at_once(3, Machine(cpu_cores=8)) == 2 and ops_at_once(0, Machine(cpu_cores=8)) == 0


def test_threads_set_after_tensorflow_started_are_reported_as_kept():
    tf.constant(1.0) + 1.0  # TensorFlow has started in this process
    running = tf.config.threading.get_intra_op_parallelism_threads()
    wanted = running + 1
    held = apply_threads(Choice(wanted, "set in the config"), Machine(cpu_cores=wanted))
    assert held.value == running
    assert held.reason == f"kept: TensorFlow had already started in this process, so {wanted} per op (set in the config) could not be set"
    assert apply_threads(Choice(0, "auto: TensorFlow's default with GPUs"), ZEN4).value == 0


def test_threads_set_before_tensorflow_starts_are_the_ones_it_runs_with():
    script = (
        "from replication.speed.machine import Choice, Machine, apply_threads\n"
        "import tensorflow as tf\n"
        "held = apply_threads(Choice(1, 'test'), Machine(cpu_cores=3))\n"
        "tf.constant(1.0) + 1.0\n"
        "print(held.value, tf.config.threading.get_intra_op_parallelism_threads(),"
        " tf.config.threading.get_inter_op_parallelism_threads())\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1", "3"]


T4, A100 = Machine(ZEN3.cpu_flags, ((7, 5),)), Machine(ZEN3.cpu_flags, ((8, 0),))


def test_a_resumed_auto_run_stays_on_its_side_of_loss_scaling():
    on = lambda machine: choose_precision("auto", machine)  # noqa: E731
    # started on a T4 (mixed_float16, its checkpoints hold the loss scale), resumed on a CPU or an A100
    for elsewhere in (ZEN3, ZEN4, A100):
        kept = precision_for_checkpoints("auto", on(elsewhere), loss_scaled=True)
        assert kept.value == "mixed_float16" and kept.reason.startswith("kept: the run's checkpoints were written under mixed_float16")
    # started without a loss scale (float32 or bfloat16), resumed on a T4
    kept = precision_for_checkpoints("auto", on(T4), loss_scaled=False)
    assert kept.value == "float32" and "hold no loss scale" in kept.reason and "mixed_float16" in kept.reason
    # the same side of the line: auto's choice stands (bfloat16 and float32 have the same variables)
    assert precision_for_checkpoints("auto", on(ZEN4), loss_scaled=False) == on(ZEN4)
    assert precision_for_checkpoints("auto", on(T4), loss_scaled=True) == on(T4)
    assert precision_for_checkpoints("auto", on(T4), loss_scaled=None) == on(T4)  # a new run
    set_here = choose_precision("float32", ZEN3)
    assert precision_for_checkpoints("float32", set_here, loss_scaled=True) == set_here  # a set precision is the config's


def test_a_paper_size_run_on_a_cpu_is_warned_about_and_one_on_a_gpu_or_the_demo_is_not():
    from replication import config as config_lib
    from replication.training import slow_on_this_machine

    horse2zebra, demo = config_lib.resolve("horse2zebra"), config_lib.resolve("demo")
    assert "256x256 images on a CPU" in slow_on_this_machine(horse2zebra, ZEN3)
    assert slow_on_this_machine(horse2zebra, Machine(gpu_capabilities=((8, 0),))) is None
    assert slow_on_this_machine(demo, ZEN3) is None

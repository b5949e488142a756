"""What `auto` picks for this machine: the precision policy, XLA compilation of the step, and
how TensorFlow spreads its ops over the CPU cores.

The choice is a pure function of what the machine reports (CPU flags and
cores, GPU compute capabilities), so it is tested with made-up machines;
`detect()` reads the real one. The training loop writes the choice and its reason to
run.log and versions.json.

What was measured on each machine kind, and so why `auto` picks what it picks, is in
docs/performance.md; `make bench` measures every choice on the machine it runs on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo: native bfloat16 dot products (AVX-512 BF16, AMX)
# /proc/cpuinfo flags with which TensorFlow runs its oneDNN kernels by default on Linux (its
# DefaultOneDnnPolicy); without them it runs its Eigen kernels, whose convolution gradients are slow.
CPU_ONEDNN_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
TENSOR_CORES = (7, 0)  # Volta: float16 tensor cores
BF16_TENSOR_CORES = (8, 0)  # Ampere: bfloat16 tensor cores, as fast as float16


@dataclass(frozen=True)
class Machine:
    """What the choice depends on: the CPU's feature flags and each GPU's compute capability."""

    cpu_flags: frozenset = frozenset()
    gpu_capabilities: tuple = ()  # ((major, minor), ...), one per GPU
    cpu_cores: int = 1  # the cores this process may run on

    def describe(self) -> str:
        if self.gpu_capabilities:
            return ", ".join(f"GPU compute capability {major}.{minor}" for major, minor in self.gpu_capabilities)
        bf16 = [flag for flag in CPU_BF16_FLAGS if flag in self.cpu_flags]
        return f"CPU with {' and '.join(bf16)}" if bf16 else "CPU without native bfloat16"


@dataclass(frozen=True)
class Choice:
    value: object  # the policy name, True/False for XLA, threads per op for threads_per_op
    reason: str

    def __str__(self) -> str:
        return f"{self.value} ({self.reason})"


def choose_precision(setting: str, machine: Machine) -> Choice:
    """The Keras dtype policy for `train.precision` on `machine`.

    `auto`: on GPUs, mixed_bfloat16 from compute capability 8.0 (bfloat16 tensor
    cores run as fast as float16 ones, and bfloat16's float32-sized exponent
    needs no loss scaling, so no update is ever skipped for an overflow);
    mixed_float16 with loss scaling on 7.x (float16 tensor cores only); float32
    below. On CPUs, mixed_bfloat16 where the CPU has native bfloat16 (AVX-512
    BF16 or AMX); float32 elsewhere (float16 and emulated bfloat16 are slower
    than float32 there).
    """
    if setting != "auto":
        return Choice(setting, "set in the config")
    where = machine.describe()
    if machine.gpu_capabilities:
        slowest = min(machine.gpu_capabilities)
        if slowest >= BF16_TENSOR_CORES:
            return Choice("mixed_bfloat16", f"auto: {where} has bfloat16 tensor cores; no loss scaling needed")
        if slowest >= TENSOR_CORES:
            return Choice("mixed_float16", f"auto: {where} has float16 tensor cores (not bfloat16 ones)")
        return Choice("float32", f"auto: {where} has no tensor cores")
    if any(flag in machine.cpu_flags for flag in CPU_BF16_FLAGS):
        return Choice("mixed_bfloat16", f"auto: {where}")
    return Choice("float32", f"auto: {where}")


def runs_eigen_kernels(machine: Machine) -> bool:
    """A CPU-only machine on which TensorFlow runs its Eigen kernels, not oneDNN's."""
    return not machine.gpu_capabilities and not any(flag in machine.cpu_flags for flag in CPU_ONEDNN_FLAGS)


def choose_conv_gradients(setting, machine: Machine) -> Choice:
    """How the stride-1 convolutions' gradients are computed, for `train.conv_gradients`.

    `native`: TensorFlow's gradient kernels. `forward`: as forward convolutions
    (speed.conv_gradients), the same numbers up to float rounding.
    `auto`: forward where TensorFlow runs its Eigen kernels, whose gradient kernels are slower
    than forward convolutions doing the same work (bench/conv_gradients.py); native with GPUs
    (cuDNN's) and with oneDNN's kernels.
    """
    if setting != "auto":
        return Choice(setting, "set in the config")
    if runs_eigen_kernels(machine):
        return Choice("forward", "auto: TensorFlow runs its Eigen kernels on this CPU (no AVX-512 VNNI/BF16, AVX-VNNI "
                                 "or AMX), whose convolution gradient kernels are slow")
    return Choice("native", "auto: TensorFlow's gradient kernels " + ("on GPUs" if machine.gpu_capabilities else "(oneDNN) on this CPU"))


def choose_jit_compile(setting, machine: Machine, conv_gradients: str = "native") -> Choice:
    """XLA for `train.jit_compile`.

    `auto`: on with GPUs. On CPUs, off where TensorFlow runs its oneDNN kernels
    (CPUs with AVX-512 VNNI or BF16, AVX-VNNI or AMX), which beat XLA's. Where TensorFlow's
    Eigen kernels run, XLA beats the plain step with their native gradients, and the plain
    step with `forward` conv_gradients beats XLA: on for native, off for forward.
    `make bench` shows both on any machine.
    """
    if setting != "auto":
        return Choice(setting, "set in the config")
    if machine.gpu_capabilities:
        return Choice(True, "auto: XLA fuses the step's small ops on GPUs")
    if not runs_eigen_kernels(machine):
        return Choice(False, "auto: TensorFlow runs its oneDNN kernels on this CPU, faster than XLA (make bench shows both)")
    if conv_gradients == "forward":
        return Choice(False, "auto: the plain step with forward conv gradients is faster than XLA on this CPU "
                             "(make bench shows both)")
    return Choice(True, "auto: TensorFlow runs its Eigen kernels on this CPU (no AVX-512 VNNI/BF16, AVX-VNNI or AMX); "
                        "with their native conv gradients XLA is faster (make bench shows both)")


def choose_threads_per_op(setting, machine: Machine, jit_compile: bool = False) -> Choice:
    """TensorFlow's threads per op for `train.threads_per_op`; 0 is TensorFlow's default (every core).

    With N threads per op, the cores are shared by cores // N ops at once (`ops_at_once`).
    `auto` on CPUs, for the plain step: half the cores per op (at least one), two ops at
    once. The CycleGAN step computes two mirrored directions (A->B and B->A) that do not
    wait for each other, so two ops are nearly always ready (docs/performance.md). An
    XLA-compiled step (`jit_compile`) is a single op that runs on the per-op threads, so it
    keeps TensorFlow's default, every core. With GPUs the host's threads hardly matter:
    TensorFlow's default.
    """
    if setting != "auto":
        return Choice(setting, "set in the config")
    if machine.gpu_capabilities:
        return Choice(0, "auto: TensorFlow's default with GPUs")
    if jit_compile:
        return Choice(0, "auto: TensorFlow's default, every core for the XLA-compiled step, which is one op")
    per_op = max(1, machine.cpu_cores // 2)
    return Choice(per_op, f"auto: {machine.cpu_cores} CPU cores, {ops_at_once(per_op, machine)} ops at once")


def ops_at_once(threads_per_op: int, machine: Machine) -> int:
    """How many ops share the cores when each takes `threads_per_op` threads (0: TensorFlow's default)."""
    return 0 if threads_per_op == 0 else max(1, machine.cpu_cores // threads_per_op)


def apply_threads(choice: Choice, machine: Machine) -> Choice:
    """Give TensorFlow `choice`'s threads per op; it can only take them before it runs its first op.

    Returns the choice that holds: `choice`, or TensorFlow's current setting with the
    reason it was kept (a process that already ran TensorFlow ops, e.g. a notebook or
    the test suite).
    """
    import tensorflow as tf

    per_op = choice.value
    if per_op == 0:
        return choice
    threading = tf.config.threading
    try:
        threading.set_intra_op_parallelism_threads(per_op)
        threading.set_inter_op_parallelism_threads(ops_at_once(per_op, machine))
    except RuntimeError:
        kept = threading.get_intra_op_parallelism_threads()
        return Choice(kept, f"kept: TensorFlow had already started in this process, so {choice.value} per op "
                            f"({choice.reason}) could not be set")
    return choice


def choose_settings(train_cfg: dict, machine: Machine) -> dict:
    """{"precision", "conv_gradients", "jit_compile", "threads_per_op": Choice} for `train_cfg` on `machine`."""
    conv_gradients = choose_conv_gradients(train_cfg["conv_gradients"], machine)
    jit_compile = choose_jit_compile(train_cfg["jit_compile"], machine, conv_gradients.value)
    return {
        "precision": choose_precision(train_cfg["precision"], machine),
        "conv_gradients": conv_gradients,
        "jit_compile": jit_compile,
        "threads_per_op": choose_threads_per_op(train_cfg["threads_per_op"], machine, jit_compile.value),
    }


def precision_for_checkpoints(setting: str, choice: Choice, loss_scaled: bool | None) -> Choice:
    """`choice` for a run whose checkpoints do (True) or do not (False) hold a loss scale, None
    for a new run. Only mixed_float16 scales its loss, and its optimizers' variables are laid
    out around the scale, so a run started under `auto` on one kind of machine and resumed on
    another keeps the side of that line it started on: mixed_float16 where they hold a loss
    scale, float32 where they do not and `auto` would pick mixed_float16 here.
    """
    if setting != "auto" or loss_scaled is None or loss_scaling(choice.value) == loss_scaled:
        return choice
    if loss_scaled:
        return Choice("mixed_float16", f"kept: the run's checkpoints were written under mixed_float16 and hold its "
                                       f"loss scale (here {choice})")
    return Choice("float32", f"kept: the run's checkpoints hold no loss scale, which mixed_float16 needs (here {choice})")


def loss_scaling(policy: str) -> bool:
    """Only float16 needs its loss scaled (its gradients underflow); bfloat16 has float32's range."""
    return policy == "mixed_float16"


def read_cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset:
    """The `flags` of the first processor in /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, which containers narrow), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def detect() -> Machine:
    """This machine: its CPU flags and cores, and the compute capability of each GPU TensorFlow sees."""
    import tensorflow as tf

    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        capabilities.append(tuple(capability) if capability else (0, 0))
    return Machine(read_cpu_flags(), tuple(capabilities), usable_cores())

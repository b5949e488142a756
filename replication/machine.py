"""What `auto` picks for this machine: the precision policy and XLA compilation of the step.

The choice is a pure function of what the machine reports (CPU flags, GPU
compute capabilities), so it is tested with made-up machines; `detect()`
reads the real one. The training loop writes the choice and its reason to
run.log and versions.json.

Measured on this project's machine kind (AMD EPYC Zen 4, AVX-512 BF16, 2
cores; the table is in the README): mixed_bfloat16 ran the CycleGAN step
1.6-1.7x faster than float32, and XLA was slower than TensorFlow's plain
oneDNN path. On GPUs, XLA fuses the many small ops around the convolutions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from replication.errors import ConfigError

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo: native bfloat16 dot products (AVX-512 BF16, AMX)
TENSOR_CORES = (7, 0)  # Volta: float16 tensor cores
BF16_TENSOR_CORES = (8, 0)  # Ampere: bfloat16 tensor cores, as fast as float16


@dataclass(frozen=True)
class Machine:
    """What the choice depends on: the CPU's feature flags and each GPU's compute capability."""

    cpu_flags: frozenset = frozenset()
    gpu_capabilities: tuple = ()  # ((major, minor), ...), one per GPU

    def describe(self) -> str:
        if self.gpu_capabilities:
            return ", ".join(f"GPU compute capability {major}.{minor}" for major, minor in self.gpu_capabilities)
        bf16 = [flag for flag in CPU_BF16_FLAGS if flag in self.cpu_flags]
        return f"CPU with {' and '.join(bf16)}" if bf16 else "CPU without native bfloat16"


@dataclass(frozen=True)
class Choice:
    value: object  # the policy name, or True/False for XLA
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
    if setting not in PRECISIONS:
        raise ConfigError(f"train.precision must be one of {', '.join(PRECISIONS)}, not {setting!r}.")
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


def choose_jit_compile(setting, machine: Machine) -> Choice:
    """XLA for `train.jit_compile`: `auto` is on with GPUs, off on CPUs (oneDNN's plain path measured faster)."""
    if isinstance(setting, bool):
        return Choice(setting, "set in the config")
    if setting != "auto":
        raise ConfigError(f"train.jit_compile must be auto, true or false, not {setting!r}.")
    if machine.gpu_capabilities:
        return Choice(True, "auto: XLA fuses the step's small ops on GPUs")
    return Choice(False, "auto: on CPUs TensorFlow's oneDNN path is faster than XLA (make bench shows both)")


def choose_settings(train_cfg: dict, machine: Machine) -> dict:
    """{"precision": Choice, "jit_compile": Choice} for `train_cfg` on `machine`."""
    return {
        "precision": choose_precision(train_cfg["precision"], machine),
        "jit_compile": choose_jit_compile(train_cfg["jit_compile"], machine),
    }


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


def detect() -> Machine:
    """This machine: its CPU flags and the compute capability of each GPU TensorFlow sees."""
    import tensorflow as tf

    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        capabilities.append(tuple(capability) if capability else (0, 0))
    return Machine(read_cpu_flags(), tuple(capabilities))

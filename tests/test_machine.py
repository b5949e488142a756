"""What `auto` picks for a machine: precision and XLA, from CPU flags and GPU compute capabilities."""

import pytest

from replication.errors import ConfigError
from replication.machine import Machine, choose_jit_compile, choose_precision, loss_scaling, read_cpu_flags

ZEN4 = Machine(cpu_flags=frozenset({"sse4_2", "avx2", "avx512f", "avx512_bf16"}))
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


def test_a_set_precision_is_kept_and_an_unknown_one_refused():
    assert choose_precision("mixed_float16", ZEN3).value == "mixed_float16"
    assert choose_precision("float32", ZEN4).reason == "set in the config"
    with pytest.raises(ConfigError, match="train.precision must be one of auto, float32, mixed_float16, mixed_bfloat16"):
        choose_precision("bfloat16", ZEN4)


def test_only_float16_scales_its_loss():
    assert [loss_scaling(p) for p in ("float32", "mixed_float16", "mixed_bfloat16")] == [False, True, False]


def test_auto_xla_is_on_with_gpus_only_and_true_false_are_kept():
    assert choose_jit_compile("auto", ZEN4).value is False
    assert choose_jit_compile("auto", Machine(gpu_capabilities=((8, 0),))).value is True
    assert choose_jit_compile(True, ZEN4).value is True
    assert choose_jit_compile(False, Machine(gpu_capabilities=((8, 0),))).value is False
    with pytest.raises(ConfigError, match="train.jit_compile must be auto, true or false"):
        choose_jit_compile("yes", ZEN4)


def test_cpu_flags_are_read_from_proc_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu sse4_2 avx512f avx512_bf16\n\n"
        "processor\t: 1\nflags\t\t: fpu sse4_2 avx512f avx512_bf16\n"
    )
    assert read_cpu_flags(cpuinfo) == {"fpu", "sse4_2", "avx512f", "avx512_bf16"}
    assert read_cpu_flags(tmp_path / "missing") == frozenset()

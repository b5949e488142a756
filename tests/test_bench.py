"""The benchmark's own arithmetic and its step case, on tiny networks (speed itself is never asserted)."""

import argparse
import json
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import step_speed  # noqa: E402

TINY = ["data.load_size=32", "data.crop_size=32", "model.ngf=4", "model.ndf=4", "model.num_downs=5", "model.n_blocks=1"]


def test_forward_flops_counts_a_conv_and_a_transposed_conv_by_hand():
    x = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(5, 3, strides=2, padding="same")(x)  # 4x4x5 outputs, each 3*3*3 multiply-adds
    z = keras.layers.Conv2DTranspose(2, 4, strides=2, padding="same")(y)  # each of 4x4 inputs scatters 4*4*5*2
    network = keras.Model(x, z)
    expected = 2 * (4 * 4 * 5 * 3 * 3 * 3) + 2 * (4 * 4 * 4 * 4 * 5 * 2)
    assert step_speed.forward_flops(network, 8, batch=3) == 3 * expected


@pytest.mark.parametrize("size", ["demo", "pix2pix"])
def test_step_case_times_each_model_with_one_trace(size):
    case = {"size": size, "precision": "float32", "jit_compile": False, "batch": 1, "overrides": TINY}
    row = step_speed.step_case(argparse.Namespace(case=json.dumps(case), min_steps=2, min_seconds=0.0))
    assert row["steps"] >= 2 and row["rate"] > 0
    assert row["traces"] == 1
    assert row["threads_per_op_used"] == tf.config.threading.get_intra_op_parallelism_threads()  # what ran, set or kept


def test_quick_plan_keeps_the_large_sizes_at_the_settings_auto_picks():
    auto = {"precision": "mixed_bfloat16", "jit_compile": False, "threads_per_op": 1, "threads_per_op_without_xla": 1}
    plan = step_speed.step_cases(quick=True, mixed="mixed_bfloat16", auto=auto, pix2pix=True)
    settings = lambda size: {(c["precision"], c["jit_compile"], c["batch"], c.get("threads_per_op", "auto")) for c in plan if c["size"] == size}  # noqa: E731
    assert settings("256") == settings("pix2pix") == {("mixed_bfloat16", False, 1, "auto")}
    assert settings("demo") == {(p, j, 1, "auto") for p in ("float32", "mixed_bfloat16") for j in (False, True)} | {
        ("mixed_bfloat16", False, 1, 0)  # TensorFlow's default threads beside auto's
    }
    assert settings("128") == {("float32", False, 1, "auto"), ("mixed_bfloat16", True, 1, "auto"),
                               ("mixed_bfloat16", False, 1, "auto"), ("mixed_bfloat16", False, 1, 0)}
    loops = step_speed.loop_cases(quick=True, auto=auto)
    assert [(c["steps_per_call"], c.get("threads_per_op", "auto")) for c in loops] == [(5, "auto"), (5, 0)]


def test_full_plan_compares_tensorflows_threads_at_every_size_unless_auto_is_already_its_default():
    auto = {"precision": "mixed_bfloat16", "jit_compile": False, "threads_per_op": 1, "threads_per_op_without_xla": 1}
    plan = step_speed.step_cases(quick=False, mixed="mixed_bfloat16", auto=auto, pix2pix=True)
    default_threads = [(c["size"], c["batch"]) for c in plan if c.get("threads_per_op") == 0]
    assert default_threads == [(size, batch) for size in ("demo", "128", "256", "pix2pix") for batch in (1, 4)]
    assert len(plan) == 4 * 2 * 2 * 2 + 8
    on_gpu = {"precision": "mixed_bfloat16", "jit_compile": True, "threads_per_op": 0, "threads_per_op_without_xla": 0}
    assert not [c for c in step_speed.step_cases(False, "mixed_bfloat16", on_gpu, True) if "threads_per_op" in c]
    assert [c["steps_per_call"] for c in step_speed.loop_cases(False, on_gpu)] == [1, 5, 1, 5]


def test_quick_plan_on_a_cpu_without_bfloat16_times_xla_at_128_and_tensorflows_threads_beside_the_plain_step():
    # Zen 3: auto is float32 with XLA (its step keeps TensorFlow's threads), the plain step one thread per op
    auto = {"precision": "float32", "jit_compile": True, "threads_per_op": 0, "threads_per_op_without_xla": 1}
    plan = step_speed.step_cases(quick=True, mixed="float32", auto=auto, pix2pix=True)
    settings = lambda size: {(c["jit_compile"], c.get("threads_per_op", "auto")) for c in plan if c["size"] == size}  # noqa: E731
    assert settings("demo") == settings("128") == {(False, "auto"), (True, "auto"), (False, 0)}
    assert settings("256") == settings("pix2pix") == {(True, "auto")}
    assert {c["precision"] for c in plan} == {"float32"}
    loops = step_speed.loop_cases(quick=True, auto=auto)
    assert [(c["steps_per_call"], c.get("threads_per_op", "auto")) for c in loops] == [(5, "auto"), (5, 0)]


@pytest.mark.parametrize("flags, slug", [
    ({"avx2", "avx512f", "avx512_bf16"}, "amd-epyc-avx512-bf16-2cpu"),
    ({"avx2"}, "amd-epyc-avx2-2cpu"),
    (set(), "amd-epyc-2cpu"),
])
def test_two_kinds_of_one_cpu_name_keep_separate_results_files(flags, slug):
    info = {"device": "AMD EPYC", "gpu_count": 0, "cpus": 2, "vector_unit": step_speed.vector_unit(flags)}
    assert step_speed.machine_slug(info) == slug
    assert step_speed.machine_slug({"device": "NVIDIA A100-SXM4-40GB", "gpu_count": 2, "cpus": 32}) == "nvidia-a100-sxm4-40gb-2gpu"

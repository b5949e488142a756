"""The benchmark's own arithmetic and its step case, on tiny networks (speed itself is never asserted)."""

import argparse
import itertools
import json
import sys
from pathlib import Path

import keras
import pytest
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import step_speed  # noqa: E402
import common  # noqa: E402

TINY = ["data.load_size=32", "data.crop_size=32", "model.ngf=4", "model.ndf=4", "model.num_downs=5", "model.n_blocks=1"]


def test_forward_flops_counts_a_conv_and_a_transposed_conv_by_hand():
    x = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(5, 3, strides=2, padding="same")(x)  # 4x4x5 outputs, each 3*3*3 multiply-adds
    z = keras.layers.Conv2DTranspose(2, 4, strides=2, padding="same")(y)  # each of 4x4 inputs scatters 4*4*5*2
    network = keras.Model(x, z)
    expected = 2 * (4 * 4 * 5 * 3 * 3 * 3) + 2 * (4 * 4 * 4 * 4 * 5 * 2)
    assert step_speed.forward_flops(network, 8, batch=3) == 3 * expected


@pytest.mark.parametrize("size, gradients", [("demo", "forward"), ("pix2pix", "native")])
def test_step_case_times_each_model_with_one_trace(size, gradients):
    case = {"size": size, "precision": "float32", "jit_compile": False, "batch": 1, "conv_gradients": gradients, "overrides": TINY}
    row = step_speed.step_case(argparse.Namespace(case=json.dumps(case), min_steps=2, min_seconds=0.0))
    assert row["steps"] >= 2 and row["rate"] > 0
    assert row["traces"] == 1
    assert row["threads_per_op_used"] == tf.config.threading.get_intra_op_parallelism_threads()  # what ran, set or kept


def settings_of(plan, size):
    return {(c["precision"], c["jit_compile"], c["conv_gradients"], c.get("threads_per_op", "auto"))
            for c in plan if c["size"] == size}


ZEN4_AUTO = {"precision": "mixed_bfloat16", "conv_gradients": "native", "jit_compile": False, "threads_per_op": 1,
             "threads_per_op_without_xla": 1}
# Zen 3: auto is float32, forward conv gradients, the plain step with one thread per op
ZEN3_AUTO = {"precision": "float32", "conv_gradients": "forward", "jit_compile": False, "threads_per_op": 1,
             "threads_per_op_without_xla": 1}


def test_quick_plan_keeps_the_large_sizes_at_the_settings_auto_picks():
    plan = step_speed.step_cases(quick=True, mixed="mixed_bfloat16", auto=ZEN4_AUTO, pix2pix=True)
    assert {c["batch"] for c in plan} == {1}
    bf16 = "mixed_bfloat16"
    assert settings_of(plan, "256") == settings_of(plan, "pix2pix") == {(bf16, False, "native", "auto")}
    assert settings_of(plan, "demo") == {(p, j, "native", "auto") for p in ("float32", bf16) for j in (False, True)} | {
        (bf16, False, "forward", "auto"),  # the other gradients beside the plain step
        (bf16, False, "native", 0),  # TensorFlow's default threads beside auto's
    }
    assert settings_of(plan, "128") == {("float32", False, "native", "auto"), (bf16, True, "native", "auto"),
                                        (bf16, False, "native", "auto"), (bf16, False, "forward", "auto")}
    loops = step_speed.loop_cases(quick=True, auto=ZEN4_AUTO)
    assert [(c["steps_per_call"], c.get("threads_per_op", "auto")) for c in loops] == [(5, "auto"), (5, 0)]


def test_full_plan_compares_gradients_and_tensorflows_threads_unless_auto_is_already_its_default():
    plan = step_speed.step_cases(quick=False, mixed="mixed_bfloat16", auto=ZEN4_AUTO, pix2pix=True)
    other_gradients = [(c["size"], c["precision"], c["jit_compile"], c["batch"]) for c in plan if c["conv_gradients"] == "forward"]
    assert other_gradients == [(size, "mixed_bfloat16", jit, 1) for size in ("demo", "128", "256") for jit in (False, True)]
    default_threads = [(c["size"], c["batch"]) for c in plan if c.get("threads_per_op") == 0]
    assert default_threads == [(size, batch) for size in ("demo", "128", "256", "pix2pix") for batch in (1, 4)]
    plain = [(c["size"], c["precision"], c["jit_compile"], c["batch"]) for c in plan
             if c["conv_gradients"] == "native" and "threads_per_op" not in c]
    assert sorted(plain) == sorted(itertools.product(("demo", "128", "256", "pix2pix"), ("float32", "mixed_bfloat16"), (False, True), (1, 4)))
    assert len({json.dumps(c, sort_keys=True) for c in plan}) == len(plan)  # no setting timed twice
    on_gpu = {**ZEN4_AUTO, "jit_compile": True, "threads_per_op": 0, "threads_per_op_without_xla": 0}
    assert not [c for c in step_speed.step_cases(False, "mixed_bfloat16", on_gpu, True) if "threads_per_op" in c]
    assert [c["steps_per_call"] for c in step_speed.loop_cases(False, on_gpu)] == [1, 5, 1, 5]


def test_quick_plan_on_a_cpu_without_bfloat16_times_forward_gradients_beside_tensorflows_with_and_without_xla():
    plan = step_speed.step_cases(quick=True, mixed="float32", auto=ZEN3_AUTO, pix2pix=True)
    f32 = "float32"
    # XLA with TensorFlow's gradients was auto's choice here before forward gradients beat it
    assert settings_of(plan, "demo") == {(f32, False, "forward", "auto"), (f32, True, "native", "auto"),
                                         (f32, False, "native", "auto"), (f32, False, "forward", 0)}
    assert settings_of(plan, "128") == {(f32, False, "forward", "auto"), (f32, True, "native", "auto"),
                                        (f32, False, "native", "auto")}
    assert settings_of(plan, "256") == settings_of(plan, "pix2pix") == {(f32, False, "forward", "auto")}
    loops = step_speed.loop_cases(quick=True, auto=ZEN3_AUTO)
    assert [(c["steps_per_call"], c.get("threads_per_op", "auto")) for c in loops] == [(5, "auto"), (5, 0)]


@pytest.mark.parametrize("flags, slug", [
    ({"avx2", "avx512f", "avx512_bf16"}, "amd-epyc-avx512-bf16-2cpu"),
    ({"avx2"}, "amd-epyc-avx2-2cpu"),
    (set(), "amd-epyc-2cpu"),
])
def test_two_kinds_of_one_cpu_name_keep_separate_results_files(flags, slug):
    info = {"device": "AMD EPYC", "gpu_count": 0, "cpus": 2, "vector_unit": common.vector_unit(flags)}
    assert common.machine_slug(info) == slug
    assert common.machine_slug({"device": "NVIDIA A100-SXM4-40GB", "gpu_count": 2, "cpus": 32}) == "nvidia-a100-sxm4-40gb-2gpu"


def test_conv_gradient_bench_times_every_distinct_conv_and_forward_gradients_for_stride_1(tmp_path, capsys):
    import conv_gradients

    tiny = ["data.load_size=32", "data.crop_size=32", "model.generator=resnet", "model.ngf=4", "model.ndf=4", "model.n_blocks=2"]
    assert conv_gradients.main(["--experiment", "demo", *[a for s in tiny for a in ("--set", s)], "--repeats", "1",
                                "--out-dir", str(tmp_path)]) == 0
    result = json.loads(next(tmp_path.glob("conv-gradients-*.json")).read_text())
    rows = {(r["network"], tuple(r["input"]), tuple(r["kernel"]), r["stride"]): r for r in result["rows"]}
    generator = {k[1:]: r["count"] for k, r in rows.items() if k[0] == "generator"}
    assert generator == {
        ((38, 38, 3), (7, 7, 3, 4), 1): 1,  # c7s1-4 after reflection padding 3
        ((34, 34, 4), (3, 3, 4, 8), 2): 1,  # d8
        ((18, 18, 8), (3, 3, 8, 16), 2): 1,  # d16
        ((10, 10, 16), (3, 3, 16, 16), 1): 4,  # the two R16 blocks' convs
        ((38, 38, 4), (7, 7, 4, 3), 1): 1,  # the last c7s1-3
    }
    assert sum(r["count"] for k, r in rows.items() if k[0] == "discriminator") == 5  # C4-C32 and the score conv
    for (network, _, _, stride), row in rows.items():
        assert row["forward_ms"] > 0 and row["native_input_gradient_ms"] > 0 and row["native_kernel_gradient_ms"] > 0
        assert ("forward_input_gradient_ms" in row) == ("forward_kernel_gradient_ms" in row) == (stride == 1)
    assert "fwd dw" in capsys.readouterr().out


def test_profile_takes_each_ops_own_time_less_the_ops_nested_in_it():
    import step_profile

    # a while loop (0..10) holding two ops (1..3, 4..8), one of which holds another (5..6); then an op after it
    events = [(0, 10, "while:While"), (1, 2, "a:Mul"), (4, 4, "b:Conv2D"), (5, 1, "c:Add"), (12, 3, "d:Sub")]
    assert step_profile.exclusive_times(events) == [
        ("while:While", 4), ("a:Mul", 2), ("b:Conv2D", 3), ("c:Add", 1), ("d:Sub", 3)]
    assert [step_profile.part_of(n) for n in ("gradient_tape/unet_generator/conv2d/Conv2DBackpropFilter",
                                              "reference_adam/Mul_3", "cond_1/then/_312/cond_1/adam_1/Sqrt_16",
                                              "cond_1/then/_312/cond_1/AssignVariableOp", "unet_generator_1/conv2d/Conv2D",
                                              "while/body/_1/while/TensorScatterUpdate")] == [
        "backward", "optimizer", "optimizer", "optimizer", "forward", "forward"]


# Op types of a tiny U-Net step as TF 2.21's profiler names them: oneDNN's recorded on an Intel Xeon
# (Sapphire Rapids class); Eigen's (AMD EPYC Zen 3) and a GPU's (cuDNN behind them) are TensorFlow's
# own op types, as in the Zen 3 profile of docs/performance.md.
RECORDED_OP_TYPES = {
    "onednn": ["_MklNativeConv2D", "_MklNativeFusedConv2D", "_MklNativePadWithConv2D", "_MklNativePadWithFusedConv2D",
               "_MklNativeConv2DBackpropFilter", "_MklNativeConv2DBackpropFilterWithBias",
               "_MklNativeConv2DBackpropInput", "LeakyRelu", "BiasAddGrad"],
    "eigen": ["Conv2D", "_FusedConv2D", "Conv2DBackpropFilter", "Conv2DBackpropInput", "LeakyRelu", "BiasAddGrad"],
    "cudnn": ["Conv2D", "_FusedConv2D", "Conv2DBackpropFilter", "Conv2DBackpropInput", "LeakyRelu", "BiasAddGrad"],
}


@pytest.mark.parametrize("library", sorted(RECORDED_OP_TYPES))
def test_profile_counts_each_librarys_convolutions_under_tensorflows_op_types(library):
    import step_profile

    families = {step_profile.op_family(op) for op in RECORDED_OP_TYPES[library]}
    assert families == {"Conv2D", "Conv2DBackpropFilter", "Conv2DBackpropInput", "LeakyRelu", "BiasAddGrad"}


def test_profile_of_a_tiny_demo_step_splits_its_ops_time_into_the_three_parts(tmp_path):
    import step_profile
    from replication import config as config_lib

    config = config_lib.resolve("demo", TINY)
    result = step_profile.profile(config, steps=2, trace_dir=tmp_path / "trace")
    rows = {(r["part"], r["op"]): r for r in result["rows"]}
    assert rows[("backward", "Conv2DBackpropFilter")]["per_step"] > 0  # the U-Net's kernel gradients
    assert rows[("forward", "Conv2D")]["per_step"] > 0
    assert any(part == "optimizer" for part, _ in rows)
    assert sum(r["share"] for r in result["rows"]) == pytest.approx(1.0, abs=0.01)
    assert set(result["parts"]) == {"forward", "backward", "optimizer"} and 0 < result["busy"] <= 1.01
    assert list((tmp_path / "trace").rglob("*.xplane.pb"))  # the trace is kept for TensorBoard


def test_a_steps_flops_follow_the_passes_its_objective_makes():
    """Switching the identity loss off removes F(x) and G(y), two generator passes trained for their
    weights (3x a forward pass each); switching the GAN terms off removes every discriminator pass."""
    from replication import config as config_lib, models

    def flops(*overrides):
        model = models.build(config_lib.resolve("demo", [*TINY, *overrides]))
        return step_speed.step_flops(model, 32, batch=1), model

    with_identity, model = flops()
    generator = step_speed.forward_flops(model.G, 32, batch=1)
    discriminator = step_speed.forward_flops(model.D_X, 32, batch=1)
    assert with_identity - flops("loss.lambda_identity=0")[0] == 3 * 2 * generator
    assert with_identity - flops("loss.gan=false")[0] == (2 * 2 + 3 * 4) * discriminator

"""The benchmark's own arithmetic and its step case, on tiny networks (speed itself is never asserted)."""

import argparse
import json
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

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


def test_quick_plan_keeps_the_large_sizes_at_the_settings_auto_picks():
    auto = {"precision": "mixed_bfloat16", "jit_compile": False}
    plan = step_speed.step_cases(quick=True, mixed="mixed_bfloat16", auto=auto, pix2pix=True)
    large = [c for c in plan if c["size"] in ("256", "pix2pix")]
    assert large and all((c["precision"], c["jit_compile"], c["batch"]) == ("mixed_bfloat16", False, 1) for c in large)
    assert {(c["precision"], c["jit_compile"], c["batch"]) for c in plan if c["size"] == "demo"} == {
        (p, j, 1) for p in ("float32", "mixed_bfloat16") for j in (False, True)
    }
    assert np.all([c["kind"] == "step" for c in plan])

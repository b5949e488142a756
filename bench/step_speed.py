"""Benchmark: CycleGAN training steps per second, plain tf.function vs XLA.

    python bench/step_speed.py [--steps 5] [--sizes demo paper] [--out bench/results/step_speed.json]

Each case builds the experiment's networks, warms up (traces and compiles) with
two steps, then times `--steps` steps on random images already on the device,
so it measures the step alone, not the data pipeline. Prints a table and
writes JSON with the machine's description beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from replication import config as config_lib  # noqa: E402
from replication import models  # noqa: E402
from replication.runs import versions  # noqa: E402
from replication.training import compile_step, use_mixed_precision  # noqa: E402

CASES = {
    "demo": ("demo", ["model.generator=resnet", "model.n_blocks=3"]),  # 64x64, ResNet-3 ngf 16 (the demo trains a U-Net since evaluate)
    "paper": ("horse2zebra", []),  # 256x256, ResNet-9, 70x70 PatchGAN
    "pix2pix": ("pix2pix_facades", []),  # 256x256, U-Net 256, conditional 70x70 PatchGAN
}


def time_steps(config: dict, jit: bool, steps: int) -> dict:
    mixed = use_mixed_precision(config["train"]["mixed_precision"])
    keras.config.set_dtype_policy("mixed_float16" if mixed else "float32")
    keras.utils.set_random_seed(0)
    model = models.build(config, mixed_precision=mixed)
    step = compile_step(model, tf.distribute.get_strategy(), jit)
    size, batch = config["data"]["crop_size"], config["data"]["batch_size"]
    a = tf.random.uniform((batch, size, size, 3), -1, 1)
    b = tf.random.uniform((batch, size, size, 3), -1, 1)
    started = time.perf_counter()
    for i in range(2):
        float(next(iter(step(a, b, tf.constant(i, tf.int64)).values())))
    warmup = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(steps):
        losses = step(a, b, tf.constant(2 + i, tf.int64))
    float(next(iter(losses.values())))  # wait for the last step
    seconds = time.perf_counter() - started
    keras.config.set_dtype_policy("float32")
    return {
        "image_size": size, "batch_size": batch, "jit_compile": jit, "mixed_precision": mixed,
        "steps": steps, "seconds": round(seconds, 4), "steps_per_second": round(steps / seconds, 4),
        "warmup_seconds": round(warmup, 2),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--sizes", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--out", default="bench/results/step_speed.json")
    args = parser.parse_args(argv)

    rows = []
    for name in args.sizes:
        experiment, overrides = CASES[name]
        config = config_lib.resolve(experiment, overrides)
        for jit in (False, True):
            rows.append({"case": name, **time_steps(config, jit, args.steps)})
            print(f"  {name} jit={jit}: {rows[-1]['steps_per_second']:.3f} step/s", flush=True)

    print(f"\n{'case':<8}{'size':>6}{'batch':>7}{'mixed':>7}{'xla':>6}{'step/s':>10}{'s/step':>9}{'speed-up':>10}")
    for row in rows:
        plain = next(r for r in rows if r["case"] == row["case"] and not r["jit_compile"])
        row["speedup_vs_plain"] = round(row["steps_per_second"] / plain["steps_per_second"], 3)
        print(
            f"{row['case']:<8}{row['image_size']:>6}{row['batch_size']:>7}{str(row['mixed_precision']):>7}"
            f"{str(row['jit_compile']):>6}{row['steps_per_second']:>10.3f}{1 / row['steps_per_second']:>9.3f}"
            f"{row['speedup_vs_plain']:>9.2f}x"
        )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "benchmark": "cyclegan_step_speed",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), **versions()},
        "peak_host_memory_mib": round(peak_mib, 1),
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\npeak host memory {peak_mib:.0f} MiB; written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

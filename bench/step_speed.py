"""Benchmark: the training step, the input pipeline and the demo loop on this machine.

    python bench/step_speed.py [--quick] [--out-dir bench/results]      (`make bench` runs the full set)

Step cases: the CycleGAN step (demo 64x64, 128x128 ResNet-6, 256x256 ResNet-9; the pix2pix
step when the kit has it), float32 and the machine's mixed policy, XLA off and on, batch 1
and 4, with the conv gradients and threads per op `auto` picks; beside them, the other conv
gradients (TensorFlow's or as forward convolutions) and TensorFlow's default threads. Each case runs in a process of its own, so its peak memory and its trace count are its
own: it builds the experiment's networks, compiles the step, warms up with two steps, then
times steps on random images already in memory, fetching the losses once at the end as the
loop does between logged steps. Beside each rate: the step's analytic FLOPs (every
convolution, forward and backward), the achieved GFLOP/s and its share of a matmul peak
measured in the same run, the number of traces of the step, and the peak memory (host RSS
on CPUs, the GPU allocator's peak on GPUs).

Also: the input pipeline alone (256x256 JPEGs through the paper's resize-286, crop-256 and
flip jitter), and the demo trained end to end through the loop (data pipeline, logging,
progress bar), one step per call and several, and with TensorFlow's default threads.

`--quick` (under 10 minutes on a 2-core CPU): batch 1 only; the demo step in every precision
and compilation, the 128x128 step in the mixed policy with XLA off and on and in float32,
the 256x256 and pix2pix steps with the settings `auto` picks; XLA with TensorFlow's gradients
only, the other conv gradients beside the plain demo and 128x128 steps; TensorFlow's default
threads beside `auto`'s for the demo step and the loop; the pipeline and the demo loop.
Prints one table; writes bench/results/<machine>.json with the device, the versions and
every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS_DIR, ROOT, machine_slug, results_machine, write_results

STEP_SIZES = {  # case name: (experiment, what it is)
    "demo": ("demo", "64x64 U-Net-64 ngf 16"),
    "128": ("cityscapes", "128x128 ResNet-6"),
    "256": ("horse2zebra", "256x256 ResNet-9"),
    "pix2pix": ("pix2pix_facades", "256x256 U-Net-256, 6-channel PatchGAN"),
}

# ---------------------------------------------------------------- in a child process


def setup_tensorflow():
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)  # peak memory is what the case used
    return tf


def apply_threads(case: dict) -> int:
    """The case's `threads_per_op` (auto unless it says, for its XLA setting), set before TensorFlow runs an op."""
    from replication.speed import machine

    here = machine.detect()
    choice = machine.choose_threads_per_op(case.get("threads_per_op", "auto"), here, case["jit_compile"])
    return machine.apply_threads(choice, here).value


def peak_memory_mib(tf) -> float:
    if tf.config.list_physical_devices("GPU"):
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def forward_flops(network, image_size: int, batch: int) -> int:
    """Multiply-adds x 2 of every convolution of one forward pass, from the layers' shapes."""
    import keras
    import numpy as np

    convs = [layer for layer in network.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))]
    probe = keras.Model(network.inputs, [t for layer in convs for t in (layer.input, layer.output)])
    shapes = [t.shape for t in probe([np.zeros((1, image_size, image_size, network.inputs[0].shape[-1]), "float32")])]
    total = 0
    for layer, input_shape, output_shape in zip(convs, shapes[0::2], shapes[1::2]):
        kernel = int(np.prod(layer.kernel.shape))  # kh * kw * c_in * c_out
        # a conv computes each output pixel; a transposed conv scatters each input pixel
        pixels = input_shape if isinstance(layer, keras.layers.Conv2DTranspose) else output_shape
        total += 2 * kernel * int(pixels[1]) * int(pixels[2])
    return total * batch


def step_flops(model, image_size: int, batch: int) -> int:
    """The step's FLOPs from the model's `forward_passes`: a network differentiated for its own
    weights costs about 3x its forward pass (forward + backward), one differentiated only for
    its input (`discriminator_through`, D in G's loss) about 2x."""
    networks = model.networks()
    generator = next(m for m in networks if "generator" in m.name)
    discriminator = next(m for m in networks if "discriminator" in m.name)
    passes = model.forward_passes
    g, d = forward_flops(generator, image_size, batch), forward_flops(discriminator, image_size, batch)
    return 3 * passes["generator"] * g + 2 * passes["discriminator_through"] * d + 3 * passes["discriminator"] * d


def timed(run, sync, min_steps: int, min_seconds: float) -> tuple[int, float]:
    """(steps, seconds) of calling `run(i)` until both minimums are reached; `sync` waits for the device."""
    started, steps = time.perf_counter(), 0
    while steps < min_steps or time.perf_counter() - started < min_seconds:
        last = run(steps)
        steps += 1
    sync(last)
    return steps, time.perf_counter() - started










def machine_case(args) -> dict:
    """The device, the versions, what `auto` picks here, and matmul peaks in float32 and the mixed dtype."""
    tf = setup_tensorflow()
    from replication.speed import machine
    from replication.runs import versions

    here = machine.detect()
    auto = {"precision": "auto", "conv_gradients": "auto", "jit_compile": "auto", "threads_per_op": "auto"}
    settings = machine.choose_settings(auto, here)
    dtypes = {"float32", settings["precision"].value.removeprefix("mixed_")}
    peaks = {}
    for dtype in sorted(dtypes):
        n = 2048
        a = tf.cast(tf.random.uniform((n, n)), dtype)
        matmul = tf.function(lambda x: tf.matmul(x, x))
        matmul(a).numpy()
        # the best of several short windows: a peak, not an average over other processes' bursts
        windows = [timed(lambda i: matmul(a), lambda last: last.numpy(), 3, 0.5) for _ in range(5 if args.quick else 10)]
        peaks[dtype] = round(max(2 * n**3 * steps / seconds for steps, seconds in windows) / 1e9, 1)
    plain_threads = machine.choose_threads_per_op("auto", here, jit_compile=False)
    return {
        **results_machine(tf), **versions(), "platform": platform.platform(), "machine": here.describe(),
        "auto": {k: {"value": c.value, "reason": c.reason} for k, c in settings.items()},
        "threads_per_op_without_xla": plain_threads.value,
        "matmul_peak_gflops": peaks,
    }


def step_case(args) -> dict:
    """One compiled step: build, warm up, time; FLOPs, traces and peak memory beside the rate."""
    tf = setup_tensorflow()
    import keras

    from replication import config as config_lib
    from replication import models
    from replication.training import compile_step

    case = json.loads(args.case)
    threads = apply_threads(case)
    config = config_lib.resolve(STEP_SIZES[case["size"]][0], [f"data.batch_size={case['batch']}", *case.get("overrides", [])])
    size, batch = config["data"]["crop_size"], case["batch"]
    keras.utils.set_random_seed(0)
    model = models.build(config, case["precision"], case["conv_gradients"])
    step = compile_step(model, tf.distribute.get_strategy(), case["jit_compile"])
    a = tf.random.uniform((batch, size, size, 3), -1, 1)
    b = tf.random.uniform((batch, size, size, 3), -1, 1)
    fetch = model.loss_names[0]  # any one loss: fetching it waits for the whole step
    started = time.perf_counter()
    for i in range(2):
        float(step(a, b, tf.constant(i, tf.int64))[fetch])
    warmup = time.perf_counter() - started
    steps, seconds = timed(
        lambda i: step(a, b, tf.constant(2 + i, tf.int64)), lambda losses: float(losses[fetch]),
        args.min_steps, args.min_seconds,
    )
    flops = step_flops(model, size, batch)
    return {
        "steps": steps, "seconds": round(seconds, 3), "rate": round(steps / seconds, 4), "unit": "step/s",
        "s_per_step": round(seconds / steps, 4), "warmup_seconds": round(warmup, 1),
        "gflop_per_step": round(flops / 1e9, 2), "gflops": round(flops * steps / seconds / 1e9, 1),
        "traces": step.experimental_get_tracing_count(), "peak_mib": round(peak_memory_mib(tf)),
        "threads_per_op_used": threads,
    }


def write_jpegs(folder: Path, size: int, count: int) -> None:
    """trainA/ trainB/ testA/ testB/ of `count` size x size JPEGs (the synthetic scenes), as horse2zebra's."""
    from PIL import Image

    from replication.data import make_scene, render

    for split, domain in (("trainA", "A"), ("trainB", "B"), ("testA", "A"), ("testB", "B")):
        (folder / split).mkdir(parents=True, exist_ok=True)
        for i in range(count if split.startswith("train") else 2):
            image = render(make_scene(0, split, i, size), domain)
            Image.fromarray(image).save(folder / split / f"{i:04d}.jpg", quality=90)


def pipeline_case(args) -> dict:
    """Images per second of the tf.data pipeline alone: 256x256 JPEGs, resize 286, random crop 256, flip."""
    setup_tensorflow()
    from replication import config as config_lib
    from replication import models

    count = 128 if args.quick else 512
    folder = Path(args.work) / "jpegs"
    write_jpegs(folder, 256, count)
    config = config_lib.resolve("horse2zebra", ["data.source=folder", f"data.root={folder}"])
    data = models.training_data(config)
    batches = iter(data.epoch(0))
    next(batches)  # the pipeline's start
    started, elements = time.perf_counter(), 0
    for a, b in batches:
        elements += int(a.shape[0])
    seconds = time.perf_counter() - started
    images = 2 * elements  # each element is an A and a B image
    return {
        "images": images, "seconds": round(seconds, 3), "rate": round(images / seconds, 1), "unit": "images/s",
        "cpus": os.cpu_count(), "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def loop_case(args) -> dict:
    """The demo trained end to end (data, loop, logs): the rate between the first and last logged rows."""
    setup_tensorflow()
    import csv

    from replication import config as config_lib
    from replication import data as data_lib
    from replication.training import train

    case = json.loads(args.case)
    root = Path(args.work) / "synthetic"
    if not (root / "synthetic.json").exists():
        data_lib.write_synthetic(root)
    steps = 100 if args.quick else 200
    overrides = [
        f"data.root={root}", "train.epochs=1", "train.epochs_decay=0", "train.log_every=5",
        f"train.max_steps_per_epoch={steps}", f"train.steps_per_call={case['steps_per_call']}",
        f"train.threads_per_op={case.get('threads_per_op', 'auto')}", *case["overrides"],
    ]
    config = config_lib.resolve("demo", overrides)
    run_dir = Path(args.work) / f"loop-{time.time_ns()}"
    started = time.perf_counter()
    train(config, run_dir=run_dir)
    total = time.perf_counter() - started
    with (run_dir / "losses.csv").open() as f:
        rows = list(csv.DictReader(f))
    first, last = rows[0], rows[-1]
    rate = (int(last["step"]) - int(first["step"])) / (float(last["wall_time"]) - float(first["wall_time"]))
    settings = json.loads((run_dir / "versions.json").read_text())["settings"]
    return {
        "steps": steps, "rate": round(rate, 2), "unit": "step/s", "s_per_step": round(1 / rate, 4),
        "precision": settings["precision"]["value"], "jit_compile": settings["jit_compile"]["value"],
        "conv_gradients": settings["conv_gradients"]["value"],
        "threads_per_op_used": settings["threads_per_op"]["value"],
        "seconds_with_start_and_export": round(total, 1),
        "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


CHILDREN = {"machine": machine_case, "step": step_case, "pipeline": pipeline_case, "loop": loop_case}


# ---------------------------------------------------------------- the plan and the table


def step_cases(quick: bool, mixed: str, auto: dict, pix2pix: bool) -> list[dict]:
    """Every precision x XLA x batch with `auto`'s conv gradients and threads per op; then the
    other conv gradients beside them at batch 1 and `auto`'s precision, and TensorFlow's default
    threads (threads_per_op 0) beside the plain step at `auto`'s precision where `auto` gives the
    plain step other threads (`auto["threads_per_op_without_xla"]`). `quick` keeps batch 1, trims
    the large sizes, times XLA with TensorFlow's gradients only and compares threads on the demo
    step only."""
    precisions = ["float32"] + ([mixed] if mixed != "float32" else [])
    is_auto = lambda precision, jit: (precision, jit) == (auto["precision"], auto["jit_compile"])  # noqa: E731
    gradients = auto["conv_gradients"]
    cases = []
    for size in ("demo", "128", "256", *(["pix2pix"] if pix2pix else [])):
        for precision in precisions:
            for jit in (False, True):
                for batch in (1, 4):
                    if quick and batch != 1:
                        continue
                    if quick and size in ("256", "pix2pix") and not is_auto(precision, jit):
                        continue
                    if quick and size == "128" and (precision, jit) == ("float32", True) and mixed != "float32":
                        continue  # XLA's cost at 128 shows in the mixed policy; this case is the slowest
                    # XLA compiles TensorFlow's gradient ops into its own convolutions, so forward
                    # gradients hardly change it (measured): quick times XLA with native ones only
                    with_gradients = "native" if quick and jit else gradients
                    cases.append({"kind": "step", "size": size, "precision": precision, "jit_compile": jit,
                                  "batch": batch, "conv_gradients": with_gradients})
    beside = lambda case: case["batch"] == 1 and case["precision"] == auto["precision"] and case["size"] != "pix2pix"  # noqa: E731
    other = {"forward": "native", "native": "forward"}
    cases += [
        {**case, "conv_gradients": other[case["conv_gradients"]]} for case in list(cases)
        if beside(case) and not (quick and (case["size"] == "256" or case["jit_compile"]))
    ]
    if auto["threads_per_op_without_xla"] != 0:
        cases += [
            {**case, "threads_per_op": 0} for case in list(cases)
            if case["precision"] == auto["precision"] and case["conv_gradients"] == gradients and not case["jit_compile"]
            and not (quick and case["size"] != "demo")
        ]
    return cases


def loop_cases(quick: bool, auto: dict) -> list[dict]:
    """The demo's own settings, one step per call and five (quick: five), then with TensorFlow's default threads."""
    settings = [[]] if quick else [[], ["train.precision=auto", "train.jit_compile=auto"]]
    cases = [
        {"kind": "loop", "size": "demo", "batch": 1, "steps_per_call": spc, "overrides": overrides}
        for overrides in settings for spc in ((5,) if quick else (1, 5))
    ]
    if auto["threads_per_op_without_xla"] != 0:  # the demo's step is the plain one
        cases.append({"kind": "loop", "size": "demo", "batch": 1, "steps_per_call": 5, "overrides": [], "threads_per_op": 0})
    return cases


def run_child(kind: str, case: dict, args, work: Path) -> dict:
    command = [
        sys.executable, __file__, "--child", kind, "--case", json.dumps(case), "--work", str(work),
        "--min-steps", str(args.min_steps), "--min-seconds", str(args.min_seconds), *(["--quick"] if args.quick else []),
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        error = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {**case, "error": error[:300]}
    return {**case, **json.loads(lines[-1])}


def case_label(row: dict) -> str:
    if row["kind"] == "pipeline":
        return "input pipeline, 256 jitter"
    if row["kind"] == "loop":
        return f"demo loop, {row['steps_per_call']} step/call" + (" (auto)" if row["overrides"] else "")
    return f"{row['size']} step"


def gradients_label(row: dict) -> str:
    return {"forward": "fwd", "native": "TF"}.get(row.get("conv_gradients"), "-")


def threads_label(row: dict) -> str:
    """Threads per op as used: 'TF' for TensorFlow's default (every core), '-' where it does not apply."""
    used = row.get("threads_per_op_used", "-")
    return "TF" if used == 0 else str(used)


def print_table(rows: list[dict], peaks: dict) -> None:
    header = (f"{'case':<30}{'precision':>16}{'XLA':>6}{'grads':>6}{'batch':>6}{'thr/op':>7}{'rate':>10} {'unit':<9}{'s/step':>8}"
              f"{'GFLOP':>8}{'GFLOP/s':>9}{'%peak':>7}{'traces':>7}{'MiB':>7}")
    print("\n" + header + "\n" + "-" * len(header))
    for row in rows:
        if "error" in row:
            print(f"{case_label(row):<30}{row.get('precision', ''):>16}  failed: {row['error']}")
            continue
        peak = peaks.get(str(row.get("precision", "float32")).removeprefix("mixed_"))
        share = f"{100 * row['gflops'] / peak:.0f}%" if "gflops" in row and peak else "-"
        print(
            f"{case_label(row):<30}{row.get('precision', '-'):>16}{str(row.get('jit_compile', '-')):>6}"
            f"{gradients_label(row):>6}{row.get('batch', '-'):>6}"
            f"{threads_label(row):>7}"
            f"{row['rate']:>10.3f} {row['unit']:<9}{row.get('s_per_step', '-'):>8}{row.get('gflop_per_step', '-'):>8}"
            f"{row.get('gflops', '-'):>9}{share:>7}{row.get('traces', '-'):>7}{row['peak_mib']:>7}"
        )






def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the reduced set: under 10 minutes on a 2-core CPU")
    parser.add_argument("--out-dir", default=str(RESULTS_DIR))
    parser.add_argument("--min-steps", type=int, help="timed steps per case, at least (default 2 quick, 3 full)")
    parser.add_argument("--min-seconds", type=float, help="timed seconds per case, at least (default 3 quick, 10 full)")
    parser.add_argument("--child", choices=list(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--case", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.min_steps = args.min_steps or (2 if args.quick else 3)
    args.min_seconds = args.min_seconds if args.min_seconds is not None else (3.0 if args.quick else 10.0)

    if args.child:
        print(json.dumps(CHILDREN[args.child](args)))
        return 0

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        work = Path(work)
        info = run_child("machine", {"kind": "machine"}, args, work)
        if "error" in info:
            print(f"could not describe the machine: {info['error']}", file=sys.stderr)
            return 1
        auto = {**{k: v["value"] for k, v in info["auto"].items()}, "threads_per_op_without_xla": info["threads_per_op_without_xla"]}
        print(f"{info['device']} ({info['machine']}), TF {info['tensorflow']}; auto picks {auto}; "
              f"matmul peak GFLOP/s {info['matmul_peak_gflops']}", flush=True)
        mixed = info["auto"]["precision"]["value"]
        from replication import config as config_lib

        pix2pix = (config_lib.EXPERIMENTS_DIR / f"{STEP_SIZES['pix2pix'][0]}.yaml").exists()
        plan = step_cases(args.quick, mixed, auto, pix2pix) + [{"kind": "pipeline"}] + loop_cases(args.quick, auto)
        rows = []
        for i, case in enumerate(plan, 1):
            rows.append(run_child(case["kind"], case, args, work))
            print(f"[{i}/{len(plan)}] {case_label(case)} {case.get('precision', '')} xla={case.get('jit_compile', '-')} "
                  f"grads={case.get('conv_gradients', '-')} batch={case.get('batch', '-')} threads_per_op={case.get('threads_per_op', 'auto')}: {rows[-1].get('rate', rows[-1].get('error'))} {rows[-1].get('unit', '')}", flush=True)
        # Measured again at the end: a peak is the best the machine did, not what a busy moment allowed.
        again = run_child("machine", {"kind": "machine"}, args, work).get("matmul_peak_gflops", {})
        info["matmul_peak_gflops"] = {k: max(v, again.get(k, 0.0)) for k, v in info["matmul_peak_gflops"].items()}
    print_table(rows, info["matmul_peak_gflops"])
    result = {
        "benchmark": "cyclegan_speed", "quick": args.quick, "minutes": round((time.perf_counter() - started) / 60, 1),
        "machine": info, "rows": rows,
    }
    out = write_results(args.out_dir, machine_slug(info), result)
    print(f"\n{result['minutes']} minutes; written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: where an experiment's training step spends its time, by op type, from TensorFlow's profiler.

    python bench/step_profile.py [--experiment demo] [--steps 20] [--set KEY=VALUE ...] [--out-dir bench/results]

Builds the experiment's model with the settings `train` would take on this machine (precision,
conv gradients, XLA, threads per op: `auto` or the config's), times `--steps` compiled steps,
records as many with `tf.profiler`, then times as many again (the faster of the two timings is
the step's time). Each op's own time on TensorFlow's executor threads
(an op's time less that of the ops nested in it, such as a while loop's body) is summed by
part of the step, by the op's name: `backward` (the gradient tape's ops), `optimizer` (Adam's
updates) and `forward` (the networks, the losses, the history buffer), then by op type. Prints
the step's time with and without the profiler, how busy the executor threads were, and the op
types by their share of the ops' time; writes bench/results/step-profile-<experiment>-<machine>.json
and keeps the trace in bench/results/trace-<experiment>-<machine>/ for TensorBoard's profile
plugin. The profiler slows the step; the shares, not the milliseconds, are what it measures.
On a GPU the host threads only launch kernels: the kernels' times are in the trace, not here.
"""

from __future__ import annotations

import argparse
import glob
import re
import shutil
import time
from collections import defaultdict
from pathlib import Path

import common


PARTS = ("forward", "backward", "optimizer")


def part_of(node: str) -> str:
    """Which part of the step an op belongs to, by its node name.

    Adam's ops are under the scope of its class (`reference_adam`, the kit's; `adam`, Keras'); under mixed_float16 the loss-scale optimizer applies
    them inside a cond on finite gradients (`cond_1/then/.../adam_1/...`), whose own ops (its
    loss scale's update) are the only top-level cond of the step.
    """
    segments = node.split("/")
    if segments[0] == "gradient_tape":
        return "backward"
    if segments[0].startswith("cond") or any(s.startswith(("adam", "reference_adam", "loss_scale_optimizer")) for s in segments):
        return "optimizer"
    return "forward"


def op_family(op_type: str) -> str:
    """TensorFlow's op type for a kernel library's op: oneDNN's kernels carry a prefix
    (`_MklNativeConv2D`, `_MklConv2D`) and the graph optimizer fuses ops into one (`_FusedConv2D`,
    `PadWithFusedConv2D`, `Conv2DBackpropFilterWithBias`: a convolution with the padding before it or
    the bias and activation after it). Each is counted as the op at its core, so a table reads the
    same whichever library ran the step (oneDNN, Eigen, cuDNN behind TensorFlow's own op types)."""
    name = re.sub(r"^_(MklNative|Mkl)", "", op_type).lstrip("_")
    name = re.sub(r"^PadWith", "", name)
    name = re.sub(r"^Fused(?=Conv|DepthwiseConv|MatMul|BatchMatMul)", "", name)
    return re.sub(r"WithBias$", "", name)


def exclusive_times(events: list[tuple[int, int, str]]) -> list[tuple[str, int]]:
    """(name, own time) of each (start, duration, name) event of one thread: its duration less the
    durations of the events directly inside it."""
    own, stack = [], []  # stack: indices into own of the events still open, with their ends
    for start, duration, name in sorted(events, key=lambda e: (e[0], -e[1])):
        while stack and start >= stack[-1][1]:
            stack.pop()
        if stack:
            parent = stack[-1][0]
            own[parent] = (own[parent][0], own[parent][1] - duration)
        own.append((name, duration))
        stack.append((len(own) - 1, start + duration))
    return own


def op_events(xspace) -> dict[str, list[tuple[int, int, str]]]:
    """{thread: [(start ps, duration ps, "node:OpType")]} of the ops on TensorFlow's executor threads."""
    threads = {}
    for plane in xspace.planes:
        if not plane.name.startswith("/host:"):
            continue
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            events = [(line.timestamp_ns * 1000 + e.offset_ps, e.duration_ps, names[e.metadata_id]) for e in line.events]
            # an op event is "node:OpType"; the executor's own events ("ExecutorState::Process") are not ops
            threads[line.name] = [e for e in events if ":" in e[2] and "::" not in e[2]]
    return threads


def op_table(threads: dict, steps: int) -> list[dict]:
    """One row per (part, op type): milliseconds per step of own time, count per step, share of all ops' time."""
    ms, count = defaultdict(float), defaultdict(int)
    for events in threads.values():
        for name, own in exclusive_times(events):
            node, op_type = name.rsplit(":", 1)
            key = (part_of(node), op_family(op_type))
            ms[key] += own / 1e9 / steps
            count[key] += 1
    total = sum(ms.values()) or 1.0
    rows = [{"part": part, "op": op, "ms_per_step": round(t, 3), "per_step": round(count[(part, op)] / steps, 1),
             "share": round(t / total, 4)} for (part, op), t in ms.items()]
    return sorted(rows, key=lambda r: -r["ms_per_step"])


def read_xspace(trace_dir: Path):
    from tensorflow.tsl.profiler.protobuf import xplane_pb2  # TensorFlow's own copy of the profiler's format

    paths = sorted(glob.glob(str(trace_dir / "**" / "*.xplane.pb"), recursive=True))
    if not paths:
        raise SystemExit(f"the profiler wrote no trace under {trace_dir}")
    xspace = xplane_pb2.XSpace()
    xspace.ParseFromString(Path(paths[-1]).read_bytes())
    return xspace


def profile(config: dict, steps: int, trace_dir: Path) -> dict:
    import keras
    import tensorflow as tf

    from replication import models
    from replication.speed import machine
    from replication.training import compile_step

    here = machine.detect()
    settings = machine.choose_settings(config["train"], here)
    settings["threads_per_op"] = machine.apply_threads(settings["threads_per_op"], here)
    size, batch = config["data"]["crop_size"], config["data"]["batch_size"]
    keras.utils.set_random_seed(0)
    model = models.build(config, settings["precision"].value, settings["conv_gradients"].value)
    step = compile_step(model, tf.distribute.get_strategy(), settings["jit_compile"].value)
    a = tf.random.uniform((batch, size, size, 3), -1, 1)
    b = tf.random.uniform((batch, size, size, 3), -1, 1)
    fetch = model.loss_names[0]

    def run(first: int) -> float:
        started = time.perf_counter()
        for i in range(first, first + steps):
            losses = step(a, b, tf.constant(i, tf.int64))
        float(losses[fetch])  # waits for the last step
        return (time.perf_counter() - started) / steps

    run(0)  # trace, compile, warm up
    before = run(steps)
    shutil.rmtree(trace_dir, ignore_errors=True)
    tf.profiler.experimental.start(str(trace_dir))
    try:
        profiled = run(2 * steps)
    finally:
        tf.profiler.experimental.stop()
    plain = min(before, run(3 * steps))  # timed on both sides of the profile: the host's speed drifts
    threads = op_events(read_xspace(trace_dir))
    rows = op_table(threads, steps)
    op_seconds = sum(r["ms_per_step"] for r in rows) / 1000
    ops = sum(r["per_step"] for r in rows)
    return {
        "settings": {name: choice.value for name, choice in settings.items()},
        "s_per_step": round(plain, 4), "s_per_step_profiled": round(profiled, 4),
        "executor_threads": len(threads),
        "busy": round(op_seconds / (profiled * max(1, len(threads))), 3), "ops_per_step": round(ops),
        # what the profiler adds to each op, if it shares out its slowdown evenly over the threads' ops
        "profiler_us_per_op": round(max(0.0, profiled - plain) * max(1, len(threads)) / max(1, ops) * 1e6, 1),
        "parts": {part: round(sum(r["share"] for r in rows if r["part"] == part), 3) for part in PARTS},
        "rows": rows,
    }


def print_table(result: dict, top: int) -> None:
    print(f"step {result['s_per_step'] * 1000:.1f} ms ({result['s_per_step_profiled'] * 1000:.1f} ms profiled); "
          f"{result['executor_threads']} executor threads, busy {result['busy']:.0%} of the profiled step with ops")
    print(f"{result['ops_per_step']} ops per step; the profiler adds about {result['profiler_us_per_op']} us to each, "
          "which inflates the shares of op types with many small ops")
    print("share of the ops' time: " + ", ".join(f"{part} {share:.0%}" for part, share in result["parts"].items()))
    header = f"{'part':<11}{'op':<28}{'ms/step':>9}{'per step':>10}{'share':>8}"
    print("\n" + header + "\n" + "-" * len(header))
    for row in result["rows"][:top]:
        print(f"{row['part']:<11}{row['op']:<28}{row['ms_per_step']:>9.2f}{row['per_step']:>10}{row['share']:>8.1%}")
    rest = result["rows"][top:]
    if rest:
        print(f"{'':<11}{f'{len(rest)} other op types':<28}{sum(r['ms_per_step'] for r in rest):>9.2f}{'':>10}"
              f"{sum(r['share'] for r in rest):>8.1%}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", default="demo", help="whose step, with its settings (default demo)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override (repeatable)")
    parser.add_argument("--steps", type=int, default=20, help="steps timed, then as many profiled (default 20)")
    parser.add_argument("--top", type=int, default=15, help="op types shown (default 15; the JSON has all)")
    parser.add_argument("--out-dir", default=str(common.RESULTS_DIR))
    args = parser.parse_args(argv)

    import tensorflow as tf

    from replication import config as config_lib

    config = config_lib.resolve(args.experiment, args.set)
    info = common.results_machine(tf)
    slug = f"{args.experiment}-{common.machine_slug(info)}"
    trace_dir = Path(args.out_dir) / f"trace-{slug}"
    result = {"benchmark": "step_profile", "experiment": args.experiment, "overrides": args.set, "steps": args.steps,
              "machine": info, **profile(config, args.steps, trace_dir)}
    print(f"{args.experiment}: {info['device']}, settings {result['settings']}")
    print_table(result, args.top)
    out = common.write_results(args.out_dir, f"step-profile-{slug}", result)
    print(f"\nwritten to {out}; the trace, for TensorBoard's profile plugin, in {trace_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

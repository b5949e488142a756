"""Benchmark: each convolution's backward pass with TensorFlow's gradient kernels and as forward convolutions.

    python bench/conv_gradients.py [--experiment horse2zebra] [--out-dir bench/results]

For every distinct convolution of the experiment's generator and discriminator (its input
shape, kernel and stride at the experiment's crop size, batch 1, float32), times each gradient
alone, the input's (dx) and the kernel's (dw), from a given output gradient, with TensorFlow's
kernels (`Conv2DBackpropInput`, `Conv2DBackpropFilter`) and, for the stride-1 convs, as forward
convolutions (`conv_gradients.conv_with_forward_gradients`, what `train.conv_gradients: forward`
uses), beside the forward conv itself. A step computes dx wherever the conv's input depends on
weights: everywhere but a network's first conv on a real image. Ops run with the threads
per op that `auto` gives the plain step. Prints one table; writes
bench/results/conv-gradients-<machine>.json.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import common



def distinct_convs(networks: dict, size: int) -> list[dict]:
    """{network, input (H, W, C), kernel (k, k, C, K), stride, count} for each distinct Conv2D, in order."""
    import keras
    import numpy as np

    from replication.speed import conv_gradients

    found = Counter()
    for name, network in networks.items():
        convs = [layer for layer in network.layers if isinstance(layer, conv_gradients.Conv2D)]
        probe = keras.Model(network.inputs, [layer.input for layer in convs])
        inputs = probe([np.zeros((1, size, size, network.inputs[0].shape[-1]), "float32")])
        for layer, x in zip(convs, inputs if isinstance(inputs, list) else [inputs]):
            found[(name, tuple(x.shape[1:]), tuple(layer.kernel.shape), layer.strides[0])] += 1
    return [{"network": n, "input": list(i), "kernel": list(k), "stride": s, "count": c} for (n, i, k, s), c in found.items()]


def time_ms(fn, *args, repeats: int) -> float:
    """The best of `repeats` calls after a warm-up, in milliseconds."""
    import tensorflow as tf

    tf.nest.map_structure(lambda t: t.numpy(), fn(*args))
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), fn(*args))
        best = min(best, time.perf_counter() - started)
    return 1000 * best


def time_conv(conv: dict, repeats: int) -> dict:
    import tensorflow as tf

    from replication.speed import conv_gradients

    stride = conv["stride"]
    x = tf.random.stateless_normal([1, *conv["input"]], seed=(1, 2))
    kernel = tf.random.stateless_normal(conv["kernel"], seed=(3, 4))
    native_conv = lambda x, w: tf.nn.conv2d(x, w, strides=stride, padding="VALID")  # noqa: E731
    dy = tf.random.stateless_normal(native_conv(x, kernel).shape, seed=(5, 6))

    def gradient(conv_fn, of: int):
        """The gradient with respect to x (`of` 0) or the kernel (1) alone, as a step that needs only it."""
        def compute(x, w, dy):
            with tf.GradientTape() as tape:
                tape.watch([x, w])
                y = conv_fn(x, w)
            return tape.gradient(y, [x, w][of], output_gradients=dy)

        return tf.function(compute)

    row = {**conv, "forward_ms": round(time_ms(tf.function(native_conv), x, kernel, repeats=repeats), 2)}
    ways = {"native": native_conv, **({"forward": conv_gradients.conv_with_forward_gradients} if stride == 1 else {})}
    for way, conv_fn in ways.items():
        for of, name in enumerate(("input", "kernel")):
            row[f"{way}_{name}_gradient_ms"] = round(time_ms(gradient(conv_fn, of), x, kernel, dy, repeats=repeats), 2)
    return row


def print_table(rows: list[dict]) -> None:
    header = (f"{'network':<15}{'input':>14}{'kernel':>14}{'stride':>7}{'count':>6}{'forward':>9}"
              f"{'TF dx':>9}{'fwd dx':>9}{'TF dw':>9}{'fwd dw':>9}")
    print("\nmilliseconds, the best of the repeats\n" + header + "\n" + "-" * len(header))
    for row in rows:
        times = [row.get(f"{way}_{name}_gradient_ms", "-") for name in ("input", "kernel") for way in ("native", "forward")]
        print(
            f"{row['network']:<15}{'x'.join(map(str, row['input'])):>14}{'x'.join(map(str, row['kernel'])):>14}"
            f"{row['stride']:>7}{row['count']:>6}{row['forward_ms']:>9}" + "".join(f"{t:>9}" for t in times)
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", default="horse2zebra", help="whose networks, at its crop size (default horse2zebra)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override (repeatable)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per op, the best kept (default 5)")
    parser.add_argument("--out-dir", default=str(common.RESULTS_DIR))
    args = parser.parse_args(argv)

    from replication import config as config_lib
    from replication import models
    from replication.speed import machine

    here = machine.detect()
    threads = machine.apply_threads(machine.choose_threads_per_op("auto", here, jit_compile=False), here)

    config = config_lib.resolve(args.experiment, args.set)
    model = models.build(config, "float32")
    # one generator and one discriminator: the others of a CycleGAN are their twins
    networks = {kind: next(n for n in model.networks() if kind in n.name) for kind in ("generator", "discriminator")}
    size = config["data"]["crop_size"]
    rows = [time_conv(conv, args.repeats) for conv in distinct_convs(networks, size)]
    print(f"{args.experiment} at {size}x{size}, batch 1, float32; threads per op {threads}")
    print_table(rows)
    import tensorflow as tf

    info = common.results_machine(tf)
    result = {"benchmark": "conv_gradients", "experiment": args.experiment, "size": size,
              "threads_per_op": threads.value, "machine": info, "rows": rows}
    out = common.write_results(args.out_dir, f"conv-gradients-{common.machine_slug(info)}", result)
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

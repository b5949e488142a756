"""Benchmark: `replication translate` with an official-size generator (ResNet-9, ngf 64) against the
official code's test.py path in PyTorch, on the same CPU, at 256x256 and on 1024x768 photos.

    python bench/translate_speed.py --torch-python /tmp/torchenv/bin/python [--images 8] [--out-dir bench/results]

PyTorch is never a dependency of the kit: it runs in a throwaway virtual environment
(`python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0 numpy pillow`).
There, the script builds the official ResnetGenerator (tests/fixtures/official/make_fixtures.py's
equivalent of models/networks.py), saves its random weights as a .pth, and translates the photos
as test.py does: PIL open, RGB, resize to 256x256 with bicubic (test.py's default load_size, for the
256 case) or no resize (`--preprocess none`, for 1024x768), ToTensor, Normalize(0.5, 0.5), the
network in eval mode under no_grad, tensor2im, PNG. The kit imports that .pth
(`replication import`) and translates the same photos with `replication translate`'s own work
(loading.load_generators, translate.translate_job). Both are timed per image after one warm-up
image, with the same number of threads, start-up and model loading left out; both outputs are
compared (levels of 255) on the 256x256 photos. The same generator computing in mixed_bfloat16
and mixed_float16 is timed on the 256x256 photos too, with its largest difference from float32's
outputs. Prints a table and writes bench/results/translate-<machine>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import common
from common import ROOT

SIZES = {"256x256": (256, 256), "1024x768": (1024, 768)}
MIXED_PRECISIONS = ("mixed_bfloat16", "mixed_float16")

TORCH_SIDE = r'''
import json, sys, time
from pathlib import Path
import numpy as np, torch
from PIL import Image
sys.path.insert(0, sys.argv[1])
from make_fixtures import ResnetGenerator
work, threads = Path(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
net = ResnetGenerator(ngf=64, n_blocks=9)
with torch.no_grad():
    for p in net.parameters():
        p.normal_(0, 0.02)
net.eval()
torch.save(net.state_dict(), work / "latest_net_G_A.pth")
timings = {}
for size in json.loads(sys.argv[4]):
    folder, out = work / size, work / f"torch_{size}"
    out.mkdir()
    seconds = []
    for path in sorted(folder.iterdir()):
        start = time.perf_counter()
        image = Image.open(path).convert("RGB")
        if size == "256x256":
            image = image.resize((256, 256), Image.BICUBIC)
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
        x = (x - 0.5) / 0.5
        with torch.no_grad():
            y = net(x)
        pixels = ((y[0].permute(1, 2, 0).numpy() + 1) / 2.0 * 255.0).astype(np.uint8)
        Image.fromarray(pixels).save(out / (path.stem + ".png"))
        seconds.append(time.perf_counter() - start)
    timings[size] = seconds[1:]
print(json.dumps({"timings": timings, "torch": torch.__version__}))
'''


def photos(folder: Path, size: tuple[int, int], count: int, seed: int) -> None:
    """Smooth random photos (JPEG, quality 95) of `size` (width, height)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        small = rng.uniform(0, 255, (size[1] // 32, size[0] // 32, 3)).astype(np.uint8)
        Image.fromarray(small).resize(size, Image.BICUBIC).save(folder / f"photo_{i:03d}.jpg", quality=95)


def kit_side(work: Path, sizes, threads: int) -> tuple[dict, dict]:
    """Seconds per image of `replication translate`'s work at each size; and, at 256x256, of the same
    generator computing in each mixed precision, whose outputs go to kit_<precision>_256x256."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from replication import gan, loading, pretrained, runs

    run_dir, _ = pretrained.import_official([str(work / "latest_net_G_A.pth")], work / "runs" / "official", experiment="horse2zebra")
    translator = loading.load_generators(run_dir)["AtoB"]
    timings = {size: translate_folder(translator, work / size, work / f"kit_{size}") for size in sizes}
    precisions = {}
    for precision in MIXED_PRECISIONS:
        with gan.dtype_policy(precision):
            generator = gan.build_generator(runs.load_config(run_dir)["model"])
        generator.set_weights(translator.generator.get_weights())
        mixed = loading.Translator(generator, "AtoB")
        precisions[precision] = translate_folder(mixed, work / "256x256", work / f"kit_{precision}_256x256")
    return timings, precisions


def translate_folder(translator, folder: Path, out: Path) -> list:
    """Seconds per photo of `folder`, each through translate's own work, the first (warm-up) left out."""
    from replication import translate

    seconds = []
    for path in sorted(folder.iterdir()):
        job = translate.plan_job(str(path), str(out), "png")
        start = time.perf_counter()
        translate.translate_job(translator, job)
        seconds.append(time.perf_counter() - start)
    return seconds[1:]


def level_difference(ours: Path, theirs: Path) -> int:
    """The largest difference, in levels of 255, between two folders' outputs of the same photos."""
    worst = 0
    for image in sorted(ours.glob("*.png")):
        other = np.asarray(Image.open(theirs / image.name), dtype=int)
        worst = max(worst, int(np.abs(np.asarray(Image.open(image), dtype=int) - other).max()))
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", required=True, help="python of a throwaway venv with torch (never the kit's)")
    parser.add_argument("--images", type=int, default=8, help="photos per size (the first one warms up)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads each side may use (default: all cores)")
    parser.add_argument("--out-dir", default=str(common.RESULTS_DIR))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for seed, (size, wh) in enumerate(SIZES.items()):
            photos(work / size, wh, args.images, seed)
        # The 256x256 case: photos of 256x256 already, so both sides translate the same pixels.
        said = subprocess.run([args.torch_python, "-c", TORCH_SIDE, str(ROOT / "tests" / "fixtures" / "official"), str(work),
                               str(args.threads), json.dumps(list(SIZES))], check=True, capture_output=True, text=True)
        torch_side = json.loads(said.stdout.strip().splitlines()[-1])
        kit, mixed = kit_side(work, list(SIZES), args.threads)
        levels = level_difference(work / "kit_256x256", work / "torch_256x256")
        mixed_levels = {p: level_difference(work / f"kit_{p}_256x256", work / "kit_256x256") for p in MIXED_PRECISIONS}

    rows = {}
    print(f"{'size':<10} {'kit s/image':>12} {'PyTorch s/image':>16} {'kit speed-up':>13}")
    for size in SIZES:
        ours, theirs = float(np.median(kit[size])), float(np.median(torch_side["timings"][size]))
        rows[size] = {"kit_seconds": kit[size], "torch_seconds": torch_side["timings"][size],
                      "kit_median": ours, "torch_median": theirs, "speedup": theirs / ours}
        print(f"{size:<10} {ours:>12.3f} {theirs:>16.3f} {theirs / ours:>12.2f}x")
    print(f"outputs at 256x256 differ by at most {levels} level(s) of 255 (float32 on both sides)")
    float32 = rows["256x256"]["kit_median"]
    for precision, seconds in mixed.items():
        rows[f"256x256 {precision}"] = {"kit_seconds": seconds, "kit_median": float(np.median(seconds)),
                                        "levels_from_float32": mixed_levels[precision]}
        print(f"256x256 in {precision}: {np.median(seconds):.3f} s/image ({float32 / np.median(seconds):.2f}x float32's), "
              f"at most {mixed_levels[precision]} level(s) of 255 from float32's outputs")
    import tensorflow as tf

    info = common.results_machine(tf)
    result = {"machine": info, "python": platform.python_version(), "torch": torch_side["torch"], "threads": args.threads,
              "images_timed": args.images - 1, "sizes": rows, "max_level_difference_256": levels,
              "command": " ".join(sys.argv)}
    out = common.write_results(args.out_dir, f"translate-{common.machine_slug(info)}", result)
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

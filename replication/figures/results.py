"""Test images translated by a run's generators: every one saved for the results page, the first few drawn.

Generic over models: what is saved for a test image is the model's named
sample images (`sample_rows`), made by `Model.visuals(generators, a, b)`.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from replication import data as data_lib
from replication.errors import KitError
from replication.figures.samples import save_png
from replication.files import atomic_write_text
from replication.pixels import to_uint8

THUMBNAIL = 160  # px: larger test images get a thumbnail for the results page
TRUTH = "truth"  # the sample name of a test image's ground truth, where the data has one
TRUTH_CAPTION = "ground truth"


def captions(model) -> dict:
    """The model's captions of its sample images, and the truth's."""
    return {**model.sample_captions, TRUTH: TRUTH_CAPTION}


def truth_images(config: dict, direction: str, multiple: int) -> dict:
    """{test image name: its uint8 ground truth} for the inputs of `direction`; {} when the data has no
    truth, or when the model's own samples show it (a paired model's real_B)."""
    from replication import models  # TensorFlow: `figures` imports this module before start_tensorflow

    if models.entry(config).data is data_lib.paired:
        return {}
    try:
        pairs = data_lib.truth_pairs(config["data"], direction[0], multiple)  # AtoB translates domain A's images
    except KitError:
        return {}
    return {os.fsdecode(name.numpy()): to_uint8(truth)[0] for _, truth, name in pairs}


def file_stem(name: str) -> str:
    """A test image's name (maybe `sub/x.jpg`) as a safe file stem (`sub_x`)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(PurePosixPath(name).with_suffix("")))


def image_pairs(config: dict, multiple: int, limit: int | None = None):
    """(i, (a, name_a), (b, name_b)) over max(len A, len B) test images (or `limit`), the shorter domain cycling.

    For a paired model (pix2pix) b is a's ground truth.
    """
    import tensorflow as tf

    from replication import models  # TensorFlow: `figures` imports this module before start_tensorflow

    sets = [models.test_images(config, domain, multiple) for domain in "AB"]
    counts = [int(s.cardinality()) for s in sets]
    total = max(counts) if limit is None else min(limit, max(counts))
    pairs = tf.data.Dataset.zip(tuple(s.repeat() for s in sets)).take(total)
    for i, ((a, name_a), (b, name_b)) in enumerate(pairs):
        yield i, counts, (a, os.fsdecode(name_a.numpy())), (b, os.fsdecode(name_b.numpy()))


def new_sources(i: int, counts, a, b, directions):
    """(direction, (image, name)) for each direction whose input in pair `i` is new (the shorter domain cycles)."""
    for direction in directions:
        source = 0 if direction.startswith("A") else 1  # AtoB translates domain A's images
        if i < counts[source]:
            yield direction, (a, b)[source]


def translate_test_set(run_dir: Path, config: dict, model, folder: Path) -> dict:
    """Translate every test image with the run's generators; write `folder`/DIRECTION/NAME_SAMPLE.png.

    Returns (and writes to `folder`/results.json) {"step": ..., "directions":
    {direction: [{"name", "size": [h, w], "images": {sample: path}, "thumbnails": {sample: path}}]}},
    paths relative to `folder`'s parent (the run's figures folder).
    """
    from replication import loading  # TensorFlow: `figures` imports this module before start_tensorflow

    generators = loading.load_generators(run_dir)
    multiple = math.lcm(*(t.size_multiple for t in generators.values()))
    sample_rows = {d: rows for d, rows in model.sample_rows.items() if d in generators}  # an imported run may have one
    listing = {direction: [] for direction in sample_rows}
    truths = {direction: truth_images(config, direction, multiple) for direction in sample_rows}
    for i, counts, a, b in image_pairs(config, multiple):
        visuals = model.visuals(generators, a[0], b[0])
        for direction, (_, name) in new_sources(i, counts, a, b, sample_rows):
            names = tuple(n for n in sample_rows[direction] if n in visuals)
            shown = dict(visuals)
            if name in truths[direction]:
                names, shown[TRUTH] = (*names, TRUTH), truths[direction][name]
            listing[direction].append(save_test_image(shown, names, name, folder / direction))
    step = next(iter(generators.values())).step
    results = {"step": step, "directions": listing}
    atomic_write_text(folder / "results.json", json.dumps(results, indent=1) + "\n")
    return results


def save_test_image(visuals: dict, names, image_name: str, folder: Path) -> dict:
    entry = {"name": image_name, "images": {}, "thumbnails": {}}
    for sample in names:
        picture = visuals[sample] if sample == TRUTH else to_uint8(visuals[sample])[0]
        entry["size"] = list(picture.shape[:2])
        path = folder / f"{file_stem(image_name)}_{sample}.png"
        save_png(picture, path)
        thumbnail = path
        if max(picture.shape[:2]) > THUMBNAIL:
            thumbnail = folder / "thumbnails" / path.name
            small = Image.fromarray(picture)
            small.thumbnail((THUMBNAIL, THUMBNAIL))
            save_png(np.asarray(small), thumbnail)
        entry["images"][sample] = relative(path, folder.parent.parent)
        entry["thumbnails"][sample] = relative(thumbnail, folder.parent.parent)
    return entry


def relative(path: Path, start: Path) -> str:
    return Path(path).relative_to(start).as_posix()


def load_results(folder: Path) -> dict:
    """The results.json that `translate_test_set` wrote, or {} before the first translation."""
    path = Path(folder) / "results.json"
    return json.loads(path.read_text()) if path.exists() else {}


def first_results(results: dict, figures_folder: Path, count: int) -> dict:
    """{direction: [(name, {sample: uint8 image})]} for the first `count` test images, read back from disk."""
    return {
        direction: [
            (entry["name"], {sample: np.asarray(Image.open(figures_folder / path).convert("RGB")) for sample, path in entry["images"].items()})
            for entry in entries[:count]
        ]
        for direction, entries in results["directions"].items()
    }


def same_test_images(run_dirs: list[Path], configs: list[dict], multiple: int, count: int, directions) -> list:
    """The first `count` test pairs of the first run, after checking every run translates the same images.

    Only the inputs of `directions` must agree (a CycleGAN run's test B and a pix2pix run's ground
    truth may differ when only A to B is compared). Refused (KitError) when they differ in number,
    names or pixels.
    """
    sources = sorted({0 if d.startswith("A") else 1 for d in directions})  # AtoB translates domain A's images
    reference = list(image_pairs(configs[0], multiple, count))
    for run_dir, config in zip(run_dirs[1:], configs[1:]):
        other = list(image_pairs(config, multiple, count))
        problem = difference(reference, other, sources)
        if problem:
            raise KitError(
                f"{run_dir} is tested on other images than {run_dirs[0]} ({problem}). Compare runs of the same "
                "dataset: the same data.source, data.name or data.root, and data.direction."
            )
    return reference


def difference(reference: list, other: list, sources=(0, 1)) -> str | None:
    """How two runs' first test pairs differ in the domains `sources` (0: A, 1: B), in words; None when the same."""
    if not reference or not other or any(reference[0][1][s] != other[0][1][s] for s in sources):
        counts = [pairs[0][1] if pairs else [0, 0] for pairs in (reference, other)]
        return f"{counts[0][0]} and {counts[0][1]} test images in A and B against {counts[1][0]} and {counts[1][1]}"
    for (_, _, *mine), (_, _, *theirs) in zip(reference, other):
        for (x, name), (y, other_name) in ((mine[s], theirs[s]) for s in sources):
            if name != other_name:
                return f"test image {name} against {other_name}"
            if x.shape != y.shape or not np.array_equal(to_uint8(x), to_uint8(y)):
                return f"{name} differs in size or pixels"
    return None

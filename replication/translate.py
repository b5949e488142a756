"""Translate images with a trained generator, each at its own size, never touching the inputs.

`--input` is one image file or a folder (nested or not); outputs keep the inputs' relative names.
An output location that would overwrite an input is refused before anything is written.

  size     each image is padded to the generator's size rule (reflection, as the networks pad;
           repeated edges where the image is too small to reflect), translated, and cropped
           back, so every output has exactly its input's size.
  memory   an image whose network activations do not fit in half the free memory (the least
           that any limit leaves: replication/memory.py) is translated in overlapping tiles
           blended with linear ramps. Instance norm normalises each tile by its own statistics,
           so a tiled result is close to the whole-image pass, not equal to it. An allocation
           that fails all the same is tried again in tiles half as large, down to the smallest.
           An image whose own pixels do not fit is named and skipped, with the largest size
           that fits. `evaluate` and the Cityscapes scorer run their networks through the same
           rule (tiling.py: translate_whole).
  files    images are decoded from their bytes, so any file name Linux allows works (names that
           are not UTF-8 are kept byte for byte). A file that cannot be read is named and
           skipped; a read-only or full output folder stops everything with one line.
"""

from __future__ import annotations

import io
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from replication.choices import DIRECTIONS
from replication.data import images as image_files
from replication.errors import KitError
from replication.files import atomic_write_bytes, readable, remove_partial_writes_of, storage_problem
from replication.pixels import to_uint8
from replication.tiling import (
    Memory, Plan, Skipped, TooLarge, input_rule, memory_now, pad, run_fitting, say_on_stderr, smallest_tile, tile_starts,
)

if TYPE_CHECKING:
    from replication.loading import Translator

FORMATS = {"png": ("PNG", (".png",)), "jpg": ("JPEG", (".jpg", ".jpeg"))}  # Pillow's name, the suffixes kept
JPEG_QUALITY = 95


# --------------------------------------------------------------------------- loading the weights


def load_translator(run_dir=None, model_file=None, direction=None) -> Translator:
    """A run's generator for `direction` (exported, or from its latest checkpoint), or one `.keras` file."""
    from replication import loading  # TensorFlow: `translate` imports this module before start_tensorflow

    if direction not in (None, *DIRECTIONS):
        raise KitError(f"--direction must be AtoB or BtoA, not {direction!r}.")
    if model_file:
        return translator_from_file(Path(model_file), direction)
    generators = loading.load_generators(run_dir)
    direction = direction or ("AtoB" if "AtoB" in generators else next(iter(generators)))  # a run of one direction: that one
    if direction not in generators:
        raise KitError(f"{run_dir} has no {direction} generator; it has {', '.join(generators)}.")
    return generators[direction]


def translator_from_file(path: Path, direction: str | None) -> Translator:
    """A lone `.keras` file; the export manifest beside it, if any, says its direction and test mode."""
    from replication import loading  # TensorFlow: `translate` imports this module before start_tensorflow

    known, training_mode, weights = loading.exported_as(path)
    if known and direction and known != direction:
        raise KitError(
            f"{path} translates {known}, not {direction} (its export manifest says so). "
            f"Use --direction {known}, or pass the other generator of that run."
        )
    model = loading.load_model_file(path)
    return loading.Translator(model, known or direction or "AtoB", training_mode, weights and weights.step, weights, path)


def weights_used(translator: Translator) -> str:
    """One line: which weights translate, and from when (an export's step and epoch, or a checkpoint's),
    as loading found them."""
    arrow = translator.direction.replace("to", "->")
    weights = translator.weights
    if weights is None:
        return f"weights: {translator.file} ({arrow}), no export manifest beside it says when it was trained"
    if weights.source == "export":
        return f"weights: {translator.file} ({arrow}), {weights.when_exported()}"
    epoch = weights.epoch_under_way()
    during = f", during epoch {epoch}" if epoch else ""
    return (
        f"weights: the checkpoint of step {weights.step}{during} in {weights.path.parent} ({arrow}): "
        "the run has not finished, so it has no export yet"
    )


# --------------------------------------------------------------------------- what goes where


def readable_path(path) -> str:
    """A path for messages: bytes that are not UTF-8 (legal in Linux names) shown as \\xNN."""
    return readable(str(path))


@dataclass
class TranslationJob:
    """The inputs (relative to `root`) and where each one's translation goes."""

    root: Path
    names: list
    output: Path
    image_format: str = "png"

    def output_name(self, name: str) -> str:
        """The input's name, with the format's suffix unless it already has one of them."""
        suffix = PurePosixPath(name).suffix.lower()
        kept = FORMATS[self.image_format][1]
        return name if suffix in kept else str(PurePosixPath(name).with_suffix(kept[0]))

    def output_path(self, name: str) -> Path:
        return self.output / self.output_name(name)

    def renamed(self) -> list:
        return [name for name in self.names if self.output_name(name) != name]

    def renaming_note(self) -> str:
        first = self.renamed()[0]
        other = " (--format jpg writes JPEG)" if self.image_format == "png" else ""
        return (
            f"writing {FORMATS[self.image_format][0]}: {len(self.renamed())} output name(s) change their extension, "
            f"e.g. {readable_path(first)} -> {readable_path(self.output_name(first))}{other}"
        )


def plan_job(input_path, output, image_format: str = "png") -> TranslationJob:
    """List the inputs and refuse, before anything is written, an output that would overwrite one."""
    if image_format not in FORMATS:
        raise KitError(f"--format must be one of {', '.join(FORMATS)}, not {image_format!r}.")
    source, output = Path(input_path).expanduser(), Path(output).expanduser()
    if not source.exists():
        raise KitError(f"--input {readable_path(source)} does not exist; give an image file or a folder of images.")
    if output.exists() and not output.is_dir():
        raise KitError(f"--output {readable_path(output)} is a file; give a folder (it is created if missing).")
    root = source if source.is_dir() else source.parent
    if os.path.realpath(output) == os.path.realpath(root):
        raise KitError(
            f"--output {readable_path(output)} is the folder the inputs are in ({readable_path(root)}): the translations "
            "would be written among your images and replace those of the same name. Choose another folder."
        )
    if source.is_dir():
        names = [n for n in image_files.list_images(source).images if not is_inside(source / n, output)]
        if not names:
            raise KitError(f"{readable_path(source)} holds no images ({image_files.EXTENSIONS_TEXT}), nested or not.")
    elif not image_files.is_image_name(source.name):
        raise KitError(f"--input {readable_path(source)} is not an image ({image_files.EXTENSIONS_TEXT}); give an image file or a folder of images.")
    else:
        names = [source.name]
    job = TranslationJob(root, names, output, image_format)
    refuse_overwrites(job)
    return job


def is_inside(path: Path, folder: Path) -> bool:
    """`path` lies under `folder` (its folders resolved, not the file itself): an earlier translation,
    when --output is inside --input."""
    return where_written(path).startswith(os.path.realpath(folder) + os.sep)


def where_written(path: Path) -> str:
    """The file a write to `path` replaces: its folder resolved, its own name kept (a write replaces a
    link there, not what the link points to)."""
    return os.path.join(os.path.realpath(path.parent), path.name)


def refuse_overwrites(job: TranslationJob) -> None:
    """No output may replace an input (through links too), nor two outputs share a name."""
    inputs = {}
    for name in job.names:
        path = job.root / name
        inputs[os.path.realpath(path)] = inputs[where_written(path)] = name
    targets = {}
    for name in job.names:
        target = where_written(job.output_path(name))
        if target in inputs:
            raise KitError(
                f"--output {readable_path(job.output)} would overwrite the input {readable_path(job.root / inputs[target])} "
                f"(with the translation of {readable_path(name)}). Choose a folder outside the inputs."
            )
        if target in targets:
            raise KitError(
                f"{readable_path(targets[target])} and {readable_path(name)} would both be written as "
                f"{readable_path(job.output_name(name))}; rename one of them, or translate them into separate folders."
            )
        targets[target] = name


# --------------------------------------------------------------------------- one image


@contextmanager
def no_pillow_size_limit():
    """Lift Pillow's decompression-bomb limit: translate checks an image's size against the memory itself."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def image_size(blob: bytes) -> tuple[int, int]:
    """(height, width) from an image's header, as it decodes (its EXIF orientation applied), without decoding it."""
    if not blob:
        raise Skipped("the file is empty (0 bytes)")
    try:
        with Image.open(io.BytesIO(blob)) as img:
            height, width = image_files.upright_size(img)
    except Image.UnidentifiedImageError:
        raise Skipped("not an image file Pillow or TensorFlow can read") from None
    except Exception as err:  # noqa: BLE001 - a damaged header, whatever the decoder says
        raise Skipped(f"its header is damaged ({type(err).__name__}: {image_files.decoder_error_text(err)})") from None
    return height, width


def decode(blob: bytes) -> np.ndarray:
    try:
        return image_files.decode(blob)
    except Exception as err:  # noqa: BLE001 - any decoder failure means "bad file"
        raise Skipped(f"it cannot be decoded ({type(err).__name__}: {image_files.decoder_error_text(err)})") from None


def translate_image(translator, image: np.ndarray, plan: Plan, memory: Memory, name: str, say, progress=None) -> np.ndarray:
    """uint8 HxWx3 in, its translation as uint8 of exactly the same size out."""
    (h, w), (top, left) = plan.size, plan.offset
    try:
        padded = pad(image, plan)
    except MemoryError:
        raise TooLarge(memory.refusal(h, w, smallest_tile(plan.multiple, plan.minimum))) from None
    out = run_fitting(translator, padded, plan, memory, name, say, progress)
    return to_uint8(out[top : top + h, left : left + w])


def encoded(image: np.ndarray, image_format: str) -> bytes:
    buffer = io.BytesIO()
    options = {"quality": JPEG_QUALITY} if image_format == "jpg" else {}
    Image.fromarray(image).save(buffer, format=FORMATS[image_format][0], **options)
    return buffer.getvalue()


# --------------------------------------------------------------------------- the whole job


@dataclass
class Outcome:
    written: list = field(default_factory=list)  # output paths
    failed: list = field(default_factory=list)  # (input name, why)


def translate_job(translator, job: TranslationJob, memory: Memory | None = None, say=None) -> Outcome:
    """Translate every input of `job`; the unreadable ones are named (through `say`) and skipped.

    A write that fails because the output folder is read-only or full raises KitError naming the file.
    """
    from tqdm import tqdm

    say = say or say_on_stderr
    multiple, minimum = input_rule(translator.generator)
    memory = memory or memory_now(translator.generator)
    outcome = Outcome()
    bar = tqdm(job.names, unit="image", disable=len(job.names) <= 3 or not sys.stderr.isatty(), file=sys.stderr)
    for name in bar:
        try:
            blob = read_input(job.root / name)
            with no_pillow_size_limit():
                plan = memory.plan(*image_size(blob), multiple, minimum)
                image = decode(blob)
            if plan.tile != plan.padded:
                say(memory.tiling_note(readable_path(job.root / name), plan))
            out = translate_image(translator, image, plan, memory, readable_path(job.root / name), say, lambda p: tile_progress(p, name))
            del image
            write(job.output_path(name), encoded(out, job.image_format), len(outcome.written))
        except Skipped as err:
            outcome.failed.append((name, str(err)))
            say(f"skipped {readable_path(job.root / name)}: {err}")
            continue
        outcome.written.append(job.output_path(name))
    return outcome


def tile_progress(plan: Plan, name: str):
    """A progress bar over the tiles of an image translated in more than one (closed at the last tile)."""
    from tqdm import tqdm

    count = len(tile_starts(plan.padded[0], plan.tile[0])) * len(tile_starts(plan.padded[1], plan.tile[1]))
    if count == 1 or not sys.stderr.isatty():  # into a pipe, a redrawn bar would share its line with the next message
        return None
    bar = tqdm(total=count, unit="tile", leave=False, file=sys.stderr, desc=readable_path(name))

    def done():
        bar.update()
        if bar.n == count:
            bar.close()

    return done


def read_input(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise Skipped(f"it cannot be read ({err.strerror or err})") from None


def write(path: Path, data: bytes, written_before: int) -> None:
    try:
        if path.parent.is_dir():
            remove_partial_writes_of(path)  # a killed translate's temporary of this very file
        atomic_write_bytes(path, data)
    except OSError as err:
        problem = storage_problem(err)
        if problem is None:
            raise Skipped(f"its translation could not be written to {readable_path(path)} ({err.strerror or err})") from None
        _, what, fix = problem  # the file the system names may be a hidden temporary: name the output
        raise KitError(
            f"could not write {readable_path(path)}: {what}. {fix[0].upper()}{fix[1:]}, or choose another --output "
            f"({written_before} image(s) were written before it; run the same command again to redo them all)."
        ) from None


def skipped_advice(outcome: Outcome, total: int) -> str:
    """The closing line when some inputs could not be translated: how many, and what to do."""
    if not outcome.written:
        what = "it was not translated (why is above)" if total == 1 else f"none of the {total} images could be translated (why is above)"
        return f"{what}; nothing was written. Fix or re-save the files (PNG or JPEG) and translate them again."
    return (
        f"{len(outcome.failed)} of {total} image(s) could not be translated (named above) and were skipped; "
        f"the other {len(outcome.written)} image(s) were written. Fix or re-save those files (PNG or JPEG), then translate just them with --input FILE."
    )

"""Translate a folder of images with a trained generator, at the images' own resolution."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from replication import data as data_lib
from replication import runs
from replication.errors import KitError
from replication.figures import to_uint8


def load_translator(run_dir=None, model_file=None, direction=None) -> runs.Translator:
    """A run's generator for `direction` (exported, or from its latest checkpoint), or one `.keras` file."""
    if direction not in (None, *runs.DIRECTIONS):
        raise KitError(f"--direction must be AtoB or BtoA, not {direction!r}.")
    if model_file:
        return translator_from_file(Path(model_file), direction)
    direction = direction or "AtoB"
    generators = runs.load_generators(run_dir)
    if direction not in generators:
        raise KitError(f"{run_dir} has no {direction} generator; it has {', '.join(generators)}.")
    return generators[direction]


def translator_from_file(path: Path, direction: str | None) -> runs.Translator:
    """A lone `.keras` file; the export manifest beside it, if any, says its direction and test mode."""
    known, training_mode = runs.exported_as(path)
    if known and direction and known != direction:
        raise KitError(
            f"{path} translates {known}, not {direction} (its export manifest says so). "
            f"Use --direction {known}, or pass the other generator of that run."
        )
    return runs.Translator(runs.load_model_file(path), known or direction or "AtoB", training_mode)


def translate_folder(translator: runs.Translator, input_dir, output_dir) -> list[Path]:
    """Translate every image under `input_dir` into `output_dir`, keeping relative names."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise KitError(f"--output {output_dir} is a file; give a folder (it is created if missing).")
    written = []
    for image, name in data_lib.folder_images(input_dir, translator.size_multiple):
        out = to_uint8(translator(image))[0]
        path = output_dir / os.fsdecode(name.numpy())
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(out).save(path)
        written.append(path)
    return written

"""A run's export: its generators as float32 `.keras` files and SavedModels that load without this
kit, and `manifest.json` saying which is which; the manifest read back and checked.

The export is written by the training loop when a run finishes (`export_model`); `loading` reads it.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import tensorflow as tf

from replication import gan, networks
from replication.choices import DIRECTIONS
from replication.errors import KitError
from replication.files import atomic_replace, atomic_write_text, sha256_of

MANIFEST = "manifest.json"


def export_model(model, model_cfg: dict, folder: Path, **trained) -> dict:
    """The generators of `model` (built from the `model:` section `model_cfg`, which names its type) as
    float32 `.keras` files and SavedModels, and `manifest.json`; they load without this kit's config."""
    generators = {d: (name, getattr(model, name)) for d, name in model.generator_names.items()}
    return export_generators(folder, model_cfg["type"], generators, model_cfg, model.training_mode_at_test, **trained)


def float32_copy(model: keras.Model, model_cfg: dict) -> keras.Model:
    """The generator rebuilt with a float32 policy (it loads and runs anywhere), same weights.

    Its dropout draws, if any, start from the fixed seed (0, 0), so an export is reproducible.
    """
    with gan.dtype_policy("float32"):
        copy = gan.build_generator(model_cfg)
    copy.set_weights(model.get_weights())
    networks.seed_dropout(copy, 0, 0)
    return copy


def save_keras(model: keras.Model, path: Path) -> None:
    with atomic_replace(path) as tmp:
        model.save(tmp)


def save_saved_model(model: keras.Model, path: Path, training_mode: bool) -> None:
    """A TensorFlow SavedModel that `tf.saved_model.load` runs without Keras or this kit.

    Its `serving_default` signature takes `images`, float32 [N, H, W, 3] in
    [-1, 1] of any size the network takes, and returns `translated`, the same
    shape and range. `training_mode` runs the network as the model is tested
    (pix2pix: dropout on, batch statistics).
    """
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serve",
        lambda images: {"translated": model(images, training=training_mode)},
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")],
    )
    with atomic_replace(path) as tmp:
        archive.write_out(str(tmp), verbose=False)


def export_generators(
    folder: Path, model_type: str, generators: dict, model_cfg: dict, training_mode_at_test: bool, **trained
) -> dict:
    """Each direction's generator as `<name>_<direction>.keras` and as a SavedModel folder
    `<name>_<direction>_savedmodel/`, plus `manifest.json` saying which is which (and each
    `.keras` file's SHA-256, so readers can tell a file from another export).

    The export is one unit: it is written into a hidden folder beside `folder` and swapped in
    whole, so a kill at any point leaves the previous export or the new one, never a mix.
    generators: {direction: (checkpoint name, keras model)}; `trained`: step and epoch, recorded as
    they are. Returns {direction: path}.
    """
    folder = Path(folder)
    names, entries = {}, {}
    with atomic_replace(folder) as staging:
        staging.mkdir(parents=True)
        for direction, (name, model) in generators.items():
            copy = float32_copy(model, model_cfg)
            names[direction] = f"{name}_{direction}.keras"
            saved_model = f"{name}_{direction}_savedmodel"
            save_keras(copy, staging / names[direction])
            save_saved_model(copy, staging / saved_model, training_mode_at_test)
            entries[direction] = {"keras": names[direction], "saved_model": saved_model, "sha256": sha256_of(staging / names[direction])}
        manifest = {
            "model": model_type,
            "generators": entries,
            "input_range": [-1, 1],
            "size_multiple": networks.size_multiple(next(iter(generators.values()))[1]),
            "training_mode_at_test": training_mode_at_test,
            **trained,
        }
        atomic_write_text(staging / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return {direction: folder / name for direction, name in names.items()}


DAMAGED_MANIFEST = "Run the same `train` command again to export the run anew, or move export/ aside to use its latest checkpoint."


def read_manifest(path: Path) -> dict:
    """The export's manifest.json, checked to be what the kit writes; anything else is named as damaged."""
    try:
        manifest = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise KitError(f"damaged manifest {path} ({err}). {DAMAGED_MANIFEST}") from None
    problem = manifest_problem(manifest)
    if problem:
        raise KitError(f"damaged manifest {path} ({problem}). {DAMAGED_MANIFEST}")
    return manifest


def manifest_problem(manifest) -> str | None:
    """What is wrong with the shape of a manifest, or None."""
    if not isinstance(manifest, dict):
        return f"a {type(manifest).__name__}, not an object"
    generators = manifest.get("generators")
    if not isinstance(generators, dict) or not generators:
        return '"generators" is not an object naming the generators'
    for direction, files in generators.items():
        if direction not in DIRECTIONS:
            return f'"generators" names {direction!r}, not AtoB or BtoA'
        if not isinstance(files, dict) or not is_file_name(files.get("keras"), ".keras"):
            return f'"generators"/"{direction}" does not name a .keras file'
        if "sha256" in files and not isinstance(files["sha256"], str):
            return f'"generators"/"{direction}"/"sha256" is not a string'
    for key in ("step", "epoch"):
        value = manifest.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            return f'"{key}" is {value!r}, not a whole number'
    imported = manifest.get("imported")
    if imported is not None and not (isinstance(imported, dict) and isinstance(imported.get("text"), str)):
        return '"imported" is not an object with a "text"'
    if not isinstance(manifest.get("training_mode_at_test", False), bool):
        return '"training_mode_at_test" is not true or false'
    return None


def is_file_name(name, suffix: str) -> bool:
    return isinstance(name, str) and name.endswith(suffix) and Path(name).name == name

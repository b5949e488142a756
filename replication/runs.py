"""A run's folder, and what other commands read from it: its config and its generators.

A run lives in `runs/<experiment>/` (or `--run-dir`):
  config.yaml      the resolved configuration      versions.json  TF, Keras, kit, Python
  losses.csv       every `log_every` steps          tensorboard/   the same scalars and sample grids
  run.log          what happened, in words          checkpoints/   latest two + every_epoch/
  samples/         epoch_NNN.png and .npz           export/        the generators + manifest.json
  eval/            what `evaluate` measured         eval.csv       quality per epoch while training
"""

from __future__ import annotations

import json
import platform
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import replication
from replication import config as config_lib
from replication import gan, models, networks, schedule
from replication.checkpoints import restore_newest_good, saved_config
from replication.errors import ConfigError, KitError
from replication.io import atomic_write_text

from replication.choices import DIRECTIONS

# Keys a resumed run may change: they alter how long it trains and what it records, not what it is.
RESUMABLE_CHANGES = {
    "train.epochs", "train.epochs_decay", "train.log_every", "train.save_epoch_freq",
    "train.conv_gradients", "train.jit_compile", "train.steps_per_call", "train.threads_per_op", "train.n_samples", "train.eval_every",
    "train.strategy", "train.worker_start_timeout",  # how a run is spread over devices and workers; the global batch is what it is
}


class RunFolder:
    def __init__(self, path):
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.versions = self.path / "versions.json"
        self.losses = self.path / "losses.csv"
        self.log = self.path / "run.log"
        self.tensorboard = self.path / "tensorboard"
        self.checkpoints = self.path / "checkpoints"
        self.samples = self.path / "samples"
        self.export = self.path / "export"
        self.manifest = self.export / gan.MANIFEST
        self.eval = self.path / "eval"
        self.eval_csv = self.path / "eval.csv"

    def move_aside(self) -> Path | None:
        """`--fresh`: keep the old run under a dated name instead of deleting it."""
        if not self.path.exists():
            return None
        aside = self.path.with_name(f"{self.path.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.move(str(self.path), str(aside))
        return aside

    def prepare(self, config: dict) -> None:
        """Save the resolved config; a resumed run must be the same experiment as the saved one.

        The config inside the newest checkpoint says what the run is (config.yaml may be gone
        or edited); a run without one is compared with config.yaml.
        """
        saved = saved_config(self.checkpoints)
        if saved is None and self.config.exists() and self.checkpoints.exists():
            saved = config_lib.load(self.config)
        changed = sorted(k for k in differing_keys(saved or {}, config) if k not in RESUMABLE_CHANGES) if saved else []
        if changed:
            raise ConfigError(
                f"{self.path} holds a run with a different configuration "
                f"({'; '.join(f'{k}: {value_at(saved, k)} there, {value_at(config, k)} now' for k in changed)}). "
                "Resume it with the same settings, start over with --fresh (the old run is moved "
                "aside, not deleted), or choose another folder with --run-dir."
            )
        self.path.mkdir(parents=True, exist_ok=True)
        config_lib.save(config, self.config)
        atomic_write_text(self.versions, json.dumps(versions(), indent=2) + "\n")


    def record_settings(self, settings: dict) -> None:
        """Add the settings chosen for this machine (machine.Choice by name: value and reason) to versions.json."""
        saved = json.loads(self.versions.read_text())
        saved["settings"] = {name: {"value": c.value, "reason": c.reason} for name, c in settings.items()}
        atomic_write_text(self.versions, json.dumps(saved, indent=2) + "\n")


def differing_keys(a: dict, b: dict, prefix: str = "") -> set:
    keys = set()
    for key in set(a) | set(b):
        left, right = a.get(key), b.get(key)
        if isinstance(left, dict) and isinstance(right, dict):
            keys |= differing_keys(left, right, f"{prefix}{key}.")
        elif left != right:
            keys.add(f"{prefix}{key}")
    return keys


def value_at(config: dict, dotted: str):
    node = config
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return config_lib.shown(node)


def versions() -> dict:
    return {
        "replication": replication.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    }


def load_config(run_dir) -> dict:
    run = RunFolder(run_dir)
    if not run.config.is_file():
        raise KitError(
            f"{run.path} is not a run folder (no config.yaml). Pass a folder that `train` wrote, e.g. runs/horse2zebra."
        )
    return config_lib.load(run.config)


@dataclass(frozen=True)
class Weights:
    """Which weights a command used: the run's export or one checkpoint, and how far they were trained."""

    source: str  # "export" or "checkpoint"
    path: Path  # the export's manifest.json, or the checkpoint's prefix (checkpoints/ckpt-30)
    step: int | None
    epoch: int | None  # epochs completed
    steps_per_epoch: int | None = None

    def __str__(self) -> str:
        where = "the exported generators" if self.source == "export" else f"checkpoint {self.path.name}"
        return f"step {self.step}, {self.epochs_text()} ({where}, {self.path})"

    def epochs_text(self) -> str:
        if self.epoch is None:
            return "epoch unknown"
        into = self.step - self.epoch * self.steps_per_epoch if self.steps_per_epoch and self.step is not None else 0
        if into:
            return f"{into} of the {self.steps_per_epoch} steps of epoch {self.epoch + 1}"
        return f"epoch {self.epoch}"

    def as_json(self) -> dict:
        return {"source": self.source, "path": str(self.path), "step": self.step, "epoch": self.epoch}


class Translator:
    """One direction's generator, called as the model it came from wants to be called at test time."""

    def __init__(self, generator: keras.Model, direction: str, training_mode: bool = False, step: int | None = None,
                 weights: Weights | None = None):
        self.generator, self.direction = generator, direction
        self.training_mode, self.step, self.weights = training_mode, step, weights
        self.size_multiple = networks.size_multiple(generator)

    def __call__(self, images):
        if self.training_mode:
            return tf.cast(networks.call_as_tested(self.generator, images), tf.float32)
        return tf.cast(self.generator(images, training=False), tf.float32)


def load_generators(run_dir, log=None) -> dict:
    """{direction: Translator}: the exported generators, or those of the newest checkpoint that
    restores if not exported yet; each Translator's `weights` says which. Only reads the run, so it
    may be training meanwhile. `log` gets a line if a damaged checkpoint is skipped."""
    run = RunFolder(run_dir)
    if run.manifest.is_file():
        try:
            return exported_generators(run.manifest)
        except ExportGone:  # swapped out by a new export this instant: read the new one
            if run.manifest.is_file():
                return exported_generators(run.manifest)
    config = load_config(run.path)
    model_class = models.model_class(config)
    generators = {d: gan.build_generator(config["model"]) for d in model_class.generator_names}
    step = tf.Variable(0, dtype=tf.int64)
    items = {model_class.generator_names[d]: g for d, g in generators.items()}
    # Restored together with the step from one checkpoint; a damaged one (or one a training deletes
    # while it is read) is named and skipped, never moved: this run may be training.
    path = restore_newest_good(tf.train.Checkpoint(**items, step=step), run.checkpoints, log)
    if path is None:
        raise KitError(f"{run.path} has no exported generators and no checkpoint yet; train it first.")
    weights = checkpoint_weights(config, Path(path), int(step.numpy()))
    return {d: Translator(g, d, model_class.training_mode_at_test, weights.step, weights) for d, g in generators.items()}


def checkpoint_weights(config: dict, path: Path, step: int) -> Weights:
    """`Weights` of a checkpoint at `step`; its epoch from the training data's steps per epoch, if they can be read."""
    try:
        per_epoch = steps_per_epoch(config)
    except KitError:  # the training images are gone: the step still says it
        return Weights("checkpoint", path, step, None)
    return Weights("checkpoint", path, step, step // per_epoch, per_epoch)


def steps_per_epoch(config: dict) -> int:
    """How many steps an epoch of this run's training has (train.max_steps_per_epoch caps it)."""
    return schedule.steps_per_epoch(models.training_data(config).steps_per_epoch, config["train"])


class ExportGone(KitError):
    """The export changed while it was read (a new export was swapped in)."""


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
    if not isinstance(manifest.get("training_mode_at_test", False), bool):
        return '"training_mode_at_test" is not true or false'
    return None


def is_file_name(name, suffix: str) -> bool:
    return isinstance(name, str) and name.endswith(suffix) and Path(name).name == name


def exported_generators(manifest_path: Path) -> dict:
    """The export's generators, as the manifest names them; refused if a file is not the one it names."""
    text = read_bytes(manifest_path)
    manifest = read_manifest(manifest_path)
    weights = Weights("export", manifest_path, manifest.get("step"), manifest.get("epoch"))
    translators = {}
    for direction, files in manifest["generators"].items():
        path = manifest_path.parent / files["keras"]
        try:
            model = load_model_file(path)
            if "sha256" in files and gan.sha256_of(path) != files["sha256"]:
                raise KitError(
                    f"{path} is not the file that {manifest_path} (step {weights.step}) names: a mix of two exports. "
                    + DAMAGED_MANIFEST
                )
        except (KitError, FileNotFoundError):
            if read_bytes(manifest_path) != text:
                raise ExportGone(f"{manifest_path.parent} changed while it was read") from None
            raise
        translators[direction] = Translator(model, direction, manifest.get("training_mode_at_test", False), weights.step, weights)
    if read_bytes(manifest_path) != text:
        raise ExportGone(f"{manifest_path.parent} changed while it was read")
    return translators


def read_bytes(path: Path) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None


def load_model_file(path: Path) -> keras.Model:
    """A `.keras` generator file; a missing or damaged file ends in one line that says which."""
    import replication.layers  # noqa: F401  (registers the kit's layers with Keras)

    path = Path(path)
    if not path.is_file():
        raise KitError(f"No model file {path}. Pass a .keras file written by `train` (runs/<name>/export/).")
    if not zipfile.is_zipfile(path):
        raise KitError(f"{path} is damaged (not a complete .keras file); export the run again or use --run with its checkpoints.")
    try:
        return keras.models.load_model(path)
    except Exception as err:  # a damaged or foreign file; Keras' own message says what is wrong
        raise KitError(f"Could not load {path} as a Keras model (damaged or not a generator?): {err}") from None


def exported_as(model_file: Path) -> tuple[str | None, bool]:
    """(direction, training mode at test) that the export manifest beside `model_file` gives it; (None, False) without one."""
    manifest_path = Path(model_file).parent / gan.MANIFEST
    if not manifest_path.is_file():
        return None, False
    manifest = read_manifest(manifest_path)
    for direction, files in manifest["generators"].items():
        if files.get("keras") == Path(model_file).name:
            return direction, manifest.get("training_mode_at_test", False)
    return None, False

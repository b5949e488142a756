"""The generators other commands use (translate, evaluate, figures): a run's export, else its newest
checkpoint that restores, or one `.keras` file; each called as its model is tested (`Translator`).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from replication import export, gan, models, networks, schedule
from replication.checkpoints import restore_newest_good
from replication.errors import KitError
from replication.files import sha256_of
from replication.runs import RunFolder, load_config


@dataclass(frozen=True)
class Weights:
    """Which weights a command used: the run's export or one checkpoint, and how far they were trained."""

    source: str  # "export" or "checkpoint"
    path: Path  # the export's manifest.json, or the checkpoint's prefix (checkpoints/ckpt-30)
    step: int | None
    epoch: int | None  # epochs completed
    steps_per_epoch: int | None = None
    into: int = 0  # steps into the epoch under way
    imported: str | None = None  # "official weights, imported from FILE (SHA-256 ...)": not trained by the kit

    def __str__(self) -> str:
        if self.imported:
            return f"{self.imported} ({self.path})"
        where = "the exported generators" if self.source == "export" else f"checkpoint {self.path.name}"
        return f"step {self.step}, {self.epochs_text()} ({where}, {self.path})"

    def epochs_text(self) -> str:
        if self.epoch is None:
            return "epoch unknown"
        if self.steps_per_epoch:
            return schedule.position_words(self.epoch, self.into, self.steps_per_epoch)
        return f"the end of epoch {self.epoch}"  # an export: written as training ends

    def when_exported(self) -> str:
        """An export's "exported at step S, epoch E", or the imported weights' own line."""
        if self.imported:
            return self.imported
        if self.step is None:
            return ""
        epoch = f", epoch {self.epoch}" if self.epoch is not None else ""
        return f"exported at step {self.step}{epoch}"

    def epoch_under_way(self) -> int | None:
        """The epoch (from 1) a checkpoint's step was taken in, as losses.csv numbers it; None before any step."""
        if self.epoch is None or (self.epoch == 0 and not self.into):
            return None
        return self.epoch + 1 if self.into else self.epoch

    def as_json(self) -> dict:
        return {"source": self.source, "path": str(self.path), "step": self.step, "epoch": self.epoch,
                **({"imported": self.imported} if self.imported else {})}


class Translator:
    """One direction's generator, called as the model it came from wants to be called at test time."""

    def __init__(self, generator: keras.Model, direction: str, training_mode: bool = False, step: int | None = None,
                 weights: Weights | None = None, file: Path | None = None):
        self.generator, self.direction = generator, direction
        self.training_mode, self.step, self.weights = training_mode, step, weights
        self.file = file  # the .keras file it was read from; None for a checkpoint's
        self.size_multiple = networks.size_multiple(generator)
        # Traced once per image size: the graph frees each tensor after its last reader, where a
        # layer-by-layer call holds every layer's output (docs/official-models.md#speed).
        self.traced = tf.function(self.as_tested, reduce_retracing=True)

    def __call__(self, images):
        return self.traced(tf.convert_to_tensor(images))

    def as_tested(self, images):
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
    weights = checkpoint_weights(config, Path(path), int(step.numpy()), run)
    return {d: Translator(g, d, model_class.training_mode_at_test, weights.step, weights) for d, g in generators.items()}


def checkpoint_weights(config: dict, path: Path, step: int, run: RunFolder | None = None) -> Weights:
    """`Weights` of a checkpoint at `step`; its epoch from where the run's epochs begin (data.json), else
    from the training data's steps per epoch, if they can be read."""
    record = run.data_record() if run else None
    if record:
        epochs = schedule.Epochs(**record["epochs"])
    else:
        try:
            epochs = schedule.Epochs(steps_per_epoch(config))
        except KitError:  # the training images are gone: the step still says it
            return Weights("checkpoint", path, step, None)
    epoch = epochs.of(step)
    return Weights("checkpoint", path, step, epoch, epochs.steps, step - epochs.start(epoch))


def steps_per_epoch(config: dict) -> int:
    """How many steps an epoch of this run's training has (train.max_steps_per_epoch caps it)."""
    return schedule.steps_per_epoch(models.training_data(config).steps_per_epoch, config["train"])


class ExportGone(KitError):
    """The export changed while it was read (a new export was swapped in)."""


def exported_generators(manifest_path: Path) -> dict:
    """The export's generators, as the manifest names them; refused if a file is not the one it names."""
    text = bytes_or_none(manifest_path)
    manifest = export.read_manifest(manifest_path)
    weights = export_weights(manifest_path, manifest)
    translators = {}
    for direction, files in manifest["generators"].items():
        path = manifest_path.parent / files["keras"]
        try:
            model = load_model_file(path)
            if "sha256" in files and sha256_of(path) != files["sha256"]:
                raise KitError(
                    f"{path} is not the file that {manifest_path} (step {weights.step}) names: a mix of two exports. "
                    + export.DAMAGED_MANIFEST
                )
        except (KitError, FileNotFoundError):
            if bytes_or_none(manifest_path) != text:
                raise ExportGone(f"{manifest_path.parent} changed while it was read") from None
            raise
        translators[direction] = Translator(model, direction, manifest.get("training_mode_at_test", False), weights.step, weights, path)
    if bytes_or_none(manifest_path) != text:
        raise ExportGone(f"{manifest_path.parent} changed while it was read")
    return translators


def export_weights(manifest_path: Path, manifest: dict) -> Weights:
    """`Weights` of the export that `manifest` (read from `manifest_path`) describes."""
    return Weights("export", manifest_path, manifest.get("step"), manifest.get("epoch"),
                   imported=(manifest.get("imported") or {}).get("text"))


def bytes_or_none(path: Path) -> bytes | None:
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


def exported_as(model_file: Path) -> tuple[str | None, bool, Weights | None]:
    """(direction, training mode at test, `Weights`) that the export manifest beside `model_file` gives
    it; the direction None and False if the manifest does not name the file, all None without one."""
    manifest_path = Path(model_file).parent / export.MANIFEST
    if not manifest_path.is_file():
        return None, False, None
    manifest = export.read_manifest(manifest_path)
    weights = export_weights(manifest_path, manifest)
    for direction, files in manifest["generators"].items():
        if files.get("keras") == Path(model_file).name:
            return direction, manifest.get("training_mode_at_test", False), weights
    return None, False, weights

"""Checkpoints: the latest two, plus one every `save_epoch_freq` epochs that is never deleted.

TensorFlow writes a checkpoint's files into `<name>_temp/` and renames them
into place before it replaces the small `checkpoint` index file, so a crash or
exception during a save leaves the previous checkpoint listed and whole.

The files on disk are the truth, not the index: a run that resumes lists the
folder (a damaged or deleted index loses nothing), tries the newest checkpoint
first and falls back to the next one (the kept ones last) when a file is
truncated, zeroed or missing, moving the damaged one aside into `damaged/`; a
folder whose checkpoints all fail is refused, never trained over from zero.
Each checkpoint also holds the resolved config of its run, so a run can be
recognised even when its `config.yaml` is gone.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import tensorflow as tf
import yaml
from tensorflow.python.checkpoint import checkpoint_management

from replication.errors import ConfigError, RunFolderError

LATEST, KEPT = "ckpt", "epoch"  # file names: checkpoints/ckpt-<step>, checkpoints/every_epoch/epoch-<epoch>
KEPT_FOLDER = "every_epoch"
CONFIG_KEY = "config/.ATTRIBUTES/py_state"
# What TensorFlow raises on restoring a truncated, zeroed, overwritten or missing file (a bad
# sstable or checksum is a plain OpError). Not damage: running out of memory, a denied read.
DAMAGE = (IndexError, tf.errors.DataLossError, tf.errors.NotFoundError, tf.errors.OutOfRangeError, tf.errors.InvalidArgumentError)
# What it raises when the checkpoint is whole but belongs to other networks.
MISMATCH = (ValueError, AssertionError)


class ConfigText(tf.train.experimental.PythonState):
    """The run's resolved config (YAML) inside each checkpoint; written, never restored."""

    def __init__(self, config: dict | None):
        self.text = yaml.safe_dump(config, sort_keys=False) if config is not None else ""

    def serialize(self) -> str:
        return self.text

    def deserialize(self, string) -> None:
        pass  # read back with saved_config(), never into a live run


class Checkpoints:
    def __init__(self, folder: Path, items: dict, save_epoch_freq: int, config: dict | None = None):
        self.folder = Path(folder)
        self.counters = dict(step=tf.Variable(0, dtype=tf.int64, trainable=False, name="step"))
        self.checkpoint = tf.train.Checkpoint(**items, **self.counters)
        # Saved with the config inside; restored without it, so a checkpoint that lacks it still restores.
        self.saved = tf.train.Checkpoint(**items, **self.counters, config=ConfigText(config))
        self.save_epoch_freq = save_epoch_freq
        repair_index(self.folder, LATEST)
        repair_index(self.folder / KEPT_FOLDER, KEPT)
        self.open_managers()

    def open_managers(self) -> None:
        """The managers read the index when they are made; remade after the index is repaired."""
        self.latest = tf.train.CheckpointManager(self.saved, self.folder, max_to_keep=2, checkpoint_name=LATEST)
        self.kept = tf.train.CheckpointManager(self.saved, self.folder / KEPT_FOLDER, max_to_keep=None, checkpoint_name=KEPT)

    @property
    def step(self) -> int:
        return int(self.counters["step"].numpy())

    def restore_latest(self, log=None) -> str | None:
        """Restore the newest checkpoint that restores; None in a folder without checkpoints.

        Damaged ones newer than it are moved into `damaged/` and named in `log`,
        and the index no longer lists them.
        """
        path = restore_newest_good(self.checkpoint, self.folder, log, move_damaged=True)
        repair_index(self.folder, LATEST)
        self.open_managers()
        return path

    def save(self, step: int) -> str:
        self.counters["step"].assign(step)
        return self.latest.save(checkpoint_number=step)

    def save_epoch_end(self, step: int, epochs_done: int) -> str:
        path = self.save(step)
        if self.keeps(epochs_done):
            self.save_kept(epochs_done)
        return path

    def keeps(self, epochs_done: int) -> bool:
        return bool(self.save_epoch_freq) and epochs_done % self.save_epoch_freq == 0

    def save_kept(self, epochs_done: int) -> str:
        return self.kept.save(checkpoint_number=epochs_done)

    def has_kept(self, epochs_done: int) -> bool:
        return (self.folder / KEPT_FOLDER / f"{KEPT}-{epochs_done}.index").exists()


# ---------------------------------------------------------------- the files on disk


def number_of(path) -> int:
    return int(Path(path).name.rsplit("-", 1)[1])


def on_disk(folder: Path, name: str = LATEST) -> list[str]:
    """The checkpoints in `folder` with any file there, oldest first, found by listing it."""
    pattern = re.compile(rf"^({re.escape(name)}-\d+)\.(index|data-\d+-of-\d+)$")
    prefixes = {m.group(1) for f in (Path(folder).iterdir() if Path(folder).is_dir() else []) if (m := pattern.match(f.name))}
    return sorted((str(Path(folder) / p) for p in prefixes), key=number_of)


def indexed_checkpoints(folder: Path) -> list[str]:
    """The checkpoints the `checkpoint` index names, oldest first; none if it is missing or unreadable."""
    try:
        state = tf.train.get_checkpoint_state(str(folder))
    except (tf.errors.OpError, ValueError, UnicodeDecodeError):
        return []
    return list(state.all_model_checkpoint_paths) if state else []


def candidates(folder: Path) -> list[str]:
    """Every checkpoint of a run, newest first: the latest ones, then the kept ones of `every_epoch/`."""
    folder = Path(folder)
    latest = set(on_disk(folder, LATEST)) | {p for p in indexed_checkpoints(folder) if Path(p).name.startswith(f"{LATEST}-")}
    kept = on_disk(folder / KEPT_FOLDER, KEPT)
    return sorted(latest, key=number_of, reverse=True) + kept[::-1]


def loss_scale_in(folder) -> bool | None:
    """Whether the newest readable checkpoint of a run holds a loss scale (it was written under
    mixed_float16, whose optimizers wrap Adam in Keras' LossScaleOptimizer); None without one."""
    for path in candidates(Path(folder)):
        try:
            names = [name for name, _ in tf.train.list_variables(path)]
        except (*DAMAGE, tf.errors.OpError):
            continue
        return any("/dynamic_scale/" in name for name in names)
    return None


def restore_newest_good(checkpoint: tf.train.Checkpoint, folder, log=None, move_damaged: bool = False) -> str | None:
    """Restore `checkpoint` from the newest checkpoint under `folder` that restores; return its path.

    A damaged one (truncated, zeroed, overwritten, a file missing) is skipped
    and, with `move_damaged`, moved into `folder/damaged/`; `log` gets one line
    naming it and the one used. None if `folder` holds no checkpoint. Refuses
    (RunFolderError) if it holds some and none restores, and (ConfigError) if
    the newest whole one belongs to other networks.
    """
    folder = Path(folder)
    damaged = []
    for path in candidates(folder):
        try:
            checkpoint.restore(path).assert_existing_objects_matched().expect_partial()
        except (*DAMAGE, tf.errors.OpError) as err:
            if not is_damage(err):
                raise
            damaged.append((path, first_line(err)))
            continue
        except MISMATCH as err:
            raise ConfigError(
                f"{path} was written by networks of another shape or kind ({first_line(err)}). Restore the "
                "run's config.yaml, or start over with --fresh (the old run is moved aside, not deleted)."
            ) from None
        if damaged:
            where = f" (moved to {move_aside([p for p, _ in damaged], folder / 'damaged')})" if move_damaged else ""
            note = f"damaged checkpoint {', '.join(f'{p} ({why})' for p, why in damaged)}{where}; using {path}"
            (log or print)(note)
        return path
    if damaged:
        raise RunFolderError(
            f"None of the {len(damaged)} checkpoints in {folder} restores (the newest: {damaged[0][0]}: "
            f"{damaged[0][1]}). Nothing was changed; start over with --fresh (the old run is moved aside, not deleted)."
        )
    return None


def is_damage(err: BaseException) -> bool:
    return isinstance(err, DAMAGE) or type(err) is tf.errors.OpError


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200] if text else ''}".rstrip(": ")


def move_aside(prefixes: list[str], into: Path) -> Path:
    """Move every file of these checkpoints into `into` (kept for inspection, never deleted)."""
    into.mkdir(parents=True, exist_ok=True)
    for prefix in prefixes:
        for file in Path(prefix).parent.glob(f"{Path(prefix).name}.*"):
            target = into / file.name
            if target.exists():
                target = into / f"{file.name}.{time.strftime('%Y%m%d-%H%M%S')}"
            shutil.move(str(file), str(target))
    return into


def repair_index(folder: Path, name: str) -> None:
    """Rewrite `folder/checkpoint` to list the whole checkpoints on disk, if it does not already."""
    whole = [p for p in on_disk(folder, name) if Path(f"{p}.index").exists()]
    if not whole or indexed_checkpoints(folder) == whole:
        return
    times = [Path(f"{p}.index").stat().st_mtime for p in whole]
    checkpoint_management.update_checkpoint_state_internal(
        save_dir=str(folder), model_checkpoint_path=whole[-1], all_model_checkpoint_paths=whole,
        all_model_checkpoint_timestamps=times, last_preserved_timestamp=min(times) - 1, save_relative_paths=True,
    )


def saved_config(folder) -> dict | None:
    """The resolved config stored in the newest readable checkpoint under `folder`, or None."""
    for path in candidates(folder):
        try:
            reader = tf.train.load_checkpoint(path)
            if reader.has_tensor(CONFIG_KEY):
                return yaml.safe_load(reader.get_tensor(CONFIG_KEY).decode())
        except (*DAMAGE, tf.errors.OpError) as err:
            if not is_damage(err):
                raise
    return None


def remove_abandoned_temp(folder) -> list[Path]:
    """Delete the `<name>_temp/` folders of saves that died half way. Only call this while holding the run's lock."""
    folder = Path(folder)
    abandoned = [p for f in (folder, folder / KEPT_FOLDER) if f.is_dir() for p in f.glob("*_temp") if p.is_dir()]
    for path in abandoned:
        shutil.rmtree(path)
    return abandoned

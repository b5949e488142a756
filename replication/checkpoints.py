"""Checkpoints: the latest two, plus one every `save_epoch_freq` epochs that is never deleted.

TensorFlow writes a checkpoint's data files first and then replaces the small
`checkpoint` index file atomically, so a crash or exception during a save
leaves the previous checkpoint listed and whole.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf


class Checkpoints:
    def __init__(self, folder: Path, items: dict, save_epoch_freq: int):
        self.counters = dict(
            step=tf.Variable(0, dtype=tf.int64, trainable=False, name="step"),
            epoch=tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch"),
        )
        self.checkpoint = tf.train.Checkpoint(**items, **self.counters)
        self.latest = tf.train.CheckpointManager(self.checkpoint, Path(folder), max_to_keep=2)
        self.kept = tf.train.CheckpointManager(self.checkpoint, Path(folder) / "every_epoch", max_to_keep=None, checkpoint_name="epoch")
        self.save_epoch_freq = save_epoch_freq

    @property
    def step(self) -> int:
        return int(self.counters["step"].numpy())

    @property
    def epoch(self) -> int:
        """Epochs completed (0-based index of the epoch being trained)."""
        return int(self.counters["epoch"].numpy())

    def restore_latest(self) -> str | None:
        path = self.latest.latest_checkpoint
        if path:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def save(self, step: int, epoch: int) -> str:
        self.counters["step"].assign(step)
        self.counters["epoch"].assign(epoch)
        return self.latest.save(checkpoint_number=step)

    def save_epoch_end(self, step: int, epochs_done: int) -> str:
        path = self.save(step, epochs_done)
        if self.save_epoch_freq and epochs_done % self.save_epoch_freq == 0:
            self.kept.save(checkpoint_number=epochs_done)
        return path

"""A run's folder: where a run keeps what it writes, its saved config, and whether a resume is the same run.

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
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import replication
from replication import config as config_lib
from replication.checkpoints import saved_config
from replication.errors import ConfigError, KitError
from replication.export import MANIFEST
from replication.io import atomic_write_text

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
        self.manifest = self.export / MANIFEST
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
        saved = config_lib.add_missing_keys(saved) if saved else saved  # a run from before a key existed
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

"""A run's folder: where a run keeps what it writes, its saved config, and whether a resume is the same run.

A run lives in `runs/<experiment>/` (or `--run-dir`):
  config.yaml      the resolved configuration      versions.json  TF, Keras, kit, Python
  losses.csv       every `log_every` steps          tensorboard/   the same scalars and sample grids
  run.log          what happened, in words          checkpoints/   latest two + every_epoch/
  samples/         epoch_NNN.png and .npz           export/        the generators + manifest.json
  eval/            what `evaluate` measured         eval.csv       quality per epoch while training
  data.json        the files of each split it trains on (names, sizes, times) and where its epochs begin
  config.<time>.yaml  an earlier configuration, kept when a resume changed one (train.epochs, ...)
  state.json       training, stopped (and how) or finished, at which step
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
import yaml

import replication
from replication import config as config_lib
from replication import schedule
from replication.checkpoints import indexed_checkpoints, saved_config
from replication.errors import ConfigError, DataError, KitError, RunFolderError
from replication.export import MANIFEST
from replication.files import atomic_write_text, readable

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
        self.data = self.path / "data.json"
        self.state = self.path / "state.json"

    def move_aside(self) -> Path | None:
        """`--fresh`: keep the old run under a dated name instead of deleting it."""
        if not self.path.exists():
            return None
        aside = self.path.with_name(f"{self.path.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.move(str(self.path), str(aside))
        return aside

    def prepare(self, config: dict) -> tuple[dict, Path | None]:
        """Save the resolved config; a resumed run must be the same experiment as the saved one.

        The config inside the newest checkpoint says what the run is (config.yaml may be gone
        or edited); a run without one is compared with config.yaml. A config.yaml that the new
        one replaces with other values is kept as config.<time>.yaml. Returns what a resume
        changed, {key: (saved value, new value)}, and where the replaced config.yaml is kept (or None).
        """
        saved = saved_config(self.checkpoints)
        if saved is None and self.config.exists() and self.checkpoints.exists():
            saved = config_lib.load(self.config)
        if saved:  # a run from before a key existed, or before paths were stored absolute
            saved = config_lib.with_absolute_paths(config_lib.add_missing_keys(saved))[0]
        differing = sorted(differing_keys(saved, config)) if saved else []
        changed = [k for k in differing if k not in RESUMABLE_CHANGES]
        if changed:
            raise ConfigError(
                f"{self.path} holds a run with a different configuration "
                f"({'; '.join(f'{k}: {value_at(saved, k)} there, {value_at(config, k)} now' for k in changed)}). "
                "Resume it with the same settings, start over with --fresh (the old run is moved "
                "aside, not deleted), or choose another folder with --run-dir."
            )
        self.path.mkdir(parents=True, exist_ok=True)
        kept = self.keep_config_replaced_by(config)
        config_lib.save(config, self.config)
        atomic_write_text(self.versions, json.dumps(versions(), indent=2) + "\n")
        return {k: (value_at(saved, k), value_at(config, k)) for k in differing}, kept

    def keep_config_replaced_by(self, config: dict) -> Path | None:
        """Keep config.yaml as config.<time>.yaml when `config` would replace it with other values."""
        if not self.config.is_file():
            return None
        try:
            same = yaml.safe_load(self.config.read_text()) == config
        except yaml.YAMLError:
            same = False
        if same:
            return None
        kept = self.path / f"config.{time.strftime('%Y%m%d-%H%M%S')}.yaml"
        shutil.copy2(self.config, kept)
        return kept

    def data_changes(self, listings: dict, accept: bool) -> str | None:
        """What changed in the data since the run last trained, in words; None if nothing did or the run
        has no checkpoint to resume. Changed data is refused unless `accept` (--accept-new-data)."""
        record = self.data_record()
        if record is None or not indexed_checkpoints(self.checkpoints):
            return None
        changes = data_changes(record["files"], listings)
        if changes and not accept:
            raise DataError(
                f"{self.path} was trained on other data: {changes}. Resume on the data as it is now with "
                "--accept-new-data (the epoch under way starts again on it), start over with --fresh (the old "
                "run is moved aside, not deleted), or put the old files back."
            )
        return changes

    def data_record(self) -> dict | None:
        """data.json: {"files": {where: listing}, "epochs": {"steps", "from_step", "first"}}; None before one is written."""
        if not self.data.is_file():
            return None
        try:
            record = json.loads(self.data.read_text())
            schedule.Epochs(**record["epochs"])
            return record
        except (ValueError, KeyError, TypeError):
            raise RunFolderError(f"{self.data} is damaged; delete it to resume without checking the data.") from None

    def record_data(self, listings: dict, epochs: schedule.Epochs) -> None:
        epochs_json = {"steps": epochs.steps, "from_step": epochs.from_step, "first": epochs.first}
        atomic_write_text(self.data, json.dumps({"epochs": epochs_json, "files": listings}) + "\n")

    def record_state(self, state: str, step: int | None, steps_per_epoch: int, how: str = "") -> None:
        """state.json: `training`, `stopped` (`how`: Ctrl-C, --until-step N, a fault) or `finished`, at `step`."""
        record = {"state": state, "step": step, "how": how, "steps_per_epoch": steps_per_epoch,
                  "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_write_text(self.state, json.dumps(record, indent=1) + "\n")

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


def data_changes(old: dict, new: dict, few: int = 3) -> str:
    """What differs between two {where: {name: [bytes, time]}} listings, in words ("" if nothing):
    each split's counts and a few of the names added, removed or changed."""
    parts = []
    for where in sorted(set(old) | set(new)):
        before, now = old.get(where, {}), new.get(where, {})
        kinds = (("new", sorted(set(now) - set(before))), ("gone", sorted(set(before) - set(now))),
                 ("changed", sorted(n for n in set(before) & set(now) if before[n] != now[n])))
        named = [f"{len(names)} {kind}, e.g. {', '.join(names[:few])}" for kind, names in kinds if names]
        if named:
            parts.append(readable(f"{where}: {len(before)} -> {len(now)} images ({'; '.join(named)})"))
    return "; ".join(parts)


def value_at(config: dict, dotted: str):
    node = config
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return config_lib.as_typed(node)


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

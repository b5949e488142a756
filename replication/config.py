"""Experiments are plain data: one YAML file per run in `experiments/`.

A file may name another with `extends:`; its keys override the other's.
`resolve()` merges the chain, applies `--set section.key=value` overrides,
checks every key against `experiments/base.yaml` (the paper's defaults), and
returns one plain nested dict. That dict is saved beside the run
(`config.yaml`) and is the only configuration any part of the kit reads.
Keys renamed since an earlier version (`RENAMED`) still read, under their
new names, with a note on stderr.
"""

from __future__ import annotations

import copy
import difflib
import os
import sys
from pathlib import Path

import yaml

from replication.errors import ConfigError

EXPERIMENTS_DIR = Path(__file__).resolve().parent.parent / "experiments"
BASE = "base"

# Old key -> (new key, how each old value reads now); other values pass through unchanged.
RENAMED = {
    "train.mixed_precision": ("train.precision", {"auto": "auto", True: "mixed_float16", False: "float32"}),
}


def renamed_key(dotted: str, value, where: str) -> tuple[str, object]:
    """The current name and value of a key that may use an old name; a note on stderr when it did."""
    if dotted not in RENAMED:
        return dotted, value
    new_key, values = RENAMED[dotted]
    new_value = values.get(value, value) if isinstance(value, (str, bool)) else value
    print(f"note: {where}: {dotted}: {value!r} is now {new_key}: {new_value!r}; please rename it.", file=sys.stderr)
    return new_key, new_value


def rename_old_keys(layer: dict, where: str) -> dict:
    """A config mapping with every old key of `RENAMED` moved to its new name."""
    for old in RENAMED:
        section, key = old.split(".")
        if isinstance(layer.get(section), dict) and key in layer[section]:
            new_key, value = renamed_key(old, layer[section].pop(key), where)
            new_section, new_name = new_key.split(".")
            layer.setdefault(new_section, {})[new_name] = value
    return layer


def experiment_path(name_or_path: str | os.PathLike, experiments_dir: Path = EXPERIMENTS_DIR) -> Path:
    """An experiment name (`horse2zebra`) or a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    candidate = Path(experiments_dir) / f"{name_or_path}.yaml"
    if candidate.exists():
        return candidate
    known = sorted(p.stem for p in Path(experiments_dir).glob("*.yaml"))
    raise ConfigError(
        f"No experiment '{name_or_path}': expected {candidate} or a path to a .yaml file. "
        f"Known experiments: {', '.join(known)}."
    )


def load_chain(name_or_path, experiments_dir: Path = EXPERIMENTS_DIR) -> dict:
    """The experiment merged over everything it `extends`, without overrides."""
    seen = []
    path = experiment_path(name_or_path, experiments_dir)
    layers = []
    while True:
        if path in seen:
            raise ConfigError(f"{path}: `extends` forms a loop through {', '.join(map(str, seen))}.")
        seen.append(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of sections, not {type(data).__name__}.")
        parent = data.pop("extends", None)
        layers.append(rename_old_keys(data, str(path)))
        if parent is None:
            break
        path = experiment_path(parent, experiments_dir)
    merged: dict = {}
    for layer in reversed(layers):
        merged = deep_merge(merged, layer)
    return merged


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[list[str], object]:
    """`train.epochs=5` -> (['train', 'epochs'], 5); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set expects section.key=value, got '{text}'.")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    key, value = renamed_key(key.strip(), value, "--set")
    return key.split("."), value


def apply_override(config: dict, keys: list[str], value) -> None:
    node = config
    for depth, key in enumerate(keys):
        known = node.keys() if isinstance(node, dict) else []
        if key not in known:
            where = ".".join(keys[:depth]) or "the config"
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else f" Known keys: {', '.join(sorted(known))}."
            raise ConfigError(f"Unknown key '{'.'.join(keys)}': {where} has no '{key}'.{hint}")
        if depth == len(keys) - 1:
            node[key] = value
        else:
            node = node[key]


def check_known_keys(config: dict, reference: dict, where: str = "") -> None:
    for key, value in config.items():
        dotted = f"{where}{key}"
        if key not in reference:
            close = difflib.get_close_matches(key, list(reference), n=1)
            hint = f" Did you mean '{where}{close[0]}'?" if close else ""
            raise ConfigError(f"Unknown config key '{dotted}' (not in experiments/base.yaml).{hint}")
        if isinstance(value, dict) and isinstance(reference[key], dict):
            check_known_keys(value, reference[key], f"{dotted}.")


def resolve(name_or_path, overrides=(), experiments_dir: Path = EXPERIMENTS_DIR) -> dict:
    """The full configuration of one run: base, the experiment chain, then overrides."""
    base = load_chain(BASE, experiments_dir)
    config = load_chain(name_or_path, experiments_dir)
    check_known_keys(config, base)
    config = deep_merge(base, config)
    for text in overrides:
        apply_override(config, *parse_override(text))
    config.setdefault("name", Path(experiment_path(name_or_path, experiments_dir)).stem)
    return config


def save(config: dict, path: str | os.PathLike) -> None:
    """Write the resolved config atomically (a crash never leaves half a file)."""
    from replication.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config, sort_keys=False))


def load(path: str | os.PathLike) -> dict:
    """A saved config (a run's config.yaml), with old key names read as the new ones."""
    return rename_old_keys(yaml.safe_load(Path(path).read_text()), str(path))

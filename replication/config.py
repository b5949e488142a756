"""Experiments are plain data: one YAML file per run in `experiments/`.

A file may name another with `extends:`; its keys override the other's.
`resolve()` merges the chain, applies `--set section.key=value` overrides,
checks every key against `experiments/base.yaml` (the paper's defaults) and
every value against its rule in `rules()`, and returns one plain nested dict.
That dict is saved beside the run (`config.yaml`) and is the only
configuration any part of the kit reads.
Keys renamed since an earlier version (`RENAMED`) still read, under their
new names, with a note on stderr.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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
    return validate(config, base)


# ---------------------------------------------------------------- what each key may hold


@dataclass(frozen=True)
class Rule:
    """What one key may hold: `allowed`, in words, and `accept(value)`, which returns
    the value to keep (YAML reads `2e-4` as text; it is kept as the number) or
    raises ValueError."""

    allowed: str
    accept: Callable
    optional: bool = False

    def check(self, key: str, value):
        if value is None and self.optional:
            return None
        try:
            return self.accept(value)
        except (ValueError, TypeError):
            allowed = f"{self.allowed}, or null" if self.optional else self.allowed
            raise ConfigError(f"{key}={shown(value)} is not allowed: {key} must be {allowed}.") from None


def whole(minimum: int = 0, optional: bool = False) -> Rule:
    def accept(value):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError
        return value

    return Rule(f"a whole number, {minimum} or more", accept, optional)


def number(minimum: float = 0, below: float | None = None) -> Rule:
    def accept(value):
        if isinstance(value, bool):
            raise ValueError
        value = float(value) if isinstance(value, str) else value
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError
        if value < minimum or (below is not None and value >= below):
            raise ValueError
        return value

    return Rule(f"a number from {minimum} to below {below}" if below is not None else f"a number, {minimum} or more", accept)


def auto_or(rule: Rule) -> Rule:
    """`auto` (chosen for the machine when training starts) or what `rule` allows."""
    return Rule(f"auto or {rule.allowed}", lambda value: "auto" if value == "auto" else rule.accept(value))


def flag() -> Rule:
    return one_of(True, False)


def one_of(*options) -> Rule:
    def accept(value):
        if not any(type(value) is type(option) and value == option for option in options):
            raise ValueError
        return value

    names = [shown(option) for option in options]
    return Rule(f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0], accept)


def text(optional: bool = False) -> Rule:
    def accept(value):
        if not isinstance(value, str) or not value.strip():
            raise ValueError
        return value

    return Rule("a name or path (text)", accept, optional)


def shown(value) -> str:
    """A value as the user would type it after `--set key=`."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return str(value)


def rules() -> dict:
    """One rule per key of experiments/base.yaml; a key without one fails tests/test_config.py."""
    from replication import cyclegan, data, layers, losses, machine, models

    return {
        "data.source": one_of("tfds", "folder", "cityscapes", "synthetic", "pix2pix", "paired"),
        "data.name": text(),
        "data.root": text(optional=True),
        "data.data_dir": text(optional=True),
        "data.preprocess": one_of(*data.MODES),
        "data.load_size": whole(1),
        "data.crop_size": whole(1),
        "data.resize_method": one_of(*data.RESIZE_METHODS),
        "data.flip": flag(),
        "data.batch_size": whole(1),
        "data.cache": flag(),
        "data.skip_bad_images": flag(),
        "data.seed": whole(0),
        "data.direction": one_of("AtoB", "BtoA"),
        "data.download_url": text(optional=True),
        "data.download_sha256": text(optional=True),
        "model.type": one_of(*models.MODELS),
        "model.generator": one_of("resnet", "unet"),
        "model.n_blocks": whole(0),
        "model.ngf": whole(1),
        "model.upsample": one_of("transpose", "resize_conv"),
        "model.num_downs": whole(5),
        "model.generator_norm": one_of(*layers.NORMS),
        "model.discriminator": one_of("patchgan", "pixel"),
        "model.n_layers_d": whole(1),
        "model.discriminator_norm": one_of(*layers.NORMS),
        "model.ndf": whole(1),
        "loss.gan_mode": one_of(*losses.GAN_MODES),
        "loss.lambda_cycle": number(0),
        "loss.lambda_identity": number(0),
        "loss.gan": flag(),
        "loss.cycle": one_of(*cyclegan.CYCLES),
        "loss.lambda_L1": number(0),
        "train.epochs": whole(0),
        "train.epochs_decay": whole(0),
        "train.lr": number(0),
        "train.beta_1": number(0, below=1),
        "train.beta_2": number(0, below=1),
        "train.pool_size": whole(0),
        "train.precision": one_of(*machine.PRECISIONS),
        "train.conv_gradients": one_of(*machine.CONV_GRADIENTS),
        "train.jit_compile": one_of("auto", True, False),
        "train.steps_per_call": whole(1),
        "train.threads_per_op": auto_or(whole(0)),
        "train.eval_every": whole(0),
        "train.strategy": one_of("default", "mirrored", "multi_worker"),
        "train.log_every": whole(1),
        "train.save_epoch_freq": whole(0),
        "train.n_samples": whole(1),
        "train.max_steps_per_epoch": whole(1, optional=True),
        "train.seed": whole(0),
    }


def validate(config: dict, base: dict) -> dict:
    """Check every value once, against its rule and the few rules that join two keys."""
    table = rules()
    for section, keys in base.items():
        if isinstance(keys, dict) and not isinstance(config.get(section), dict):
            raise ConfigError(
                f"{section}={shown(config.get(section))} is not allowed: {section} must be a section of keys, as "
                f"in experiments/base.yaml; set one of them with --set {section}.{next(iter(keys))}=VALUE."
            )
    for section, keys in config.items():
        for key, value in (keys.items() if isinstance(keys, dict) else []):
            rule = table.get(f"{section}.{key}")
            if rule is not None:
                keys[key] = rule.check(f"{section}.{key}", value)
    train = config["train"]
    if train["epochs"] + train["epochs_decay"] < 1:
        raise ConfigError(
            f"train.epochs={train['epochs']} and train.epochs_decay={train['epochs_decay']} leave nothing "
            "to train: together they must be 1 or more."
        )
    check_crop_fits_generator(config)
    return config


def check_crop_fits_generator(config: dict) -> None:
    """Training images are crop_size x crop_size; say so now if the generator cannot take them."""
    from replication.errors import ImageSizeError
    from replication.layers import check_image_size
    from replication.networks import generator_input_rule

    model, crop = config["model"], config["data"]["crop_size"]
    multiple, minimum = generator_input_rule(model["generator"], model["num_downs"])
    try:
        check_image_size(crop, crop, multiple, minimum)
    except ImageSizeError as err:
        raise ConfigError(f"data.crop_size={crop} does not fit model.generator={model['generator']}: {err}") from None


def save(config: dict, path: str | os.PathLike) -> None:
    """Write the resolved config atomically (a crash never leaves half a file)."""
    from replication.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config, sort_keys=False))


def load(path: str | os.PathLike) -> dict:
    """A saved config (a run's config.yaml), with old key names read as the new ones."""
    return rename_old_keys(yaml.safe_load(Path(path).read_text()), str(path))

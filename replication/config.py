"""Experiments are plain data: one YAML file per run in `experiments/`.

A file may name another with `extends:`; its keys override the other's. A
name (`extends: horse2zebra`) is the NAME.yaml beside the file, else the kit's
experiments/NAME.yaml; a path (`extends: mine.yaml`) is read from the file's folder.
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

from replication import choices
from replication.errors import ConfigError, ImageSizeError
from replication.files import atomic_write_text

# The kit's own experiments: the repository's experiments/ folder (the kit is installed editable).
EXPERIMENTS_DIR = Path(__file__).resolve().parent.parent / "experiments"
BASE = "base"
YAML_SUFFIXES = (".yaml", ".yml")

# Old key -> (new key, how each old value reads now); other values pass through unchanged.
RENAMED = {
    "train.mixed_precision": ("train.precision", {"auto": "auto", True: "mixed_float16", False: "float32"}),
}


# Keys added since an earlier version -> the value a run saved without them trained with.
ADDED = {
    "model.dropout": lambda model: 0.5 if model.get("generator") == "unet" else 0.0,  # the U-Net always had it
}


def add_missing_keys(config: dict) -> dict:
    """A saved config from before a key of `ADDED` existed, with that key as the run trained."""
    for dotted, value_then in ADDED.items():
        section, key = dotted.split(".")
        if isinstance(config.get(section), dict) and key not in config[section]:
            config[section][key] = value_then(config[section])
    return config


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
    """An experiment name (`horse2zebra`, from the kit's experiments/) or a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in YAML_SUFFIXES:
        if path.is_file():
            return path
        raise ConfigError(f"No experiment file {path.absolute()}. {known_experiments(experiments_dir)}")
    candidate = Path(experiments_dir) / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    raise ConfigError(
        f"No experiment '{name_or_path}': expected {candidate} or a path to a .yaml file. "
        f"{known_experiments(experiments_dir)}"
    )


def known_experiments(experiments_dir: Path = EXPERIMENTS_DIR) -> str:
    names = experiment_names(experiments_dir, with_base=True)
    if not names:
        return (f"The kit's experiments folder {experiments_dir} is missing or empty: install the kit from its "
                "repository (make install, or pip install -e .).")
    return f"Known experiments: {', '.join(names)}."


def experiment_names(experiments_dir: Path = EXPERIMENTS_DIR, with_base: bool = False) -> list[str]:
    """The experiments of a folder, by name; `base` (the defaults every one extends) only if asked."""
    names = sorted(p.stem for p in Path(experiments_dir).glob("*.yaml"))
    return names if with_base else [name for name in names if name != BASE]


def parent_path(parent, child: Path, experiments_dir: Path = EXPERIMENTS_DIR) -> Path:
    """The file `extends: parent` in `child` names: a .yaml path is read from child's folder; a
    name is child's sibling NAME.yaml, or else the kit's experiments/NAME.yaml."""
    if not isinstance(parent, str) or not parent.strip():
        raise ConfigError(f"{child}: extends: {as_typed(parent)} must name an experiment (e.g. extends: base).")
    named = Path(parent)
    if named.suffix in YAML_SUFFIXES:
        candidates = [child.parent / named]
    else:
        candidates = [child.parent / f"{parent}.yaml", Path(experiments_dir) / f"{parent}.yaml"]
    candidates = list(dict.fromkeys(c.absolute() for c in candidates))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{child} extends '{parent}', but there is no {' nor '.join(map(str, candidates))}.")


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a key given twice in one mapping (plain YAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        first_lines = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in first_lines:
                raise DuplicateKey(f"{key} is given twice, on line {first_lines[key]} and line {line}; keep one of them")
            first_lines.setdefault(key, line)
        return super().construct_mapping(node, deep)


class DuplicateKey(yaml.YAMLError):
    pass


def read_yaml(text: str, where: str, fix: str = "fix it"):
    """`text` read as YAML (the kit's one reader of the YAML users write or may edit): a key given
    twice in one mapping, or text that is not YAML, ends in one ConfigError naming `where`."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)
    except DuplicateKey as err:
        raise ConfigError(f"{where}: {err}.") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{where} is not valid YAML ({yaml_problem(err)}); {fix}.") from None


def yaml_problem(err: yaml.YAMLError) -> str:
    """What YAML's error says is wrong and on which line, in a few words."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{problem}, line {mark.line + 1}" if mark is not None else problem


def load_chain(name_or_path, experiments_dir: Path = EXPERIMENTS_DIR) -> dict:
    """The experiment merged over everything it `extends`, without overrides."""
    seen = []
    path = experiment_path(name_or_path, experiments_dir)
    layers = []
    while True:
        if path.resolve() in seen:
            raise ConfigError(f"{path}: `extends` forms a loop through {', '.join(map(str, seen))}.")
        seen.append(path.resolve())
        data = read_yaml(path.read_text(), str(path)) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of sections, not {type(data).__name__}.")
        parent = data.pop("extends", None)
        layers.append(rename_old_keys(data, str(path)))
        if parent is None:
            break
        path = parent_path(parent, path, experiments_dir)
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
        value = yaml.load(raw, Loader=UniqueKeyLoader) if raw.strip() else None
    except DuplicateKey as err:
        raise ConfigError(f"--set {text}: {err}.") from None
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
        if depth == len(keys) - 1 and isinstance(value, dict) and isinstance(node[key], dict):
            for inner, inner_value in value.items():  # `--set data={root: D}`: these keys of the section
                apply_override(config, [*keys, str(inner)], inner_value)
        elif depth == len(keys) - 1:
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
    """The full configuration of one run: base, the experiment chain, then overrides; every value checked."""
    base = load_chain(BASE, experiments_dir)
    path = experiment_path(name_or_path, experiments_dir)
    config = load_chain(path, experiments_dir)
    check_known_keys(config, base)
    config = deep_merge(base, config)
    for text in overrides:
        apply_override(config, *parse_override(text))
    config.setdefault("name", path.stem)
    return validate(config, base)


PATH_KEYS = ("root", "data_dir")  # the data: keys that name folders


def with_absolute_paths(config: dict) -> tuple[dict, dict]:
    """The config with a relative data.root and data.data_dir made absolute (from the current folder), so
    that the run's saved configuration works from any folder; and {key: (as given, absolute)} of those changed."""
    config = copy.deepcopy(config)
    changed = {}
    for key in PATH_KEYS:
        given = config["data"].get(key)
        if given is not None:
            config["data"][key] = os.path.abspath(os.path.expanduser(given))
            if config["data"][key] != given:
                changed[f"data.{key}"] = (given, config["data"][key])
    return config, changed


def data_section(**keys) -> dict:
    """base.yaml's `data:` section with `keys` set, checked as `resolve` checks it: a dataset without a model."""
    config = {"data": load_chain(BASE)["data"]}
    for key, value in keys.items():
        apply_override(config, ["data", key], value)
    data = check_section("data", config["data"])
    check_crop_fits_load_size(data)
    return data


# ---------------------------------------------------------------- what each key may hold


@dataclass(frozen=True)
class Rule:
    """What one key may hold: `allowed`, in words, and `accept(value)`, which returns
    the value to keep (YAML reads `2e-4` as text; it is kept as the number) or
    raises ValueError."""

    allowed: str
    accept: Callable
    optional: bool = False
    options: tuple = ()  # one_of's values

    def check(self, key: str, value):
        if value is None and self.optional:
            return None
        try:
            return self.accept(value)
        except (ValueError, TypeError):
            allowed = f"{self.allowed}, or null" if self.optional else self.allowed
            raise ConfigError(f"{key}={as_typed(value)} is not allowed: {key} must be {allowed}.") from None


def whole_number(minimum: int = 0, optional: bool = False) -> Rule:
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
    """`auto` (chosen for the machine when training starts, or the model's default) or what `rule` allows."""
    return Rule(f"auto or {rule.allowed}", lambda value: "auto" if value == "auto" else rule.accept(value))


def flag() -> Rule:
    return one_of(True, False)


def one_of(*options) -> Rule:
    def accept(value):
        if not any(type(value) is type(option) and value == option for option in options):
            raise ValueError
        return value

    names = [as_typed(option) for option in options]
    return Rule(f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0], accept, options=options)


def text(optional: bool = False) -> Rule:
    def accept(value):
        value = os.fspath(value) if isinstance(value, os.PathLike) else value
        if not isinstance(value, str) or not value.strip():
            raise ValueError
        return value

    return Rule("a name or path (text)", accept, optional)


def as_typed(value) -> str:
    """A value as the user would type it after `--set key=`."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return str(value)


def rules() -> dict:
    """One rule per key of experiments/base.yaml; a key without one fails tests/test_config.py."""
    return {
        "data.source": one_of(*choices.SOURCES),
        "data.name": text(),
        "data.root": text(optional=True),
        "data.data_dir": text(optional=True),
        "data.preprocess": one_of(*choices.PREPROCESS_MODES),
        "data.load_size": whole_number(1),
        "data.crop_size": whole_number(1),
        "data.resize_method": one_of(*choices.RESIZE_METHODS),
        "data.flip": flag(),
        "data.batch_size": whole_number(1),
        "data.cache": flag(),
        "data.skip_bad_images": flag(),
        "data.seed": whole_number(0),
        "data.direction": one_of(*choices.DIRECTIONS),
        "data.download_url": text(optional=True),
        "data.download_sha256": text(optional=True),
        "model.type": one_of(*choices.MODELS),
        "model.generator": one_of(*choices.GENERATORS),
        "model.n_blocks": whole_number(0),
        "model.ngf": whole_number(1),
        "model.upsample": one_of(*choices.UPSAMPLES),
        "model.num_downs": whole_number(5),
        "model.generator_norm": one_of(*choices.NORMS),
        "model.dropout": auto_or(number(0, below=1)),
        "model.discriminator": one_of(*choices.DISCRIMINATORS),
        "model.n_layers_d": whole_number(1),
        "model.discriminator_norm": one_of(*choices.NORMS),
        "model.ndf": whole_number(1),
        "loss.gan_mode": one_of(*choices.GAN_MODES),
        "loss.lambda_cycle": number(0),
        "loss.lambda_identity": number(0),
        "loss.gan": flag(),
        "loss.cycle": one_of(*choices.CYCLES),
        "loss.lambda_L1": number(0),
        "train.epochs": whole_number(0),
        "train.epochs_decay": whole_number(0),
        "train.lr": number(0),
        "train.beta_1": number(0, below=1),
        "train.beta_2": number(0, below=1),
        "train.epsilon": number(1e-12),
        "train.pool_size": whole_number(0),
        "train.precision": one_of(*choices.PRECISIONS),
        "train.conv_gradients": one_of(*choices.CONV_GRADIENTS),
        "train.jit_compile": one_of("auto", True, False),
        "train.steps_per_call": whole_number(1),
        "train.threads_per_op": auto_or(whole_number(0)),
        "train.eval_every": whole_number(0),
        "train.strategy": one_of(*choices.STRATEGIES),
        "train.worker_start_timeout": whole_number(1),
        "train.log_every": whole_number(1),
        "train.save_epoch_freq": whole_number(0),
        "train.n_samples": whole_number(1),
        "train.max_steps_per_epoch": whole_number(1, optional=True),
        "train.seed": whole_number(0),
    }


def validate(config: dict, base: dict) -> dict:
    """Check every value once, against its rule and the few rules that join several keys."""
    for section, keys in base.items():
        if isinstance(keys, dict) and not isinstance(config.get(section), dict):
            raise ConfigError(
                f"{section}={as_typed(config.get(section))} is not allowed: {section} must be a section of keys, as "
                f"in experiments/base.yaml; set one of them with --set {section}.{next(iter(keys))}=VALUE."
            )
    for section, keys in config.items():
        if isinstance(keys, dict):
            check_section(section, keys)
    train = config["train"]
    if train["epochs"] + train["epochs_decay"] < 1:
        raise ConfigError(
            f"train.epochs={train['epochs']} and train.epochs_decay={train['epochs_decay']} leave nothing "
            "to train: together they must be 1 or more."
        )
    check_crop_fits_load_size(config["data"])
    check_crop_fits_generator(config)
    check_objective(config)
    choose_dropout(config["model"])
    return config


def choose_dropout(model: dict) -> None:
    """model.dropout auto becomes the model's default (its row's `dropout`), so the saved config says it."""
    if model["dropout"] == "auto":
        model["dropout"] = choices.MODELS[model["type"]].dropout


def check_section(section: str, keys: dict) -> dict:
    """Each value of one section checked against its rule (and kept as the rule reads it)."""
    table = rules()
    for key, value in keys.items():
        rule = table.get(f"{section}.{key}")
        if rule is not None:
            keys[key] = rule.check(f"{section}.{key}", value)
    return keys


def check_crop_fits_load_size(data: dict) -> None:
    if data["preprocess"] in choices.RESIZE_THEN_CROP and data["load_size"] < data["crop_size"]:
        raise ConfigError(
            f"data.load_size={data['load_size']} is smaller than data.crop_size={data['crop_size']}: preprocess "
            f"{data['preprocess']} resizes to load_size and then crops crop_size, so load_size must be at least crop_size."
        )


def check_crop_fits_generator(config: dict) -> None:
    """Training images are crop_size x crop_size; say so now if the generator cannot take them."""
    model, crop = config["model"], config["data"]["crop_size"]
    multiple, minimum = choices.generator_input_rule(model["generator"], model["num_downs"])
    try:
        choices.check_image_size(crop, crop, multiple, minimum)
    except ImageSizeError as err:
        raise ConfigError(f"data.crop_size={crop} does not fit model.generator={model['generator']}: {err}") from None


def check_objective(config: dict) -> None:
    """The rule of the model's own row that joins several of its keys (CycleGAN's: a term of its objective remains)."""
    choices.MODELS[config["model"]["type"]].check(config["loss"])


def save(config: dict, path: str | os.PathLike) -> None:
    """Write the resolved config atomically (a crash never leaves half a file)."""
    atomic_write_text(path, yaml.safe_dump(config, sort_keys=False))


def load(path: str | os.PathLike) -> dict:
    """A saved config (a run's config.yaml), with old key names read as the new ones, checked as
    `resolve` checks a new one: a hand-edited value ends in one line that names the file."""
    path = Path(path)
    where = f"{path} (the run's configuration, saved when it started)"
    config = read_yaml(path.read_text(), where, fix="restore it")
    if not isinstance(config, dict):
        raise ConfigError(f"{where} must hold a mapping of sections; restore it.")
    config = add_missing_keys(rename_old_keys(config, str(path)))
    try:
        return validate(config, load_chain(BASE))
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    except (KeyError, TypeError) as err:
        raise ConfigError(f"{where} lacks a key or section the kit needs ({err}); restore it.") from None

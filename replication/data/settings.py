"""The `data:` section of a run's config, checked before any image is read.

Its defaults live in experiments/base.yaml and are applied by
`config.resolve` alone: the data functions take the resolved section as it is.
"""

from __future__ import annotations

from replication import config
from replication.data.transforms import MODES, RESIZE_METHODS
from replication.errors import ConfigError


def resolved(**keys) -> dict:
    """base.yaml's `data:` section, resolved by `config.resolve`, with `keys` set (unknown keys are refused)."""
    cfg = config.resolve(config.BASE)
    for key, value in keys.items():
        config.apply_override(cfg, ["data", key], value)
    return cfg["data"]


def checked(data_cfg: dict) -> dict:
    """A copy of the resolved `data:` section with every value checked (flags as bools, the seed as an int)."""
    cfg = dict(data_cfg)
    if cfg["preprocess"] not in MODES:
        raise ConfigError(f"data.preprocess is '{cfg['preprocess']}'; choose one of {', '.join(MODES)}.")
    if cfg["resize_method"] not in RESIZE_METHODS:
        raise ConfigError(
            f"data.resize_method is '{cfg['resize_method']}'; choose one of {', '.join(RESIZE_METHODS)}."
        )
    for key in ("load_size", "crop_size", "batch_size"):
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"data.{key} must be a positive whole number, got {value!r}.")
    if cfg["preprocess"] in ("resize_and_crop", "scale_width", "scale_width_and_crop"):
        if cfg["load_size"] < cfg["crop_size"]:
            raise ConfigError(
                f"data.load_size ({cfg['load_size']}) is smaller than data.crop_size ({cfg['crop_size']}); "
                f"preprocess '{cfg['preprocess']}' resizes to load_size and then crops crop_size, "
                "so load_size must be >= crop_size."
            )
    if cfg["direction"] not in ("AtoB", "BtoA"):
        raise ConfigError(f"data.direction is '{cfg['direction']}'; choose AtoB or BtoA.")
    try:
        cfg["seed"] = int(cfg["seed"])
    except (TypeError, ValueError):
        raise ConfigError(f"data.seed must be a whole number, got {cfg['seed']!r}.") from None
    for key in ("flip", "cache", "skip_bad_images"):
        cfg[key] = bool(cfg[key])
    return cfg

"""What `replication data synthetic | check | download` do (their flags are defined in replication/cli.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from replication import config
from replication.data import sources
from replication.data.check import check
from replication.data.synthetic import write_synthetic
from replication.errors import ConfigError, DataError
from replication.figures.synthetic import draw_pairs


def run_synthetic(args: argparse.Namespace) -> int:
    out = write_synthetic(args.out_dir, seed=args.seed, size=args.size, n_train=args.n_train, n_test=args.n_test)
    print(
        f"wrote the synthetic dataset (seed {args.seed}, {args.size}x{args.size}, {args.n_train} train and "
        f"{args.n_test} test images per domain, ground truth in *_truth/) to {Path(out).absolute()}"
    )
    if args.figure:
        print(f"drew {Path(draw_pairs(args.figure, seed=args.seed, size=args.size)).absolute()}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    report = check(args.path, crop_size=args.crop_size, multiple=args.multiple)
    print(report)
    return 0 if report.ok else 1


def data_config_for(target: str, data_dir=None) -> dict:
    """The `data:` section `data download TARGET` fetches: an experiment's, or base.yaml's for a dataset name."""
    try:
        config.experiment_path(target)
    except ConfigError:
        keys = sources.dataset_keys(target.strip())
        if keys is None:
            raise DataError(
                f"'{target}' is neither an experiment (experiments/{target}.yaml) nor a dataset name. "
                f"Datasets: {sources.dataset_names()}."
            ) from None
        cfg = config.data_section(**keys)
    else:
        cfg = config.resolve(target)["data"]
    if data_dir:
        cfg["data_dir"] = data_dir
    return cfg


def run_download(args: argparse.Namespace) -> int:
    print(sources.download(data_config_for(args.target, args.data_dir)))
    return 0

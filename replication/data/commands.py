"""`python -m replication data ...`: synthetic, check, download."""

from __future__ import annotations

import argparse

from replication import config
from replication.data import settings, sources
from replication.data.check import check
from replication.data.synthetic import draw_pairs, write_synthetic
from replication.errors import ConfigError, DataError


def add_commands(subparsers) -> None:
    """Add the `data` command (with its sub-commands) to the CLI's sub-parsers."""
    data = subparsers.add_parser("data", help="write, check or download datasets")
    sub = data.add_subparsers(dest="data_command", required=True)

    p = sub.add_parser("synthetic", help="write the embedded synthetic dataset (seconds, offline)")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    p.add_argument("--train", type=int, default=200, dest="n_train", help="training images per domain (default 200)")
    p.add_argument("--test", type=int, default=20, dest="n_test", help="test images per domain (default 20)")
    p.add_argument("--figure", metavar="PNG", default=None, help="also draw six test scenes of each domain above their truth to PNG")
    p.set_defaults(run=run_synthetic)

    p = sub.add_parser("check", help="check a dataset folder and print a report (exit 1 on problems)")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--crop-size", type=int, default=None, help="also flag images smaller than this (preprocess 'crop')")
    p.add_argument("--multiple", type=int, default=4, help="smallest side the network takes (default 4)")
    p.set_defaults(run=run_check)

    p = sub.add_parser(
        "download",
        help="fetch and prepare a dataset: an experiment name/file, a TFDS cycle_gan name, cityscapes, or pix2pix/<name>",
    )
    p.add_argument("target", metavar="EXPERIMENT_OR_NAME")
    p.add_argument("--data-dir", default=None, help="where to keep the files (default: the experiment's data.data_dir)")
    p.set_defaults(run=run_download)


def run_synthetic(args: argparse.Namespace) -> int:
    out = write_synthetic(args.out_dir, seed=args.seed, size=args.size, n_train=args.n_train, n_test=args.n_test)
    print(
        f"wrote the synthetic dataset (seed {args.seed}, {args.size}x{args.size}, {args.n_train} train and "
        f"{args.n_test} test images per domain, ground truth in *_truth/) to {out}"
    )
    if args.figure:
        print(f"drew {draw_pairs(args.figure, seed=args.seed, size=args.size)}")
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
        cfg = settings.resolved(**keys)
    else:
        cfg = config.resolve(target)["data"]
    if data_dir:
        cfg["data_dir"] = data_dir
    return cfg


def run_download(args: argparse.Namespace) -> int:
    print(sources.download(data_config_for(args.target, args.data_dir)))
    return 0

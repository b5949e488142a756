"""What `replication train` does (its flags are defined in replication/cli.py): the configuration and
flags checked before TensorFlow starts, then the training, on one machine or several."""

from __future__ import annotations

import sys
from pathlib import Path

from replication import cluster
from replication import config as config_lib
from replication.commands.start import start_tensorflow
from replication.data import sources
from replication.errors import KitError


def train_config(args) -> dict:
    """The configuration `train` runs, with its flags checked: what can be known before TensorFlow starts."""
    overrides = [*args.overrides, "train.strategy=multi_worker"] if args.workers is not None else args.overrides
    config = config_lib.resolve(args.experiment, overrides)
    if args.until_step is not None:
        config_lib.whole_number(1).check("--until-step", args.until_step)
    batch = config["data"]["batch_size"]
    if args.workers and batch % args.workers:
        fitting = -(-batch // args.workers) * args.workers
        raise KitError(f"--workers {args.workers} needs data.batch_size to be a multiple of {args.workers}, the workers "
                       f"(it is {batch}): each worker reads its share of every batch. Add --set data.batch_size={fitting}.")
    return config


def run_train(args) -> int:
    config = train_config(args)
    sources.source_of(config["data"]).check_present(config["data"])
    run_dir = Path(args.run_dir or Path("runs", config["name"])).absolute()
    if run_dir.exists() and not run_dir.is_dir():
        raise KitError(f"--run-dir {run_dir} is a file, not a run folder; give a folder (train creates it if missing).")
    given = any(text.split("=", 1)[0].strip() == "data.root" for text in args.overrides)  # a --set root must exist
    written = None if given else sources.write_missing_synthetic(config["data"])  # once, before any worker starts
    if written:
        print(written)
    launched = cluster.train_command(args, args.argv)
    if launched is not None:
        return launched
    start_tensorflow(args)
    from replication.training import train  # TensorFlow: only after the checks and start_tensorflow

    try:
        path = train(config, run_dir=run_dir, fresh=args.fresh, until_step=args.until_step, accept_new_data=args.accept_new_data)
    except KeyboardInterrupt as stop:  # Ctrl-C (130) or SIGTERM (143), after a checkpoint
        print("interrupted. Run the same command to resume from the latest checkpoint.", file=sys.stderr)
        return getattr(stop, "exit_status", 130)
    print(f"run folder: {path}  (losses.csv, samples/, checkpoints/, export/, run.log)")
    return 0

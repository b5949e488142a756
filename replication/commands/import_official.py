"""What `replication import` does (its flags are defined in replication/cli.py): the official code's
.pth files, or an official model by name, as a run folder (replication/pretrained.py)."""

from __future__ import annotations

from pathlib import Path

from replication import config as config_lib
from replication import pretrained
from replication.commands.start import start_tensorflow
from replication.errors import KitError


def run_import(args) -> int:
    if args.experiment:
        config_lib.experiment_path(args.experiment)  # a wrong name answers before TensorFlow starts
    pretrained.check_inputs(args.items, args.url)
    run_dir = args.run_dir
    if run_dir is None:
        named = [item for item in args.items if item in pretrained.OFFICIAL_MODELS and not Path(item).is_file()]
        if len(named) != 1 or len(args.items) != 1:
            raise KitError("Say where the run goes: replication import FILE.pth ... --run-dir runs/NAME.")
        run_dir = Path("runs", "official_" + named[0].replace("/", "_"))
    start_tensorflow(args)
    path, plan = pretrained.import_official(args.items, run_dir, args.experiment, args.direction, args.data_dir, args.url)
    for source in plan.sources:
        print(f"{source.path}: {source.arch.described} (SHA-256 {source.sha256})")
    directions = ", ".join(d.replace("to", "->") for d in plan.generators)
    data = plan.config["data"]
    print(f"run folder: {path}  ({plan.config['model']['type']}, {directions}; evaluate scores it on {data['source']} "
          f"{data['name']}). Next: replication translate {path} --input DIR --output DIR")
    return 0

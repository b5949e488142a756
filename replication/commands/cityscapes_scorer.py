"""What `replication cityscapes-scorer` does (its flags are defined in replication/cli.py); the scorer
is replication/scorer.py."""

from __future__ import annotations

from replication import config as config_lib
from replication.commands.start import start_tensorflow


def run_cityscapes_scorer(args) -> int:
    config = config_lib.resolve(args.experiment, args.overrides)
    start_tensorflow(args)
    from replication import scorer  # TensorFlow: only after the checks and start_tensorflow

    note = scorer.train(config["data"], args.epochs, args.size, args.batch_size, args.steps_per_epoch)
    ceiling = ", ".join(f"{k} {v:.3f}" for k, v in note["ceiling"].items())
    print(f"scorer saved in {scorer.location(config['data']).absolute()}; on the real test photos: {ceiling}")
    return 0

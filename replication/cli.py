"""Command line: `python -m replication COMMAND ...`.

  train EXPERIMENT [--set section.key=value ...] [--fresh] [--run-dir DIR] [--until-step N]
  translate (--run RUN_DIR | --model FILE.keras) --input DIR --output DIR [--direction AtoB|BtoA]
  figures [RUN_DIR ...] [--smoothing 0.99] [--epochs E ...] [--test-images 8] [--figures-dir figures] [--force]
  figures --compare RUN_A RUN_B ... [--labels LABEL ...]
  evaluate RUN_DIR [--metrics truth cityscapes fid dloss] [--inception-weights PATH]
  cityscapes-scorer [EXPERIMENT] [--epochs N] [--size N] [--batch-size N] [--set section.key=value ...]
  data synthetic OUT_DIR [--seed N] [--size 64]
  data check PATH
  data download EXPERIMENT

A mistake the user can fix (a `KitError`) ends in one line on stderr and exit
status 2, never a traceback. A training stopped by Ctrl-C exits with 130, by
SIGTERM with 143, after saving a checkpoint.
"""

from __future__ import annotations

import argparse
import sys

from replication.errors import KitError


def add_train(commands) -> None:
    parser = commands.add_parser("train", help="train (or resume) an experiment from experiments/")
    parser.add_argument("experiment", help="a name in experiments/ (horse2zebra, demo, ...) or a .yaml path")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.epochs=5 (repeatable)")
    parser.add_argument("--run-dir", help="where the run lives (default runs/<experiment>)")
    parser.add_argument("--fresh", action="store_true", help="start over; the old run is moved aside, not deleted")
    parser.add_argument("--until-step", type=int, help="stop with a checkpoint after this many steps")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="train on N workers (train.strategy=multi_worker): N local processes, or with "
                             "TF_CONFIG/Slurm set, check that the cluster has N")
    parser.set_defaults(run=run_train)


def run_train(args) -> int:
    from replication import cluster
    from replication import config as config_lib
    from replication.training import train

    if args.workers is not None:
        args.overrides.append("train.strategy=multi_worker")
    config = config_lib.resolve(args.experiment, args.overrides)
    launched = cluster.train_command(args, args.argv)
    if launched is not None:
        return launched
    try:
        path = train(config, run_dir=args.run_dir, fresh=args.fresh, until_step=args.until_step)
    except KeyboardInterrupt as stop:  # Ctrl-C (130) or SIGTERM (143), after a checkpoint
        print("interrupted. Run the same command to resume from the latest checkpoint.", file=sys.stderr)
        return getattr(stop, "exit_status", 130)
    print(f"run folder: {path}  (losses.csv, samples/, checkpoints/, export/, run.log)")
    return 0


def add_translate(commands) -> None:
    parser = commands.add_parser("translate", help="translate a folder of images with a trained generator")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", dest="run_dir", help="a run folder written by train")
    source.add_argument("--model", help="a generator .keras file")
    parser.add_argument("--input", required=True, help="folder of images")
    parser.add_argument("--output", required=True, help="folder for the translated images (same names)")
    parser.add_argument("--direction", choices=["AtoB", "BtoA"],
                        help="default: AtoB for --run; for --model, the direction its export manifest names")
    parser.set_defaults(run=run_translate)


def run_translate(args) -> int:
    from replication.translate import load_translator, translate_folder

    translator = load_translator(args.run_dir, args.model, args.direction)
    written = translate_folder(translator, args.input, args.output)
    print(f"translated {len(written)} images into {args.output}")
    return 0


def add_figures(commands) -> None:
    parser = commands.add_parser("figures", help="loss curves, progression, test results and a results page for runs")
    parser.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="run folders (default: every folder under runs/)")
    parser.add_argument("--smoothing", type=float, default=0.99, help="moving-average weight of the loss curves, 0 <= s < 1 (default 0.99)")
    parser.add_argument("--epochs", type=int, nargs="+", help="the progression's epochs (default 1 25 75 100 200 where present, else a spread)")
    parser.add_argument("--test-images", type=int, default=8, help="test images per direction in test_results.png (default 8)")
    parser.add_argument("--figures-dir", default="figures", help="where figures go: FIGURES_DIR/<run name>/ (default figures)")
    parser.add_argument("--force", action="store_true", help="redraw everything, even what is up to date")
    parser.add_argument("--compare", nargs="+", metavar="RUN", help="translate the same test images with each run, side by side")
    parser.add_argument("--labels", nargs="+", help="with --compare: one column label per run (default the folder names)")
    parser.set_defaults(run=run_figures)


def run_figures(args) -> int:
    from pathlib import Path

    from replication.figures import draw

    if args.compare:
        paths = draw.draw_comparison(args.compare, args.labels, Path(args.figures_dir), args.test_images)
        print(f"comparison: {', '.join(map(str, paths))}")
        return 0
    options = draw.Options(args.smoothing, args.epochs, args.test_images, args.force)
    skipped = draw.draw_runs(args.run_dirs or draw.run_folders(), Path(args.figures_dir), options)
    print(f"all runs: {Path(args.figures_dir) / 'index.html'}")
    return 1 if skipped else 0


def add_evaluate(commands) -> None:
    parser = commands.add_parser("evaluate", help="score a run on its test split: RUN_DIR/eval/metrics.json and metrics.md")
    parser.add_argument("run_dir", help="a run folder written by train")
    parser.add_argument("--metrics", nargs="+", metavar="NAME",
                        help="truth (MAE/PSNR/SSIM), cityscapes (FCN-score tables), fid (FID and KID), "
                             "dloss (discriminator losses); default: every one the data allows")
    parser.add_argument("--inception-weights", metavar="PATH",
                        help="InceptionV3 weights file for FID/KID when offline "
                             "(inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5)")
    parser.set_defaults(run=run_evaluate)


def run_evaluate(args) -> int:
    from replication.evaluate import evaluate, markdown

    result = evaluate(args.run_dir, args.metrics, args.inception_weights)
    print(markdown(result))
    print(f"written: {args.run_dir}/eval/metrics.json, metrics.md; translations in {args.run_dir}/eval/<direction>/")
    return 0


def add_cityscapes_scorer(commands) -> None:
    parser = commands.add_parser("cityscapes-scorer", help="train the kit's Cityscapes scorer for labels->photo (GPU work)")
    parser.add_argument("experiment", nargs="?", default="cityscapes", help="whose data to use (default: cityscapes)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set data.root=DIR (repeatable)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--size", type=int, default=256, help="training images are resized to this (a multiple of 4)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps-per-epoch", type=int, help="cut epochs short (quick looks)")
    parser.set_defaults(run=run_cityscapes_scorer)


def run_cityscapes_scorer(args) -> int:
    from replication import config as config_lib
    from replication import scorer

    config = config_lib.resolve(args.experiment, args.overrides)
    note = scorer.train(config["data"], args.epochs, args.size, args.batch_size, args.steps_per_epoch)
    ceiling = ", ".join(f"{k} {v:.3f}" for k, v in note["ceiling"].items())
    print(f"scorer saved in {scorer.location(config['data'])}; on the real test photos: {ceiling}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m replication", description="CycleGAN replication kit")
    commands = parser.add_subparsers(dest="command", required=True)
    add_train(commands)
    add_translate(commands)
    add_figures(commands)
    add_evaluate(commands)
    add_cityscapes_scorer(commands)
    from replication.data import commands as data_commands

    data_commands.add_commands(commands)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return args.run(args) or 0
    except KitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

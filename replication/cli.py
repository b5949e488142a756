"""Command line: `replication COMMAND ...` (or `python -m replication COMMAND ...`).

  experiments
  train EXPERIMENT [--set section.key=value ...] [--fresh] [--accept-new-data] [--run-dir DIR] [--until-step N]
  translate (RUN | --model FILE.keras) --input FILE|DIR --output DIR [--direction AtoB|BtoA] [--format png|jpg]
  evaluate RUN [--metrics truth cityscapes fid dloss] [--inception-weights PATH]
  figures [RUN ...] [--smoothing S] [--epochs E ...] [--test-images 8] [--figures-dir figures] [--force]
  figures --compare RUN_A RUN_B ... [--labels LABEL ...]
  cityscapes-scorer [EXPERIMENT] [--epochs N] [--size N] [--batch-size N] [--set section.key=value ...]
  data synthetic OUT_DIR [--seed N] [--size 64]
  data check PATH
  data download EXPERIMENT
  import (FILE.pth ... | NAME) [--run-dir DIR] [--experiment NAME] [--direction AtoB|BtoA]

`--version` prints the kit's version; `--verbose` shows TensorFlow's own log lines.
A run folder is named the same way by every command: RUN, the folder `train` wrote
(`--run RUN` still reads, for older commands).

Flags, experiment names, configuration values, run folders (and whether they hold weights),
the data folder `data.root` names and translate's inputs and outputs are checked before
TensorFlow is imported, so such a mistake answers at once. Off a terminal (a pipe, a log
file), progress is written as whole lines, never redrawn over a message. A mistake the user can
fix (a `KitError`) ends in one line on stderr and exit status 2, never a traceback;
`translate` exits with 1 when it skipped inputs it could not read. A training stopped
by Ctrl-C exits with 130, by SIGTERM with 143, after saving a checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import replication
from replication import config as config_lib
from replication.choices import DIRECTIONS, MODELS, RESIZE_THEN_CROP, patchgan_receptive_field
# A command's module (replication/commands/) imports at its top only what loads at once; TensorFlow and
# the kit's heavy modules are imported inside its handler, after its checks, so that a mistake answers
# before TensorFlow starts (tests/test_cli.py runs such mistakes and checks that TensorFlow was not imported).
from replication.commands.cityscapes_scorer import run_cityscapes_scorer
from replication.commands.evaluate import run_evaluate
from replication.commands.figures import run_figures
from replication.commands.import_official import run_import
from replication.commands.start import start_tensorflow, tensorflow_log_level
from replication.commands.train import run_train
from replication.commands.translate import run_translate
from replication.data.check import checked_folder
from replication.errors import KitError
from replication.files import readable


# ---------------------------------------------------------------- flags several commands take


def add_run(parser, help_text: str, **positional) -> None:
    parser.add_argument("run_dir", metavar="RUN", help=help_text, **positional)
    parser.add_argument("--run", dest="run_flag", metavar="RUN", help=argparse.SUPPRESS)  # the older spelling


def add_overrides(parser, example: str) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config key, e.g. --set {example} (repeatable)")


# ---------------------------------------------------------------- experiments


def add_experiments(commands, common) -> None:
    parser = commands.add_parser("experiments", parents=[common],
                                 help="list the kit's experiments: what each trains, on what data, at what size")
    parser.set_defaults(run=run_experiments)


def run_experiments(args) -> int:
    rows = [("EXPERIMENT", "MODEL", "GENERATOR", "DISCRIMINATOR", "LOSS", "DATA", "SIZE", "EPOCHS")]
    problems = []
    for name in config_lib.experiment_names():
        try:
            rows.append((name, *describe(config_lib.resolve(name))))
        except KitError as err:
            problems.append(f"{name}: error: {err}")
    widths = [max(map(len, column)) for column in zip(*rows)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    for problem in problems:
        print(problem)
    print(f"(in {config_lib.EXPERIMENTS_DIR}; each extends base.yaml, the paper's defaults. "
          "Train one with: replication train NAME)")
    print(f"(a relative data folder is under the folder you run in, now {Path.cwd()}; train writes the "
          "synthetic dataset there when it is missing)")
    return 1 if problems else 0


def describe(config: dict) -> tuple[str, ...]:
    """What a resolved experiment trains, on what data, at what size, in words."""

    data, model, loss, train = config["data"], config["model"], config["loss"], config["train"]
    if model["generator"] == "unet":
        generator = f"U-Net-{2 ** model['num_downs']}"
    else:
        generator = f"ResNet-{model['n_blocks']}"
    if model["ngf"] != 64:
        generator += f" ngf {model['ngf']}"
    if model["upsample"] != "transpose":
        generator += f" {model['upsample']}"
    if model["discriminator"] == "pixel":
        discriminator = "PixelGAN 1x1"
    else:
        field = patchgan_receptive_field(model["n_layers_d"])
        discriminator = f"PatchGAN {field}x{field}"
    row = MODELS[model["type"]]
    where = replication.choices.describe_source(data)
    if row.data == "paired":
        where += f" {data['direction']}"
    size = f"{data['crop_size']}x{data['crop_size']}"
    if data["preprocess"] in RESIZE_THEN_CROP and data["load_size"] != data["crop_size"]:
        size += f" from {data['load_size']}"
    epochs = f"{train['epochs']}+{train['epochs_decay']}"
    return model["type"], generator, discriminator, " + ".join(row.terms(loss)), where, size, epochs


# ---------------------------------------------------------------- train


def add_train(commands, common) -> None:
    parser = commands.add_parser("train", parents=[common], help="train (or resume) an experiment")
    parser.add_argument("experiment", help="an experiment name (replication experiments lists them) or the path of your own .yaml file")
    add_overrides(parser, "train.epochs=5")
    parser.add_argument("--run-dir", metavar="DIR", help="where the run lives (default runs/EXPERIMENT in the current folder)")
    parser.add_argument("--fresh", action="store_true", help="start over; the old run is moved aside, not deleted")
    parser.add_argument("--until-step", type=int, metavar="N", help="stop with a checkpoint after this many steps (a later train resumes)")
    parser.add_argument("--accept-new-data", action="store_true",
                        help="resume although the data's files changed since the run last trained (said in run.log)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="train on N workers (train.strategy=multi_worker): N local processes, or with "
                             "TF_CONFIG/Slurm set, check that the cluster has N")
    parser.set_defaults(run=run_train)


# ---------------------------------------------------------------- translate


def add_translate(commands, common) -> None:
    parser = commands.add_parser("translate", parents=[common], help="translate an image or a folder of images with a trained generator")
    add_run(parser, "a run folder written by train (its exported generators, else its latest checkpoint)", nargs="?")
    parser.add_argument("--model", metavar="FILE.keras", help="a generator .keras file instead of a run folder")
    parser.add_argument("--input", required=True, metavar="FILE|DIR", help="an image file, or a folder of images (nested or not)")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="folder for the translations, same names and sizes as the inputs; never the inputs' folder")
    parser.add_argument("--direction", choices=DIRECTIONS,
                        help="default: AtoB for a run (a run of one direction: that one); for --model, the direction its export manifest names")
    parser.add_argument("--format", dest="image_format", choices=["png", "jpg"], default="png",
                        help="png: lossless, every output named .png (default); jpg: JPEG at quality 95")
    parser.set_defaults(run=run_translate)


# ---------------------------------------------------------------- figures


def add_figures(commands, common) -> None:
    parser = commands.add_parser("figures", parents=[common], help="loss curves, progression, test results and a results page for runs")
    parser.add_argument("run_dirs", nargs="*", metavar="RUN", help="run folders (default: every folder under runs/)")
    parser.add_argument("--run", dest="run_flags", action="append", default=[], metavar="RUN", help=argparse.SUPPRESS)
    parser.add_argument("--smoothing", type=float, help="TensorBoard's moving-average weight for the loss curves, 0 <= s < 1 "
                        "(default: forward and backward, weight 1 - 100/rows logged, at least 0.6, at most 0.99)")
    parser.add_argument("--epochs", type=int, nargs="+", help="the progression's epochs (default 1 25 75 100 200 where present, else a spread)")
    parser.add_argument("--test-images", type=int, default=8, help="test images per direction in test_results.png (default 8)")
    parser.add_argument("--figures-dir", default="figures", help="where figures go: FIGURES_DIR/<run name>/ (default figures, in the current folder)")
    parser.add_argument("--force", action="store_true", help="redraw everything, even what is up to date")
    parser.add_argument("--compare", nargs="+", metavar="RUN", help="translate the same test images with each run, side by side")
    parser.add_argument("--labels", nargs="+", help="with --compare: one column label per run (default the folder names)")
    parser.set_defaults(run=run_figures)


# ---------------------------------------------------------------- evaluate


def add_evaluate(commands, common) -> None:
    parser = commands.add_parser("evaluate", parents=[common], help="score a run on its test split: RUN/eval/metrics.json and metrics.md")
    add_run(parser, "a run folder written by train", nargs="?")
    parser.add_argument("--metrics", nargs="+", metavar="NAME",
                        help="truth (MAE/PSNR/SSIM), cityscapes (FCN-score tables), fid (FID and KID), "
                             "dloss (discriminator losses); default: every one the data allows")
    parser.add_argument("--inception-weights", metavar="PATH",
                        help="InceptionV3 weights file for FID/KID when offline "
                             "(inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5)")
    parser.set_defaults(run=run_evaluate)


# ---------------------------------------------------------------- cityscapes-scorer


def add_cityscapes_scorer(commands, common) -> None:
    parser = commands.add_parser("cityscapes-scorer", parents=[common], help="train the kit's Cityscapes scorer for labels->photo (GPU work)")
    parser.add_argument("experiment", nargs="?", default="cityscapes", help="whose data to use (default: cityscapes)")
    add_overrides(parser, "data.root=DIR")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs over the Cityscapes training photos (default 20)")
    parser.add_argument("--size", type=int, default=256, help="training images are resized to this (a multiple of 4; default 256)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per training batch (default 8)")
    parser.add_argument("--steps-per-epoch", type=int, help="cut epochs short (quick looks)")
    parser.set_defaults(run=run_cityscapes_scorer)


# ---------------------------------------------------------------- data


def add_data(commands, common) -> None:
    data = commands.add_parser("data", parents=[common], help="write, check or download datasets")
    sub = data.add_subparsers(dest="data_command", required=True, metavar="WHAT", help="one of these")

    p = sub.add_parser("synthetic", parents=[common], help="write the embedded synthetic dataset (seconds, offline)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="the folder to write (trainA/ trainB/ testA/ testB/ and their *_truth/)")
    p.add_argument("--seed", type=int, default=0, help="seed of the scenes drawn (default 0, the demo's)")
    p.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    p.add_argument("--train", type=int, default=200, dest="n_train", help="training images per domain (default 200)")
    p.add_argument("--test", type=int, default=20, dest="n_test", help="test images per domain (default 20)")
    p.add_argument("--figure", metavar="PNG", default=None, help="also draw six test scenes of each domain above their truth to PNG")
    p.set_defaults(run=lambda args: data_command("run_synthetic", args))

    p = sub.add_parser("check", parents=[common], help="check a dataset folder and print a report (exit 1 on problems)")
    p.add_argument("path", metavar="PATH", help="a dataset folder (trainA/ trainB/ testA/ testB/, or train/ test/)")
    p.add_argument("--crop-size", type=int, default=None, help="also flag images smaller than this (preprocess 'crop')")
    p.add_argument("--multiple", type=int, default=4, help="smallest side the network takes (default 4)")
    p.set_defaults(run=run_data_check)

    p = sub.add_parser(
        "download", parents=[common],
        help="fetch and prepare a dataset: an experiment name/file, a TFDS cycle_gan name, cityscapes, or pix2pix/<name>",
    )
    p.add_argument("target", metavar="EXPERIMENT_OR_NAME", help="horse2zebra, cityscapes, pix2pix/facades, an experiment, ...")
    p.add_argument("--data-dir", default=None, help="where to keep the files (default: the experiment's data.data_dir)")
    p.set_defaults(run=lambda args: data_command("run_download", args, tensorflow=True))


def run_data_check(args) -> int:
    checked_folder(args.path)  # before TensorFlow, which decodes the images
    return data_command("run_check", args, tensorflow=True)


def data_command(name: str, args, tensorflow: bool = False) -> int:
    if tensorflow:
        start_tensorflow(args)
    from replication.commands import data as data_commands  # matplotlib, which draws the synthetic pairs: only `data` needs it

    return getattr(data_commands, name)(args)


# ---------------------------------------------------------------- import


def add_import(commands, common) -> None:
    parser = commands.add_parser("import", parents=[common],
                                 help="the official PyTorch code's .pth generators (and discriminators) as a run folder")
    parser.add_argument("items", nargs="+", metavar="FILE.pth|NAME",
                        help="latest_net_G_A.pth latest_net_G_B.pth ... as the official code saves them, or the name of an "
                             "official pretrained model (horse2zebra, style_monet, pix2pix/facades_label2photo, ...) to download")
    parser.add_argument("--run-dir", metavar="DIR", help="the run folder to write (default runs/official_NAME for a name)")
    parser.add_argument("--experiment", help="the experiment the weights belong to, whose test split evaluate scores "
                                             "(default: the one the official model's name says)")
    parser.add_argument("--direction", choices=DIRECTIONS, help="which direction a single generator translates "
                                                                 "(default: read from its name, e.g. zebra2horse is BtoA)")
    parser.add_argument("--data-dir", default="data", help="where downloaded models are kept: DATA_DIR/official/ (default data)")
    parser.add_argument("--url", help=argparse.SUPPRESS)  # fetch the one named model from this address (tests, mirrors)
    parser.set_defaults(run=run_import)


# ---------------------------------------------------------------- the parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="replication", description="CycleGAN (and pix2pix) replication kit")
    parser.add_argument("--version", action="version", version=f"replication {replication.__version__}",
                        help="print the kit's version and exit")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines (hidden by default)")
    # --verbose also reads after the command (replication train demo --verbose)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show TensorFlow's own log lines (hidden by default)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     help="one of these; replication COMMAND -h shows its flags")
    for add in (add_experiments, add_train, add_evaluate, add_figures, add_translate, add_cityscapes_scorer, add_data, add_import):
        add(commands, common)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    tensorflow_log_level(args.verbose)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return args.run(args) or 0
    except KitError as err:
        print(f"error: {readable(str(err))}", file=sys.stderr)
        return 2

"""`python -m replication evaluate RUN_DIR`: a run's numbers beside the paper's.

The test split of both domains is translated once with the run's generators
and kept as PNG in RUN/eval/<direction>/ (the test files' names), so further
metrics read them instead of translating again. Then every metric the data
allows:

  truth       MAE, PSNR, SSIM against each test image's true counterpart, beside
              the identity baseline (the input itself): the synthetic set, folders
              with <split>_truth/, paired datasets
  cityscapes  (segmentation.py) the FCN score's three numbers (paper Tables 2 and 3) on every labelled
              truth pixel (metrics.truth_classes; the share left out is reported):
              photo->labels by the nearest palette colour; labels->photo through the
              kit's own scorer (replication/scorer.py), its score on the real photos as ceiling
  fid         (fid.py) FID and KID (with its std over subsets) on InceptionV3 pool features,
              translations against the real test images of the target domain; by
              default only on test sets large enough for them and with the weights at hand
  dloss       the discriminators' loss on the test images (CycleGAN report's table),
              from the checkpoint the generators come from

and writes RUN/eval/metrics.json and RUN/eval/metrics.md, naming the weights scored:
the export, else the newest whole checkpoint (a run may be training meanwhile). While training,
`train.eval_every` epochs log a quick quality measure to RUN/eval.csv (replication/quality.py).
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import os
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

import replication
from replication import data as data_lib
from replication import checkpoints, loading, losses, metrics, models, runs
from replication import scorer as scorer_lib
from replication.choices import DIRECTIONS
from replication.errors import KitError, MetricNotAvailable, RunFolderError
from replication.fid import feature_rows
from replication.figures import save_png
from replication.files import FolderLock, atomic_write_text, remove_partial_writes, storage_errors
from replication.logs import bar
from replication.metrics import row
from replication.pixels import to_uint8, to_unit
from replication.quality import has_truth, mean_truth_scores, uint8_pairs
from replication.segmentation import cityscapes_rows, is_cityscapes
from replication.tiling import translate_whole

METRIC_GROUPS = ("truth", "cityscapes", "fid", "dloss")
IDENTITY = "identity (input itself)"


# --------------------------------------------------------------------------- translations


def translate_split(translator, data_cfg: dict, direction: str, output: EvalOutput, progress: bool = False) -> dict:
    """{name: uint8 HxWx3} of the whole test split of `direction`'s input domain, translated once.

    Kept as PNG in RUN/eval/<direction>/ (the test files' names, extension .png)
    with a note of the step they come from; a later call at the same step reads them.
    The same test images are read elsewhere for other work, through the same readers
    (data.test_images, quality.uint8_pairs): figures/results.translate_test_set draws a
    model's samples of each test pair (a reconstruction needs both generators, pix2pix's
    the truth beside), quality.QualityLog scores the model being trained on 20 images
    it holds, translated again at every evaluation, its cycle error from the unrounded
    translation; neither runs one direction's generator within the memory as here.
    """
    folder = output.folder / direction
    domain = DIRECTIONS[direction][0]
    names = list(data_lib.test_set(data_cfg, domain).names)
    note = folder / "translated.json"
    made_by = {"step": translator.step, "names": names}
    if read_note(note) == made_by and all((folder / png_name(n)).exists() for n in names):
        return {n: read_png(folder / png_name(n)) for n in names}
    out = {}
    images = data_lib.test_images(data_cfg, domain, translator.size_multiple)
    for image, name in bar(images, len(names), f"translating {direction}", progress):
        name = os.fsdecode(name.numpy())
        out[name] = to_uint8(translate_whole(translator, translator.generator, image.numpy()[0], name))
        output.write_png(out[name], folder / png_name(name))
    output.write_text(note, json.dumps(made_by) + "\n")
    return out


def read_note(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def png_name(name: str) -> str:
    return str(Path(name).with_suffix(".png"))


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


# --------------------------------------------------------------------------- rows


def truth_rows(translations: dict, data_cfg: dict, multiple: int, progress: bool = False) -> list:
    """MAE, PSNR, SSIM per direction, each beside the identity baseline computed the same way."""
    rows = []
    for direction, outputs in translations.items():
        pairs = list(bar(uint8_pairs(data_cfg, DIRECTIONS[direction][0], multiple), len(outputs), f"truth {direction}", progress))
        kit = mean_truth_scores((outputs[name], truth) for _, truth, name in pairs)
        identity = mean_truth_scores((image, truth) for image, truth, _ in pairs)
        for metric, (_, definition) in metrics.TRUTH_METRICS.items():
            rows.append(row(metric, direction, kit[metric], definition, baseline=(IDENTITY, identity[metric])))
    return rows


# --------------------------------------------------------------------------- discriminator losses

def restore_judges(config: dict, run: runs.RunFolder, weights: loading.Weights, directions) -> tuple[dict, list]:
    """({direction: (name, discriminator)}, notes): the discriminators of the checkpoint the generators came
    from (for an export, the checkpoint of its step), or none with a note saying why."""
    model = models.build(config)
    if not all(d in model.judges for d in directions):
        return {}, [f"discriminator losses: the {config['model']['type']} discriminator is not a plain judge of one domain; left out"]
    path = weights.path if weights.source == "checkpoint" else run.checkpoints / f"{checkpoints.LATEST}-{weights.step}"
    items = model.checkpoint_items()
    judges = {model.judges[direction]: items[model.judges[direction]] for direction in directions}
    try:
        tf.train.Checkpoint(**judges).restore(str(path)).assert_existing_objects_matched().expect_partial()
    except (*checkpoints.DAMAGE, tf.errors.OpError) as err:
        return {}, [f"discriminator losses need the checkpoint of step {weights.step} ({path}), the one the generators "
                    f"come from; it could not be read ({checkpoints.first_line(err)}), so they are left out"]
    return {direction: (model.judges[direction], judges[model.judges[direction]]) for direction in directions}, []


def discriminator_rows(config: dict, translations: dict, judges: dict, progress: bool = False) -> list:
    """The loss of each direction's discriminator on the real test images and the translations."""
    gan_mode = config["loss"]["gan_mode"]
    rows = []
    for direction, outputs in translations.items():
        name, judge = judges[direction]
        target = DIRECTIONS[direction][1]
        reals = ((image, True) for image, _ in data_lib.test_images(config["data"], target, 1))
        fakes = ((to_unit(x[None]), False) for x in outputs.values())
        found = [(real, adversarial(judge, image, real, gan_mode))
                 for image, real in bar(itertools.chain(reals, fakes), None, f"D loss {direction}", progress)]
        real = [loss for is_real, loss in found if is_real]
        fake = [loss for is_real, loss in found if not is_real]
        value = 0.5 * (np.mean(real) + np.mean(fake))
        rows.append(row("D loss", direction, value,
                        f"{name}'s {gan_mode} loss, halved, on the real test {target} images and the translations "
                        "(as the training objective, the generators' checkpoint)"))
    return rows


def adversarial(judge, image, real: bool, gan_mode: str) -> float:
    return float(losses.adversarial_loss(judge(image, training=False), real, gan_mode))


# --------------------------------------------------------------------------- where evaluate writes


class EvalOutput:
    """RUN/eval/, where `evaluate` writes: one evaluate at a time, what a killed one left removed,
    a full disk or read-only folder said in one line, and nothing written once the folder is no
    longer the run that was read (`train --fresh` moves a run aside and starts a new one there)."""

    def __init__(self, run: runs.RunFolder):
        self.run, self.folder = run, run.eval
        self.identity = folder_identity(run.path)

    @contextlib.contextmanager
    def open(self, log):
        then = lambda: f" and evaluate again; the run itself is untouched (evaluate writes only under {self.folder})."  # noqa: E731
        with storage_errors(self.folder, then), \
                FolderLock(self.folder, "evaluate", advice="Wait for it to finish or stop it, then evaluate again."):
            for leftover in remove_partial_writes(self.folder):
                log(f"removed {leftover}, left by an evaluate that did not finish")
            yield self

    def check(self) -> None:
        if folder_identity(self.run.path) != self.identity:
            raise RunFolderError(
                f"{self.run.path} is no longer the run being evaluated (`train --fresh` moved it aside and started "
                "anew?); nothing was written into the new run. Evaluate the folder you mean again."
            )

    def write_png(self, image: np.ndarray, path: Path) -> None:
        self.check()
        save_png(image, path)

    def write_text(self, path: Path, text: str) -> None:
        self.check()
        atomic_write_text(path, text)


def folder_identity(path: Path) -> tuple | None:
    """(device, inode) of a folder: a folder moved away and made anew under the same name differs."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


# --------------------------------------------------------------------------- the command


def available_groups(data_cfg: dict) -> list:
    """The metric groups the data allows by default."""
    groups = ["cityscapes"] if is_cityscapes(data_cfg) else (["truth"] if has_truth(data_cfg) else [])
    return groups + ["fid", "dloss"]


def check_groups(data_cfg: dict, groups) -> None:
    for group in groups:
        if group not in METRIC_GROUPS:
            raise MetricNotAvailable(f"Unknown metric '{group}'; choose from {', '.join(METRIC_GROUPS)}.")
    if "truth" in groups:
        try:
            data_lib.truth_pairs(data_cfg, "A", 1)
        except KitError as err:
            raise MetricNotAvailable(f"--metrics truth: {err}") from None
    if "cityscapes" in groups and not is_cityscapes(data_cfg):
        raise MetricNotAvailable(
            "--metrics cityscapes needs the Cityscapes photos and label maps (data.source: cityscapes); "
            f"this run trained on data.source {data_cfg['source']}."
        )


def to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def evaluate(run_dir, groups=None, inception_weights_path=None, feature_network=None, progress: bool = True,
             log=to_stderr) -> dict:
    """Translate the test split, compute the metrics, write RUN/eval/metrics.json and metrics.md; returns the json.

    groups: metric groups (METRIC_GROUPS); None for every one the data allows
    (FID/KID only on test sets large enough for them and with the InceptionV3
    weights already at hand, the discriminator losses only with the
    generators' checkpoint; otherwise a note says how to ask). feature_network:
    the network behind FID/KID (default InceptionV3). The run may be training
    meanwhile: its newest whole checkpoint is scored, and nothing of the
    training is touched.
    """
    run = runs.RunFolder(Path(run_dir))
    config = runs.load_config(run.path)
    data_cfg = config["data"]
    explicit = groups is not None
    groups = list(groups) if explicit else available_groups(data_cfg)
    check_groups(data_cfg, groups)
    output = EvalOutput(run)
    with output.open(log):
        generators = loading.load_generators(run.path, log)
        weights = next(iter(generators.values())).weights
        log(f"evaluating {run.path}: {weights}")
        judges, notes = restore_judges(config, run, weights, generators) if "dloss" in groups else ({}, [])
        translations = {d: translate_split(g, data_cfg, d, output, progress) for d, g in generators.items()}
        multiple = max(g.size_multiple for g in generators.values())
        rows, ignored = [], {}
        if "truth" in groups:
            rows += truth_rows(translations, data_cfg, multiple, progress)
        if "cityscapes" in groups:
            found, more, ignored = cityscapes_rows(translations, data_cfg, multiple, scorer_lib.load(data_cfg), progress)
            rows, notes = rows + found, notes + more
        if "fid" in groups:
            found, more = feature_rows(translations, data_cfg, explicit, groups, inception_weights_path, feature_network, progress)
            rows, notes = rows + found, notes + more
        if judges:
            rows += discriminator_rows(config, translations, judges, progress)
        result = {
            "run": str(run.path),
            "step": weights.step,
            "epoch": weights.epoch,
            "weights": {**weights.as_json(), "described": str(weights)},
            "replication": replication.__version__,
            "evaluated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "rows": rows,
            "notes": notes,
        }
        if ignored:
            result["truth_pixels_ignored"] = ignored
        output.write_text(run.eval / "metrics.json", json.dumps(result, indent=2) + "\n")
        output.write_text(run.eval / "metrics.md", markdown(result))
    return result


def markdown(result: dict) -> str:
    """metrics.md: which weights, one table of the rows, the paper's numbers beside the kit's, then definitions and notes."""
    def fmt(x):
        return "" if x is None else f"{x:.4g}"

    described = result.get("weights", {}).get("described") or f"step {result['step']}, epoch {result['epoch']}"
    lines = [
        f"# Evaluation of {result['run']}",
        "",
        f"Scored: {described}; replication {result['replication']}; {result['evaluated_at']}.",
        "",
    ]
    with_paper = any(r["paper"] for r in result["rows"])  # the paper has numbers for Cityscapes only
    columns = ["metric", "direction", "this run", "baseline"] + (["paper CycleGAN", "paper pix2pix"] if with_paper else [])
    if result["rows"]:
        lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    else:
        lines.append("Nothing could be scored; the notes below say what each metric needs.")
    for r in result["rows"]:
        value = fmt(r["value"]) + (f" ± {fmt(r['std'])}" if r["std"] is not None else "")
        base = f"{fmt(r['baseline']['value'])} ({r['baseline']['name']})" if r["baseline"] else ""
        cells = [r["metric"], r["direction"], value, base]
        if with_paper:
            cells += [fmt((r["paper"] or {}).get(method)) for method in ("CycleGAN", "pix2pix")]
        lines.append("| " + " | ".join(cells) + " |")
    if result.get("truth_pixels_ignored"):
        shares = ", ".join(f"{d} {100 * share:.1f}%" for d, share in result["truth_pixels_ignored"].items())
        lines += ["", f"Cityscapes truth pixels ignored (unlabelled: void and the classes outside the 19): {shares}."]
    definitions = dict.fromkeys((r["metric"], r["definition"]) for r in result["rows"])
    lines += ["", *(f"- **{m}**: {d}" for m, d in definitions)]
    lines += [f"- note: {n}" for n in result.get("notes", [])]
    return "\n".join(lines) + "\n"

"""`python -m replication evaluate RUN_DIR`: a run's numbers beside the paper's.

The test split of both domains is translated once with the run's generators
and kept as PNG in RUN/eval/<direction>/ (the test files' names), so further
metrics read them instead of translating again. Then every metric the data
allows:

  truth       MAE, PSNR, SSIM against each test image's true counterpart, beside
              the identity baseline (the input itself): the synthetic set, folders
              with <split>_truth/, paired datasets
  cityscapes  the FCN score's three numbers (paper Tables 2 and 3): photo->labels by
              the nearest palette colour; labels->photo through the kit's own scorer
              (replication/scorer.py), with its score on the real photos as ceiling
  fid         FID and KID (with its std over subsets) on InceptionV3 pool features,
              translations against the real test images of the target domain
  dloss       the discriminators' loss on the test images (CycleGAN report's table)

and writes RUN/eval/metrics.json and RUN/eval/metrics.md. While training,
`train.eval_every` epochs log a quick quality measure to RUN/eval.csv
(`QualityLog`).
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

import replication
from replication import data as data_lib
from replication import losses, metrics, runs
from replication.errors import KitError
from replication.figures import save_png, to_uint8
from replication.io import atomic_write_text
from replication.logs import LossLog

DIRECTIONS = {"AtoB": ("A", "B"), "BtoA": ("B", "A")}  # (input domain, output domain)
METRIC_GROUPS = ("truth", "cityscapes", "fid", "dloss")
IDENTITY = "identity (input itself)"
# The paper's Cityscapes numbers (SPEC.md): AtoB is photo->labels (Table 3), BtoA labels->photo (Table 2).
PAPER_CITYSCAPES = {
    "AtoB": {"per-pixel acc": (0.58, 0.85), "per-class acc": (0.22, 0.40), "class IoU": (0.16, 0.32)},
    "BtoA": {"per-pixel acc": (0.52, 0.71), "per-class acc": (0.17, 0.25), "class IoU": (0.11, 0.18)},
}
INCEPTION_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_URL = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/" + INCEPTION_FILE
INCEPTION_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"  # keras.applications' own check of that file
INCEPTION_SIZE = 299
TRAINING_SUBSET = 20  # test images per domain that train.eval_every scores


class MetricNotAvailable(KitError):
    """A metric the data (or the machine) cannot give."""


# --------------------------------------------------------------------------- translations


def translate_split(translator, data_cfg: dict, direction: str, folder: Path, progress: bool = True) -> dict:
    """{name: uint8 HxWx3} of the whole test split of `direction`'s input domain, translated once.

    Kept as PNG in `folder` (the test files' names, extension .png) with a note
    of the step they come from; a later call at the same step reads them.
    """
    from tqdm import tqdm

    domain = DIRECTIONS[direction][0]
    names = list(data_lib.test_set(data_cfg, domain).names)
    note = folder / "translated.json"
    kept = json.loads(note.read_text()) if note.exists() else {}
    if kept.get("step") == translator.step and kept.get("names") == names and all((folder / png_name(n)).exists() for n in names):
        return {n: read_png(folder / png_name(n)) for n in names}
    out = {}
    images = data_lib.test_images(data_cfg, domain, translator.size_multiple)
    for image, name in tqdm(images, total=len(names), desc=f"translating {direction}", unit="image", disable=not progress):
        name = os.fsdecode(name.numpy())
        out[name] = to_uint8(translator(image))[0]
        save_png(out[name], folder / png_name(name))
    atomic_write_text(note, json.dumps({"step": translator.step, "names": names}) + "\n")
    return out


def png_name(name: str) -> str:
    return str(Path(name).with_suffix(".png"))


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def uint8_pairs(data_cfg: dict, domain: str, multiple: int):
    """(input, truth, name) of every test image of `domain` as uint8 HxWx3 arrays."""
    for image, truth, name in data_lib.truth_pairs(data_cfg, domain, multiple):
        yield to_uint8(image)[0], to_uint8(truth)[0], os.fsdecode(name.numpy())


# --------------------------------------------------------------------------- rows


def row(metric, direction, value, definition, std=None, baseline=None, paper=None) -> dict:
    """One line of metrics.json (schema in INTERFACE.md); non-finite numbers are written as null."""
    def number(x):
        return float(x) if x is not None and np.isfinite(x) else None

    return {
        "metric": metric,
        "direction": direction,
        "value": number(value),
        "std": number(std),
        "baseline": None if baseline is None else {"name": baseline[0], "value": number(baseline[1])},
        "paper": None if paper is None else {"CycleGAN": paper[0], "pix2pix": paper[1]},
        "definition": definition,
    }


def truth_rows(translations: dict, data_cfg: dict, multiple: int) -> list:
    """MAE, PSNR, SSIM per direction, each beside the identity baseline computed the same way."""
    rows = []
    for direction, outputs in translations.items():
        pairs = list(uint8_pairs(data_cfg, DIRECTIONS[direction][0], multiple))
        kit = mean_truth_scores((outputs[name], truth) for _, truth, name in pairs)
        identity = mean_truth_scores((image, truth) for image, truth, _ in pairs)
        for metric, (_, definition) in metrics.TRUTH_METRICS.items():
            rows.append(row(metric, direction, kit[metric], definition, baseline=(IDENTITY, identity[metric])))
    return rows


def mean_truth_scores(images_and_truths) -> dict:
    """{"MAE", "PSNR", "SSIM"}: each metric averaged over (image, truth) pairs."""
    found = [metrics.truth_scores(image, truth) for image, truth in images_and_truths]
    return {metric: float(np.mean([s[metric] for s in found])) for metric in metrics.TRUTH_METRICS}


def is_cityscapes(data_cfg: dict) -> bool:
    """Cityscapes photos as A and label maps as B (the CycleGAN zip, or pix2pix's set read AtoB)."""
    if data_cfg["source"] == "pix2pix":
        return data_cfg.get("name") == "cityscapes" and data_cfg.get("direction", "AtoB") == "AtoB"
    return data_cfg["source"] == "cityscapes"


def cityscapes_rows(translations: dict, data_cfg: dict, multiple: int, scorer=None) -> tuple[list, list]:
    """(rows, notes): photo->labels (AtoB) by palette colours; labels->photo (BtoA) through `scorer`."""
    rows, notes = [], []
    if "AtoB" in translations:
        kit = np.zeros((metrics.N_CLASSES,) * 2, np.int64)
        road = np.zeros_like(kit)
        for _, labels, name in uint8_pairs(data_cfg, "A", multiple):
            truth = metrics.palette_classes(labels, metrics.TRUTH_TOLERANCE)
            kit += metrics.confusion_matrix(truth, metrics.palette_classes(translations["AtoB"][name]))
            road += metrics.confusion_matrix(truth, np.full_like(truth, metrics.ROAD))
        rows += segmentation_rows("AtoB", metrics.segmentation_scores(kit), metrics.segmentation_scores(road),
                                  'every pixel "road"', "generated label maps read by the nearest palette colour")
    if "BtoA" in translations:
        if scorer is None:
            notes.append("labels->photo (paper Table 2) needs the kit's Cityscapes scorer: run `make cityscapes-scorer` (GPU work) first.")
        else:
            from replication import scorer as scorer_lib

            kit = np.zeros((metrics.N_CLASSES,) * 2, np.int64)
            for labels, _, name in uint8_pairs(data_cfg, "B", multiple):
                truth = metrics.palette_classes(labels, metrics.TRUTH_TOLERANCE)
                kit += metrics.confusion_matrix(truth, scorer_lib.segment(scorer, to_unit(translations["BtoA"][name])))
            rows += segmentation_rows("BtoA", metrics.segmentation_scores(kit), scorer_lib.ceiling(scorer, data_cfg),
                                      "kit scorer on the real photos (ceiling)",
                                      "generated photos labelled by the kit's scorer (not the paper's FCN)")
    return rows, notes


def segmentation_rows(direction, kit: dict, base: dict, baseline_name, how) -> list:
    return [
        row(metric, direction, kit[metric], f"{definition}, 19 Cityscapes classes; {how}",
            baseline=(baseline_name, base[metric]), paper=PAPER_CITYSCAPES[direction][metric])
        for metric, definition in metrics.SEGMENTATION_METRICS.items()
    ]


# --------------------------------------------------------------------------- FID and KID


def inception_weights(path=None, fetch=None) -> Path:
    """The InceptionV3 ImageNet weights file: `path`, or Keras' download (cached in ~/.keras/models/)."""
    if path:
        path = Path(path).expanduser()
        if not path.is_file():
            raise MetricNotAvailable(f"--inception-weights {path}: no such file. It should be Keras' {INCEPTION_FILE}.")
        return path
    import keras

    fetch = fetch or keras.utils.get_file
    try:
        return Path(fetch(INCEPTION_FILE, INCEPTION_URL, cache_subdir="models", file_hash=INCEPTION_MD5))
    except Exception:  # noqa: BLE001 - offline, a proxy, a broken cache: all end in the same advice
        raise MetricNotAvailable(
            f"FID/KID need InceptionV3's ImageNet weights and they could not be downloaded: put "
            f"{INCEPTION_FILE} (from {INCEPTION_URL}) into ~/.keras/models/, or pass --inception-weights PATH."
        ) from None


def inception_network(weights_path, builder=None):
    """InceptionV3 without its top, average-pooled 2048-d features, on 299x299 images."""
    import keras

    builder = builder or keras.applications.InceptionV3
    try:
        return builder(include_top=False, pooling="avg", weights=str(weights_path), input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    except (ValueError, OSError) as err:
        raise MetricNotAvailable(f"{weights_path} is not the InceptionV3 weights file {INCEPTION_FILE}: {err}") from None


def image_features(images, network, batch_size: int = 16) -> np.ndarray:
    """[N, D] features of uint8 HxWx3 images, each resized to the network's input size and put in [-1, 1]."""
    size = network.input_shape[1:3]
    if None in size:
        size = (INCEPTION_SIZE, INCEPTION_SIZE)
    features = []
    images = list(images)
    for start in range(0, len(images), batch_size):
        batch = [tf.image.resize(tf.cast(x, tf.float32), size, method="bilinear") for x in images[start : start + batch_size]]
        batch = tf.stack(batch) / 127.5 - 1.0  # InceptionV3's own input range (its preprocess_input)
        features.append(np.asarray(network(batch, training=False), np.float64))
    return np.concatenate(features)


def fid_rows(translations: dict, data_cfg: dict, network) -> list:
    rows = []
    for direction, outputs in translations.items():
        target = DIRECTIONS[direction][1]
        real = [to_uint8(image)[0] for image, _ in data_lib.test_images(data_cfg, target, 1)]
        fake_features, real_features = image_features(outputs.values(), network), image_features(real, network)
        where = f"translations vs the real test {target} images, Keras InceptionV3 pool features ({fake_features.shape[1]}-d, {INCEPTION_SIZE}x{INCEPTION_SIZE})"
        fid = metrics.frechet_distance(fake_features, real_features)
        subset = min(1000, max(2, min(len(fake_features), len(real_features)) // 2))
        kid, kid_std = metrics.kernel_inception_distance(fake_features, real_features, subsets=100, subset_size=subset)
        rows.append(row("FID", direction, fid, f"Frechet distance, {where} (lower is better)"))
        rows.append(row("KID", direction, kid, f"kernel inception distance, unbiased MMD^2, mean and std over 100 subsets of {subset}, {where} (lower is better)", std=kid_std))
    return rows


# --------------------------------------------------------------------------- discriminator losses

JUDGES = {"AtoB": "D_Y", "BtoA": "D_X"}  # D_Y judges G's outputs, D_X judges F's (paper §3)


def discriminator_rows(run: runs.RunFolder, config: dict, translations: dict) -> tuple[list, list]:
    """The loss of each direction's discriminator on the real test images and the translations."""
    from replication import models

    latest = tf.train.latest_checkpoint(str(run.checkpoints))
    if latest is None:
        return [], ["discriminator losses need a checkpoint (the export holds only the generators); none in " + str(run.checkpoints)]
    items = models.build(config).checkpoint_items()
    if not all(JUDGES[d] in items for d in translations):
        return [], [f"discriminator losses: the {config['model']['type']} discriminator is not a plain judge of one domain; left out"]
    judges = {JUDGES[d]: items[JUDGES[d]] for d in translations}
    tf.train.Checkpoint(**judges).restore(latest).expect_partial()
    gan_mode = config["loss"]["gan_mode"]
    rows = []
    for direction, outputs in translations.items():
        judge = judges[JUDGES[direction]]
        target = DIRECTIONS[direction][1]
        real = [adversarial(judge, image, True, gan_mode) for image, _ in data_lib.test_images(config["data"], target, 1)]
        fake = [adversarial(judge, to_unit(x), False, gan_mode) for x in outputs.values()]
        value = 0.5 * (np.mean(real) + np.mean(fake))
        rows.append(row("D loss", direction, value,
                        f"{JUDGES[direction]}'s {gan_mode} loss, halved, on the real test {target} images and the translations "
                        "(as the training objective, latest checkpoint)"))
    return rows, []


def adversarial(judge, image, real: bool, gan_mode: str) -> float:
    return float(losses.adversarial_loss(judge(image, training=False), real, gan_mode))


# --------------------------------------------------------------------------- the command


def available_groups(data_cfg: dict) -> list:
    """The metric groups the data allows by default."""
    groups = ["cityscapes"] if is_cityscapes(data_cfg) else (["truth"] if has_truth(data_cfg) else [])
    return groups + ["fid", "dloss"]


def has_truth(data_cfg: dict) -> bool:
    try:
        data_lib.truth_pairs(data_cfg, "A", 1)
        return True
    except KitError:
        return False


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


def evaluate(run_dir, groups=None, inception_weights_path=None, feature_network=None, progress: bool = True) -> dict:
    """Translate the test split, compute the metrics, write RUN/eval/metrics.json and metrics.md; returns the json.

    groups: metric groups (METRIC_GROUPS); None for every one the data allows
    (FID/KID and the discriminator losses are then left out with a note when
    their weights or checkpoint are missing). feature_network: the network
    behind FID/KID (default InceptionV3).
    """
    run = runs.RunFolder(Path(run_dir))
    config = runs.load_config(run.path)
    data_cfg = config["data"]
    explicit = groups is not None
    groups = list(groups) if explicit else available_groups(data_cfg)
    check_groups(data_cfg, groups)
    generators = runs.load_generators(run.path)
    translations = {d: translate_split(g, data_cfg, d, run.eval / d, progress) for d, g in generators.items()}
    multiple = max(g.size_multiple for g in generators.values())
    rows, notes = [], []
    if "truth" in groups:
        rows += truth_rows(translations, data_cfg, multiple)
    if "cityscapes" in groups:
        from replication import scorer as scorer_lib

        found, more = cityscapes_rows(translations, data_cfg, multiple, scorer_lib.load(data_cfg))
        rows, notes = rows + found, notes + more
    if "fid" in groups:
        try:
            network = feature_network or inception_network(inception_weights(inception_weights_path))
            rows += fid_rows(translations, data_cfg, network)
        except MetricNotAvailable as err:
            if explicit:
                raise
            notes.append(f"FID/KID left out: {err}")
    if "dloss" in groups:
        found, more = discriminator_rows(run, config, translations)
        rows, notes = rows + found, notes + more
    step, epoch = trained_to(run, next(iter(generators.values())).step)
    result = {
        "run": str(run.path),
        "step": step,
        "epoch": epoch,
        "replication": replication.__version__,
        "evaluated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "rows": rows,
        "notes": notes,
    }
    atomic_write_text(run.eval / "metrics.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(run.eval / "metrics.md", markdown(result))
    return result


def trained_to(run: runs.RunFolder, step) -> tuple:
    """(step, epoch) the evaluated weights come from: the export's manifest, else the latest checkpoint."""
    if run.manifest.exists():
        info = runs.read_manifest(run.manifest)
        return info.get("step", step), info.get("epoch")
    latest = tf.train.latest_checkpoint(str(run.checkpoints))
    if latest is None:
        return step, None
    read = tf.train.load_checkpoint(latest).get_tensor
    return int(read("step/.ATTRIBUTES/VARIABLE_VALUE")), int(read("epoch/.ATTRIBUTES/VARIABLE_VALUE"))


def markdown(result: dict) -> str:
    """metrics.md: one table of the rows, the paper's numbers beside the kit's, then definitions and notes."""
    def fmt(x):
        return "" if x is None else f"{x:.4g}"

    lines = [
        f"# Evaluation of {result['run']}",
        "",
        f"Step {result['step']}, epoch {result['epoch']}; replication {result['replication']}; {result['evaluated_at']}.",
        "",
        "| metric | direction | this run | baseline | paper CycleGAN | paper pix2pix |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        value = fmt(r["value"]) + (f" ± {fmt(r['std'])}" if r["std"] is not None else "")
        base = f"{fmt(r['baseline']['value'])} ({r['baseline']['name']})" if r["baseline"] else ""
        paper = r["paper"] or {}
        lines.append(f"| {r['metric']} | {r['direction']} | {value} | {base} | {fmt(paper.get('CycleGAN'))} | {fmt(paper.get('pix2pix'))} |")
    definitions = dict.fromkeys((r["metric"], r["definition"]) for r in result["rows"])
    lines += ["", *(f"- **{m}**: {d}" for m, d in definitions)]
    lines += [f"- note: {n}" for n in result.get("notes", [])]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- while training


class QualityLog(LossLog):
    """`train.eval_every`: a quick quality measure of the model being trained, to RUN/eval.csv and TensorBoard.

    On the first TRAINING_SUBSET test images of each domain: MAE, PSNR and
    SSIM against the ground truth where the data has it, otherwise the
    cycle-reconstruction MAE (|F(G(a)) - a|, columns cycle_MAE_<direction>).
    """

    def __init__(self, config: dict, run, model):
        self.generators = generators = {
            d: runs.Translator(getattr(model, name), d, model.training_mode_at_test) for d, name in model.generator_names.items()
        }
        multiple = max(g.size_multiple for g in generators.values())
        self.truth = has_truth(config["data"])
        self.subset = {}
        for direction in generators:
            domain = DIRECTIONS[direction][0]
            if self.truth:
                pairs = list(uint8_pairs(config["data"], domain, multiple))[:TRAINING_SUBSET]
                self.subset[direction] = [(image, truth) for image, truth, _ in pairs]
            else:
                images = data_lib.test_images(config["data"], domain, multiple).take(TRAINING_SUBSET)
                self.subset[direction] = [(to_uint8(image)[0], None) for image, _ in images]
        names = metrics.TRUTH_METRICS if self.truth else ("cycle_MAE",)
        super().__init__(run.eval_csv, [f"{m}_{d}" for m in names for d in generators], run.tensorboard)
        self.columns = self.columns[:-2]  # step, epoch and the scores; no lr, no wall time

    def scores(self) -> dict:
        generators, out = self.generators, {}
        for direction, pairs in self.subset.items():
            generator = generators[direction]
            if self.truth:
                found = mean_truth_scores((translate(generator, image), truth) for image, truth in pairs)
                out.update({f"{metric}_{direction}": value for metric, value in found.items()})
            else:
                back = generators[{"AtoB": "BtoA", "BtoA": "AtoB"}[direction]]
                errors = [metrics.mean_absolute_error(to_uint8(back(generator(to_unit(image))))[0], image) for image, _ in pairs]
                out[f"cycle_MAE_{direction}"] = float(np.mean(errors))
        return out

    def log(self, step: int, epoch: int) -> dict:
        values = self.scores()
        with self.path.open("a", newline="") as f:
            f.write(",".join([str(step), str(epoch), *(f"{values[c]:.6g}" for c in self.columns[2:])]) + "\n")
        if self.tensorboard:
            with self.tensorboard.as_default(step=step):
                for name, value in values.items():
                    tf.summary.scalar(f"eval/{name}", value)
        return values


def translate(translator, image: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 through a `runs.Translator` ([-1, 1] in and out) back to uint8."""
    return to_uint8(translator(to_unit(image)))[0]


def to_unit(image: np.ndarray) -> tf.Tensor:
    """uint8 HxWx3 to a [1,H,W,3] float32 batch in [-1, 1] (the networks' range)."""
    return tf.constant(image[None], tf.float32) / 127.5 - 1.0

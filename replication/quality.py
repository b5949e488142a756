"""A translation's quality on the test images: the test images and their truths as uint8, the mean
truth scores, and `QualityLog`, the quick measure that `train.eval_every` logs to RUN/eval.csv while
training. `evaluate` (replication/evaluate.py) measures a whole run with the same scores.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import tensorflow as tf

from replication import data as data_lib
from replication import metrics
from replication.choices import DIRECTIONS, reverse
from replication.errors import KitError
from replication.loading import Translator
from replication.logs import CsvLog
from replication.pixels import to_uint8, to_unit

TRAINING_SUBSET = 20  # test images per domain that train.eval_every scores


def uint8_pairs(data_cfg: dict, domain: str, multiple: int):
    """(input, truth, name) of every test image of `domain` as uint8 HxWx3 arrays."""
    for image, truth, name in data_lib.truth_pairs(data_cfg, domain, multiple):
        yield to_uint8(image)[0], to_uint8(truth)[0], os.fsdecode(name.numpy())


def has_truth(data_cfg: dict) -> bool:
    try:
        data_lib.truth_pairs(data_cfg, "A", 1)
        return True
    except KitError:
        return False


def mean_truth_scores(images_and_truths) -> dict:
    """{"MAE", "PSNR", "SSIM"}: each metric averaged over (image, truth) pairs."""
    found = [metrics.truth_scores(image, truth) for image, truth in images_and_truths]
    return {metric: float(np.mean([s[metric] for s in found])) for metric in metrics.TRUTH_METRICS}


class QualityLog(CsvLog):
    """`train.eval_every`: a quick quality measure of the model being trained, to RUN/eval.csv and TensorBoard.

    On the first TRAINING_SUBSET test images of each domain: MAE, PSNR and
    SSIM against the ground truth where the data has it, otherwise the
    cycle-reconstruction MAE (|F(G(a)) - a|, columns cycle_MAE_<direction>).
    """

    def __init__(self, config: dict, run, model):
        self.generators = generators = {
            d: Translator(getattr(model, name), d, model.training_mode_at_test) for d, name in model.generator_names.items()
        }
        multiple = max(g.size_multiple for g in generators.values())
        self.truth = has_truth(config["data"])
        self.subset = {}
        for direction in generators:
            domain = DIRECTIONS[direction][0]
            if self.truth:
                pairs = itertools.islice(uint8_pairs(config["data"], domain, multiple), TRAINING_SUBSET)
                self.subset[direction] = [(image, truth) for image, truth, _ in pairs]
            else:
                images = data_lib.test_images(config["data"], domain, multiple).take(TRAINING_SUBSET)
                self.subset[direction] = [(to_uint8(image)[0], None) for image, _ in images]
        names = metrics.TRUTH_METRICS if self.truth else ("cycle_MAE",)
        super().__init__(run.eval_csv, ["step", "epoch", *(f"{m}_{d}" for m in names for d in generators)])
        self.tensorboard = tf.summary.create_file_writer(str(run.tensorboard))

    def scores(self) -> dict:
        generators, out = self.generators, {}
        for direction, pairs in self.subset.items():
            generator = generators[direction]
            if self.truth:
                found = mean_truth_scores((translate(generator, image), truth) for image, truth in pairs)
                out.update({f"{metric}_{direction}": value for metric, value in found.items()})
            else:
                back = generators[reverse(direction)]
                errors = [metrics.mean_absolute_error(to_uint8(back(generator(to_unit(image[None]))))[0], image) for image, _ in pairs]
                out[f"cycle_MAE_{direction}"] = float(np.mean(errors))
        return out

    def log(self, step: int, epoch: int) -> dict:
        values = self.scores()
        self.append({"step": step, "epoch": epoch, **{c: f"{values[c]:.6g}" for c in self.columns[2:]}})
        with self.tensorboard.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(f"eval/{name}", value)
        return values


def translate(translator, image: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 through a `loading.Translator` ([-1, 1] in and out) back to uint8."""
    return to_uint8(translator(to_unit(image[None])))[0]


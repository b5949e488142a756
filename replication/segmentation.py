"""The FCN score on Cityscapes as `evaluate` computes it (paper Tables 2 and 3): a confusion matrix
summed over the test images (`Confusion`), each direction's three numbers beside a baseline and the
paper's. photo->labels reads the generated label maps by the nearest palette colour; labels->photo
labels the generated photos with the kit's own scorer (replication/scorer.py). The numbers
themselves are metrics.py's."""

from __future__ import annotations

import numpy as np

from replication import metrics
from replication import scorer as scorer_lib
from replication.choices import DIRECTIONS, reverse
from replication.logs import bar
from replication.metrics import row
from replication.pixels import to_unit
from replication.quality import uint8_pairs

# The paper's Cityscapes numbers (SPEC.md): AtoB is photo->labels (Table 3), BtoA labels->photo (Table 2).
PAPER_CITYSCAPES = {
    "AtoB": {"per-pixel acc": (0.58, 0.85), "per-class acc": (0.22, 0.40), "class IoU": (0.16, 0.32)},
    "BtoA": {"per-pixel acc": (0.52, 0.71), "per-class acc": (0.17, 0.25), "class IoU": (0.11, 0.18)},
}


def is_cityscapes(data_cfg: dict) -> bool:
    """Cityscapes photos and label maps: the CycleGAN zip, or pix2pix's set."""
    if data_cfg["source"] == "pix2pix":
        return data_cfg.get("name") == "cityscapes"
    return data_cfg["source"] == "cityscapes"


def paper_direction(data_cfg: dict, direction: str) -> str:
    """The paper's name of one of the kit's directions on Cityscapes: AtoB is photo->labels
    (Table 3), BtoA labels->photo (Table 2); data.direction BtoA swaps the kit's A and B."""
    return direction if data_cfg["direction"] == "AtoB" else reverse(direction)


def cityscapes_rows(translations: dict, data_cfg: dict, multiple: int, scorer=None, progress: bool = False) -> tuple[list, list, dict]:
    """(rows, notes, share of truth pixels ignored by direction): photo->labels by palette colours;
    labels->photo through `scorer`. Truth label maps are read by metrics.truth_classes. The rows
    name the paper's direction (`paper_direction`), whatever the run's data.direction."""
    rows, notes, ignored = [], [], {}
    for direction, outputs in translations.items():
        domain, paper = DIRECTIONS[direction][0], paper_direction(data_cfg, direction)
        if paper == "AtoB":
            kit, road = Confusion(), Confusion()
            for _, labels, name in bar(uint8_pairs(data_cfg, domain, multiple), len(outputs), "photo->labels", progress):
                truth = metrics.truth_classes(labels)
                kit.add(truth, metrics.palette_classes(outputs[name]))
                road.add(truth, np.full_like(truth, metrics.ROAD))
            ignored[paper] = kit.ignored_share
            rows += segmentation_rows(paper, kit.scores(), road.scores(), 'every pixel "road"',
                                      "photo->labels: generated label maps read by the nearest palette colour")
        elif scorer is None:
            notes.append("labels->photo (paper Table 2) needs the kit's Cityscapes scorer: run `make cityscapes-scorer` (GPU work) first.")
        else:
            kit = Confusion()
            for labels, _, name in bar(uint8_pairs(data_cfg, domain, multiple), len(outputs), "labels->photo", progress):
                kit.add(metrics.truth_classes(labels), scorer_lib.segment(scorer, to_unit(outputs[name][None]), name))
            ignored[paper] = kit.ignored_share
            rows += segmentation_rows(paper, kit.scores(), scorer_lib.ceiling(scorer, data_cfg),
                                      "kit scorer on the real photos (ceiling)",
                                      "labels->photo: generated photos labelled by the kit's scorer (not the paper's FCN)")
    return rows, notes, ignored


class Confusion:
    """A confusion matrix summed over images, and how many truth pixels it left out."""

    def __init__(self):
        self.matrix = np.zeros((metrics.N_CLASSES,) * 2, np.int64)
        self.pixels = self.ignored = 0

    def add(self, truth, predicted) -> None:
        self.matrix += metrics.confusion_matrix(truth, predicted)
        self.pixels += truth.size
        self.ignored += int(np.count_nonzero(truth == metrics.IGNORED))

    @property
    def ignored_share(self) -> float:
        return self.ignored / self.pixels if self.pixels else float("nan")

    def scores(self) -> dict:
        return metrics.segmentation_scores(self.matrix)


def segmentation_rows(direction, kit: dict, base: dict, baseline_name, how) -> list:
    truth = "every labelled truth pixel, those of unlabelled colours (void, classes outside the 19) ignored"
    return [
        row(metric, direction, kit[metric], f"{definition}, 19 Cityscapes classes; {how}; {truth}",
            baseline=(baseline_name, base[metric]), paper=PAPER_CITYSCAPES[direction][metric])
        for metric, definition in metrics.SEGMENTATION_METRICS.items()
    ]

"""The contract the training loop expects of a model, and how a model's row is found.

`model.type` in an experiment names a row of the model table, `choices.MODELS`
(plain data, so a configuration is checked without importing any model).
Everything outside a model's own module (training, translate, figures,
evaluate, the bench) finds the model's class and its kind of data here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Protocol

from replication import choices, gan
from replication import data as data_lib
from replication.speed.conv_gradients import use_forward_gradients


class Model(Protocol):
    """What the training loop, the logs, the figures, the exports, evaluate and the bench need of
    a model. The shared parts live in gan.GAN."""

    # training, logs, checkpoints and exports
    model_type: str  # its row in the model table, named in the export's manifest
    model_cfg: dict  # the `model:` section its generators are built from (the export rebuilds them in float32)
    loss_names: tuple[str, ...]  # the columns of losses.csv
    generator_names: dict[str, str]  # direction -> checkpoint name of its generator
    training_mode_at_test: bool  # run generators in training mode at test time (pix2pix's dropout)
    # what figures and pages show
    sample_rows: dict[str, tuple[str, ...]]  # direction -> names of one row of a sample grid
    sample_names: tuple[str, ...]  # all rows' names, in order (what samples/epoch_NNN.npz holds): gan.GAN derives it
    sample_captions: dict[str, str]  # name -> what a figure writes under it
    loss_panels: dict[str, dict[str, str]]  # the loss figure's panel title -> {direction: loss name}
    # what evaluate and the bench ask
    judges: dict[str, str]  # direction -> checkpoint name of the discriminator that judges its outputs alone
    forward_passes: dict[str, int]  # forward passes per step: generator, discriminator_through, discriminator

    def train_step(self, a, b, step) -> dict: ...
    def set_learning_rate(self, lr: float) -> None: ...
    def sample_images(self, a, b) -> dict: ...
    def checkpoint_items(self) -> dict: ...
    def networks(self) -> list: ...  # the Keras networks among the checkpoint items

    @staticmethod
    def visuals(generators: dict, a, b) -> dict: ...

    @classmethod
    def from_config(cls, config: dict, precision: str = "float32") -> Model: ...  # models.build calls it


@dataclass(frozen=True)
class ModelEntry:
    cls: type
    data: Callable  # how its training data is read: data.unpaired or data.paired


def entry_of(name: str) -> ModelEntry:
    """The row `name` of the model table, its class imported."""
    row = choices.MODELS[name]
    module, cls = row.where.split(":")
    return ModelEntry(getattr(importlib.import_module(module), cls), getattr(data_lib, row.data))


def entry(config: dict) -> ModelEntry:
    return entry_of(config["model"]["type"])


def model_class(config: dict) -> type:
    return entry(config).cls


def build(config: dict, precision: str = "float32", conv_gradients: str = "native") -> Model:
    """The model of `config`, its networks built under the Keras dtype policy `precision`;
    `conv_gradients` "forward" has their stride-1 convs take forward-convolution gradients."""
    with gan.dtype_policy(precision):
        model = entry(config).cls.from_config(config, precision)
    if conv_gradients == "forward":
        for network in model.networks():
            use_forward_gradients(network)
    return model


def training_data(config: dict):
    return entry(config).data(config["data"])


def test_images(config: dict, domain: str, multiple: int):
    """The test images of `domain` as the model is tested on them: for a paired model (pix2pix),
    B's images are the ground truth of A's, in the same order; see `data.test_images`."""
    return data_lib.test_images(config["data"], domain, multiple, paired=entry(config).data is data_lib.paired)

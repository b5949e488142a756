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
    """What the kit needs of a model: the training loop, checkpoints, the logs and figures, the
    exports, translate, evaluate and the bench know a model by these alone. A model's file
    declares the first part; gan.GAN, which every model extends, derives the rest from it."""

    # declared by the model's file
    loss_names: tuple[str, ...]  # what train_step returns: the columns of losses.csv, in order
    generator_names: dict[str, str]  # direction -> the checkpoint item that translates it
    training_mode_at_test: bool  # its generators run in training mode at test time (pix2pix's dropout)
    sample_rows: dict[str, tuple[str, ...]]  # direction -> the names of `visuals` in one row of a sample grid
    sample_captions: dict[str, str]  # name -> what a figure writes under it
    loss_panels: dict[str, dict[str, str]]  # the loss figure's panel title -> {direction: loss name}
    judges: dict[str, str]  # direction -> the discriminator that judges its outputs alone (evaluate); {} if none does
    forward_passes: dict[str, int]  # the bench's FLOP count: generator, discriminator_through, discriminator passes per step

    @classmethod
    def from_config(cls, config: dict, precision: str = "float32") -> Model: ...  # built under `precision` by models.build
    def train_step(self, a, b, step) -> dict: ...  # one update: {loss name: float32 scalar}
    def checkpoint_items(self) -> dict: ...  # what a checkpoint keeps: its networks, optimizers and any other state

    @staticmethod
    def visuals(generators: dict, a, b) -> dict: ...  # {direction: generator} and a batch -> {name: images} of sample_rows

    # derived by gan.GAN
    def set_learning_rate(self, lr: float) -> None: ...  # both optimizers
    def sample_images(self, a, b) -> dict: ...  # `visuals` of its own generators, as they are tested
    def networks(self) -> list: ...  # the Keras networks among its checkpoint items


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

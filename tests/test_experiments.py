"""Every experiment file in experiments/ resolves and builds its networks (with few filters, to stay quick)."""

import keras
import pytest
import tensorflow as tf
import yaml

from replication import config as config_lib
from replication import data as data_lib
from replication import models, networks

EXPERIMENTS = sorted(p.stem for p in config_lib.EXPERIMENTS_DIR.glob("*.yaml") if p.stem != config_lib.BASE)


def test_the_walk_finds_the_paper_runs_pix2pix_and_the_ablations():
    assert {"horse2zebra", "demo", "pix2pix_facades", "pix2pix_synthetic", "cityscapes_ablation_full"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_extends_another_and_resolves_to_the_keys_of_base(name):
    raw = yaml.safe_load(config_lib.experiment_path(name).read_text())
    assert "extends" in raw, f"{name}.yaml should extend another experiment, not copy one"
    resolved = config_lib.resolve(name)
    base = config_lib.load_chain(config_lib.BASE)
    assert {s: set(v) for s, v in resolved.items() if isinstance(v, dict)} == {s: set(v) for s, v in base.items()}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_builds_its_model_and_translates_at_its_crop_size(name):
    """...and its generators drop out only as the official code trains them: pix2pix's (0.5), never
    CycleGAN's (its cycle_gan_model.py sets no_dropout), whatever the generator."""
    config = config_lib.resolve(name, ["model.ngf=2", "model.ndf=2", "model.n_blocks=1"])
    keras.utils.set_random_seed(0)
    model = models.build(config)
    crop = config["data"]["crop_size"]
    image = tf.zeros((1, crop, crop, 3))
    for direction, generator_name in model.generator_names.items():
        generator = getattr(model, generator_name)
        assert crop % networks.size_multiple(generator) == 0, f"{name}: crop {crop} does not fit the generator"
        translated = generator(image)
        assert translated.shape == image.shape
        dropout = {layer.rate for layer in networks.dropout_layers(generator)}
        assert dropout == ({0.5} if config["model"]["type"] == "pix2pix" else set()), name
        if direction == "AtoB":
            model.sample_images(image, image)  # the loop's sample call works too
    assert set(models.model_class(config).loss_names) == set(model.loss_names)


def test_a_cyclegan_has_dropout_when_model_dropout_asks_for_it():
    for generator in ("unet", "resnet"):
        config = config_lib.resolve("demo", ["model.ngf=2", "model.ndf=2", "model.n_blocks=1", f"model.generator={generator}", "model.dropout=0.5"])
        model = models.build(config)
        assert {layer.rate for net in (model.G, model.F) for layer in networks.dropout_layers(net)} == {0.5}


def test_the_papers_runs_resize_as_the_official_code_and_the_demo_does_not_resize():
    paper_runs = [n for n in EXPERIMENTS if n.startswith(("horse2zebra", "apple2orange", "summer2winter", "monet2photo",
                                                          "cityscapes", "pix2pix_cityscapes", "pix2pix_facades", "pix2pix_maps"))]
    assert len(paper_runs) >= 15
    for name in paper_runs:
        assert config_lib.resolve(name)["data"]["resize_method"] == "bicubic", name
    demo = config_lib.resolve("demo")["data"]
    assert demo["resize_method"] == "nearest" and demo["load_size"] == demo["crop_size"] == 64


def test_every_row_of_the_model_table_names_a_model_class_and_a_way_to_read_its_data():
    from replication import choices, gan

    for name in choices.MODELS:
        entry = models.entry_of(name)
        assert issubclass(entry.cls, gan.GAN) and entry.data in (data_lib.unpaired, data_lib.paired), name

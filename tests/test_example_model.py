"""Adding a model is one file (tests/example_model.py) and one row in the model table: the loop
trains it, logs its losses, keeps its samples and checkpoints, and exports its generator; the
configuration, `replication experiments` and the figures' pages take what they say of it from its row."""

import csv

import pytest

from replication import choices
from replication import config as config_lib
from replication.cli import describe
from replication.errors import ConfigError
from replication.figures import page, tables
from replication.training import train

from helpers import tiny_config

# the row (docs/developing.md shows it for replication/one_way.py)
ROW = choices.ModelRow("example_model:OneWayGAN", "unpaired", terms=lambda loss: ("GAN",))


def test_a_model_in_one_file_and_one_row_trains_for_two_steps(tiny_synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setitem(choices.MODELS, "one_way", ROW)
    config = tiny_config(tiny_synthetic_root, "train.epochs=1", "train.epochs_decay=0",
                         "train.max_steps_per_epoch=2", "model.type=one_way")
    run = train(config, run_dir=tmp_path / "one_way")
    with open(run / "losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2] and {"G", "D"} <= set(rows[0])
    assert (run / "samples" / "epoch_001.png").exists()
    assert (run / "export" / "G_AtoB.keras").exists()


def test_a_new_row_is_described_by_its_own_terms_not_cyclegans(monkeypatch):
    monkeypatch.setitem(choices.MODELS, "one_way", ROW)
    config = config_lib.resolve("demo", ["model.type=one_way"])
    assert describe(config) == ("one_way", "U-Net-64 ngf 16", "PatchGAN 70x70", "GAN", "synthetic data/synthetic", "64x64", "8+8")
    assert tables.variant(config) == "one_way"
    set_aside = page.config_keys(config)[1]  # it reads none of the loss keys the other models read
    assert {"loss.gan_mode", "loss.gan", "loss.cycle", "loss.lambda_cycle", "loss.lambda_identity", "loss.lambda_L1",
            "train.pool_size"} <= set(set_aside)


def test_what_config_checks_of_a_model_is_its_row(monkeypatch):
    with pytest.raises(ConfigError, match=r"^model.type=one_way is not allowed: .*cyclegan or pix2pix"):
        config_lib.resolve("demo", ["model.type=one_way"])

    def needs_gan(loss):
        if not loss["gan"]:
            raise ConfigError("loss.gan=false leaves one_way nothing to train")

    monkeypatch.setitem(choices.MODELS, "one_way", ROW)
    assert config_lib.resolve("demo", ["model.type=one_way", "loss.gan=false", "loss.cycle=none", "loss.lambda_identity=0"])  # not CycleGAN's rule
    monkeypatch.setitem(choices.MODELS, "one_way", choices.ModelRow("example_model:OneWayGAN", "unpaired", dropout=0.25, check=needs_gan))
    assert config_lib.resolve("demo", ["model.type=one_way"])["model"]["dropout"] == 0.25  # model.dropout auto is the row's
    with pytest.raises(ConfigError, match="^loss.gan=false leaves one_way nothing to train$"):
        config_lib.resolve("demo", ["model.type=one_way", "loss.gan=false"])


def test_the_developer_page_shows_the_example_model_as_it_is():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    page_text = (root / "docs" / "developing.md").read_text()
    assert "```python\n" + (root / "tests" / "example_model.py").read_text() + "```" in page_text

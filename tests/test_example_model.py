"""Adding a model is one file (tests/example_model.py) and one row in the model table: the loop
trains it, logs its losses, keeps its samples and checkpoints, and exports its generator."""

import csv

from replication import data, models
from replication.training import train

from example_model import OneWayGAN
from test_training import tiny_config


def test_a_model_in_one_file_and_one_row_trains_for_two_steps(tiny_synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setitem(models.MODELS, "one_way", models.ModelEntry(OneWayGAN, data.unpaired))
    config = tiny_config(tiny_synthetic_root, "train.epochs=1", "train.epochs_decay=0", "train.max_steps_per_epoch=2")
    config["model"]["type"] = "one_way"
    run = train(config, run_dir=tmp_path / "one_way")
    with open(run / "losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2] and {"G", "D"} <= set(rows[0])
    assert (run / "samples" / "epoch_001.png").exists()
    assert (run / "export" / "G_AtoB.keras").exists()

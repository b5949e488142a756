"""Adding a model is one file (tests/example_model.py) and one row in the model table: the loop
trains it, logs its losses, keeps its samples and checkpoints, and exports its generator."""

import csv

from replication import choices
from replication.training import train

from helpers import tiny_config


def test_a_model_in_one_file_and_one_row_trains_for_two_steps(tiny_synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setitem(choices.MODELS, "one_way", choices.ModelRow("example_model:OneWayGAN", "unpaired"))  # the row
    config = tiny_config(tiny_synthetic_root, "train.epochs=1", "train.epochs_decay=0",
                         "train.max_steps_per_epoch=2", "model.type=one_way")
    run = train(config, run_dir=tmp_path / "one_way")
    with open(run / "losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2] and {"G", "D"} <= set(rows[0])
    assert (run / "samples" / "epoch_001.png").exists()
    assert (run / "export" / "G_AtoB.keras").exists()


def test_the_developer_page_shows_the_example_model_as_it_is():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    page = (root / "docs" / "developing.md").read_text()
    assert "```python\n" + (root / "tests" / "example_model.py").read_text() + "```" in page

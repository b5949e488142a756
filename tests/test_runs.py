"""The model table, and what other commands read from a run folder: the export manifest and the generators."""

import hashlib
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from replication import data as data_lib
from replication import loading, models, runs
from replication.checkpoints import Checkpoints
from replication.cli import main
from replication.cyclegan import CycleGAN
from replication.errors import KitError

from helpers import images, tiny_config


@pytest.fixture(scope="module")
def finished_run(tiny_finished_run):
    return tiny_finished_run


@pytest.fixture(scope="module")
def unfinished_run(tiny_stopped_run):
    return tiny_stopped_run


def test_the_table_names_each_model_and_its_data():
    config = tiny_config()
    assert models.model_class(config) is CycleGAN
    assert models.entry(config).data is data_lib.unpaired


def test_every_model_meets_the_contract_written_in_models_py():
    from replication import choices

    contract = {*models.Model.__annotations__, *(n for n in vars(models.Model) if not n.startswith("_"))}
    assert {"loss_names", "train_step", "checkpoint_items", "from_config", "visuals", "sample_images"} <= contract
    for name in choices.MODELS:
        cls = models.entry_of(name).cls
        assert {member for member in contract if not hasattr(cls, member)} == set(), name
        assert cls.sample_names == tuple(n for row in cls.sample_rows.values() for n in row)
        assert set(cls.sample_captions) == set(cls.sample_names)
        assert set(cls.generator_names) <= set(choices.DIRECTIONS)
        panel_losses = [name for curves in cls.loss_panels.values() for name in curves.values()]
        assert set(panel_losses) <= set(cls.loss_names)
        assert all(set(curves) <= set(cls.generator_names) for curves in cls.loss_panels.values())


def test_visuals_are_the_named_inputs_translations_and_reconstructions():
    double, negate = (lambda x: 2 * x), (lambda x: -x)
    a, b = tf.ones((1, 4, 4, 3)), tf.fill((1, 4, 4, 3), 0.25)
    out = CycleGAN.visuals({"AtoB": double, "BtoA": negate}, a, b)
    assert tuple(out) == CycleGAN.sample_names
    expected = dict(real_A=1.0, fake_B=2.0, rec_A=-2.0, real_B=0.25, fake_A=-0.25, rec_B=-0.5)
    for name, value in expected.items():
        np.testing.assert_allclose(out[name].numpy(), value)


def test_the_export_manifest_says_which_file_serves_which_direction(finished_run):
    manifest = json.loads((finished_run / "export" / "manifest.json").read_text())

    def sha256(name):
        return hashlib.sha256((finished_run / "export" / name).read_bytes()).hexdigest()

    assert manifest == {
        "model": "cyclegan",
        "generators": {
            "AtoB": {"keras": "G_AtoB.keras", "saved_model": "G_AtoB_savedmodel", "sha256": sha256("G_AtoB.keras")},
            "BtoA": {"keras": "F_BtoA.keras", "saved_model": "F_BtoA_savedmodel", "sha256": sha256("F_BtoA.keras")},
        },
        "input_range": [-1, 1],
        "size_multiple": 4,
        "training_mode_at_test": False,
        "step": 9,
        "epoch": 3,
    }


def test_generators_of_a_finished_run_are_its_exported_files(finished_run):
    generators = loading.load_generators(finished_run)
    assert sorted(generators) == ["AtoB", "BtoA"]
    x = images(5)
    for direction, file in (("AtoB", "G_AtoB.keras"), ("BtoA", "F_BtoA.keras")):
        direct = keras.models.load_model(finished_run / "export" / file)
        t = generators[direction]
        assert (t.direction, t.size_multiple, t.step) == (direction, 4, 9)
        np.testing.assert_allclose(t(x).numpy(), direct(x, training=False).numpy(), atol=1e-6)


def test_generators_of_an_unfinished_run_come_from_its_latest_checkpoint(unfinished_run, synthetic_root):
    assert not (unfinished_run / "export").exists()
    generators = loading.load_generators(unfinished_run)
    model = models.build(tiny_config(synthetic_root))
    Checkpoints(unfinished_run / "checkpoints", model.checkpoint_items(), 0).restore_latest()
    x = images(6)
    assert generators["AtoB"].step == 4
    np.testing.assert_allclose(generators["AtoB"](x).numpy(), model.G(x, training=False).numpy(), atol=1e-6)
    np.testing.assert_allclose(generators["BtoA"](x).numpy(), model.F(x, training=False).numpy(), atol=1e-6)


def test_a_folder_without_a_run_or_weights_is_one_clear_error(tmp_path, synthetic_root):
    with pytest.raises(KitError, match="not a run folder"):
        loading.load_generators(tmp_path)
    runs.RunFolder(tmp_path / "r").prepare(tiny_config(synthetic_root))
    with pytest.raises(KitError, match="no exported generators and no checkpoint yet"):
        loading.load_generators(tmp_path / "r")


# ---------------------------------------------------------------- translate's mistakes


def write_image(folder):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (200, 10, 10)).save(folder / "red.png")
    return folder


def test_translate_refuses_a_generator_for_the_other_direction(finished_run, tmp_path, capsys):
    inputs = write_image(tmp_path / "in")
    model = finished_run / "export" / "G_AtoB.keras"
    assert main(["translate", "--model", str(model), "--direction", "BtoA", "--input", str(inputs), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "translates AtoB, not BtoA" in err and "--direction AtoB" in err
    # without --direction the manifest's direction is used
    assert main(["translate", "--model", str(model), "--input", str(inputs), "--output", str(tmp_path / "o")]) == 0


def test_translate_names_a_damaged_model_file_and_an_output_that_is_a_file(finished_run, tmp_path, capsys):
    inputs = write_image(tmp_path / "in")
    damaged = tmp_path / "G_AtoB.keras"
    damaged.write_bytes((finished_run / "export" / "G_AtoB.keras").read_bytes()[:1000])
    assert main(["translate", "--model", str(damaged), "--input", str(inputs), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is damaged" in err and str(damaged) in err
    (tmp_path / "taken").write_text("x")
    assert main(["translate", "--run", str(finished_run), "--input", str(inputs), "--output", str(tmp_path / "taken")]) == 2
    assert "is a file" in capsys.readouterr().err

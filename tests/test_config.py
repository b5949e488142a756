"""Experiments are plain data: extends chains, --set overrides, unknown keys refused."""

import pytest

from replication import config
from replication.errors import ConfigError


def test_experiment_extends_base_and_overrides_a_few_keys():
    resolved = config.resolve("cityscapes")
    assert resolved["name"] == "cityscapes"
    assert resolved["data"]["source"] == "cityscapes"
    assert resolved["data"]["crop_size"] == 128
    assert resolved["model"]["n_blocks"] == 6  # paper §7.2: 6 blocks at 128x128
    assert resolved["data"]["resize_method"] == "nearest"  # from horse2zebra, two levels up
    assert resolved["train"]["lr"] == 0.0002  # from base


@pytest.mark.parametrize("name", ["horse2zebra", "apple2orange", "summer2winter_yosemite", "monet2photo", "cityscapes", "demo"])
def test_every_experiment_resolves_to_the_same_keys_as_base(name):
    resolved = config.resolve(name)
    base = config.load_chain("base")
    assert {s: set(v) for s, v in resolved.items() if isinstance(v, dict)} == {s: set(v) for s, v in base.items()}


def test_paper_numbers_in_base():
    base = config.resolve("horse2zebra")
    assert (base["train"]["epochs"], base["train"]["epochs_decay"]) == (100, 100)
    assert (base["train"]["beta_1"], base["train"]["beta_2"], base["train"]["pool_size"]) == (0.5, 0.999, 50)
    assert (base["data"]["load_size"], base["data"]["crop_size"], base["data"]["batch_size"]) == (286, 256, 1)
    assert base["loss"]["lambda_cycle"] == 10.0 and base["loss"]["gan_mode"] == "lsgan"


def test_set_overrides_are_typed_as_yaml():
    resolved = config.resolve("horse2zebra", ["train.epochs=5", "data.flip=false", "model.upsample=resize_conv", "train.max_steps_per_epoch=null"])
    assert resolved["train"]["epochs"] == 5
    assert resolved["data"]["flip"] is False
    assert resolved["model"]["upsample"] == "resize_conv"
    assert resolved["train"]["max_steps_per_epoch"] is None


def test_unknown_override_names_the_key_and_suggests_the_right_one():
    with pytest.raises(ConfigError, match="train.epoch.*Did you mean 'epochs'"):
        config.resolve("horse2zebra", ["train.epoch=5"])
    with pytest.raises(ConfigError, match="section.key=value"):
        config.resolve("horse2zebra", ["train.epochs"])


def test_unknown_key_in_an_experiment_file_is_refused(tmp_path):
    (tmp_path / "base.yaml").write_text("train:\n  epochs: 1\n")
    (tmp_path / "mine.yaml").write_text("extends: base\ntrain:\n  epocs: 3\n")
    with pytest.raises(ConfigError, match="train.epocs.*Did you mean 'train.epochs'"):
        config.resolve("mine", experiments_dir=tmp_path)


def test_extends_loop_and_missing_experiment_are_clear(tmp_path):
    (tmp_path / "base.yaml").write_text("train:\n  epochs: 1\n")
    (tmp_path / "a.yaml").write_text("extends: b\n")
    (tmp_path / "b.yaml").write_text("extends: a\n")
    with pytest.raises(ConfigError, match="loop"):
        config.resolve("a", experiments_dir=tmp_path)
    with pytest.raises(ConfigError, match="No experiment 'nope'.*Known experiments: a, b, base"):
        config.resolve("nope", experiments_dir=tmp_path)


def test_saved_config_loads_back_equal(tmp_path):
    resolved = config.resolve("monet2photo", ["train.seed=7"])
    config.save(resolved, tmp_path / "run" / "config.yaml")
    assert config.load(tmp_path / "run" / "config.yaml") == resolved


def test_the_old_mixed_precision_key_reads_as_precision_with_a_note(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text("train:\n  precision: auto\n  epochs: 1\n")
    (tmp_path / "old.yaml").write_text("extends: base\ntrain:\n  mixed_precision: true\n")
    assert config.resolve("old", experiments_dir=tmp_path)["train"] == {"precision": "mixed_float16", "epochs": 1}
    assert "old.yaml: train.mixed_precision: True is now train.precision: 'mixed_float16'" in capsys.readouterr().err
    resolved = config.resolve("base", ["train.mixed_precision=false"], experiments_dir=tmp_path)
    assert resolved["train"]["precision"] == "float32"
    assert "--set: train.mixed_precision" in capsys.readouterr().err
    # a run folder saved by an earlier version resumes under the new name
    (tmp_path / "config.yaml").write_text("train:\n  mixed_precision: auto\n  epochs: 1\n")
    assert config.load(tmp_path / "config.yaml")["train"] == {"precision": "auto", "epochs": 1}

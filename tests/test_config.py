"""Experiments are plain data: extends chains, --set overrides, unknown keys refused."""

import pytest
import yaml

from replication import choices, config
from replication.errors import ConfigError


def test_experiment_extends_base_and_overrides_a_few_keys():
    resolved = config.resolve("cityscapes")
    assert resolved["name"] == "cityscapes"
    assert resolved["data"]["source"] == "cityscapes"
    assert resolved["data"]["crop_size"] == 128
    assert resolved["model"]["n_blocks"] == 6  # paper §7.2: 6 blocks at 128x128
    assert resolved["data"]["flip"] is True  # from horse2zebra, two levels up
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


@pytest.mark.parametrize("edit, says", [
    (lambda text: text.replace("generator: resnet", "generator: vgg"), "model.generator=vgg is not allowed"),
    (lambda text: text.replace("crop_size: 256", "crop_size: 30"), "data.crop_size=30 does not fit"),
    (lambda text: "model: [\n", "is not valid YAML"),
    (lambda text: "- a list\n", "must hold a mapping of sections"),
])
def test_a_hand_edited_saved_config_is_refused_in_one_line_naming_the_file(tmp_path, edit, says):
    path = tmp_path / "run" / "config.yaml"
    config.save(config.resolve("horse2zebra"), path)
    path.write_text(edit(path.read_text()))
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert str(err.value).startswith(f"{path} (the run's configuration, saved when it started)") and says in str(err.value)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- every value checked once, when resolved


def test_every_key_of_base_has_a_rule():
    """A key added to experiments/base.yaml needs a rule in config.rules(), or this fails."""
    base = config.load_chain("base")
    keys = {f"{section}.{key}" for section, values in base.items() for key in values}
    assert sorted(keys - set(config.rules())) == []
    assert sorted(set(config.rules()) - keys) == []  # and no rule outlives its key


def dispatch_tables() -> dict:
    """Each key whose rule is a list of values -> the table that the code acting on it reads."""
    from replication import gan

    return {
        "data.source": choices.SOURCES,  # data/sources.py: source_named imports the row's class
        "data.preprocess": choices.PREPROCESS_MODES,  # data/transforms.py: an if/else over these
        "data.resize_method": choices.RESIZE_METHODS,  # data/transforms.py: resize
        "data.direction": choices.DIRECTIONS,
        "model.type": choices.MODELS,  # models.py: entry_of imports the row's class
        "model.generator": gan.GENERATORS,
        "model.upsample": choices.UPSAMPLES,  # layers.py: u, an if/else over these
        "model.generator_norm": choices.NORMS,  # layers.py: norm_layer
        "model.discriminator": gan.DISCRIMINATORS,
        "model.discriminator_norm": choices.NORMS,
        "loss.gan_mode": choices.GAN_MODES,  # losses.py
        "loss.cycle": choices.CYCLES,  # cyclegan.py: the terms of each
        "train.precision": choices.PRECISIONS,
        "train.conv_gradients": choices.CONV_GRADIENTS,
        "train.strategy": choices.STRATEGIES,  # training.make_strategy, cluster.job_for
    }


FLAGS = ((True, False), ("auto", True, False))  # flag() and train.jit_compile: no table to keep in step


def test_every_list_of_values_a_key_may_take_is_the_table_the_code_acting_on_it_reads():
    lists = {key: rule.options for key, rule in config.rules().items() if rule.options and rule.options not in FLAGS}
    assert {key: tuple(table) for key, table in dispatch_tables().items()} == lists


def test_a_new_row_of_a_table_is_a_value_its_key_may_take(monkeypatch):
    monkeypatch.setitem(choices.SOURCES, "lsun", choices.SourceRow("replication.data.lsun:Lsun", ("name",), "LSUN {name}"))
    assert config.data_section(source="lsun")["source"] == "lsun"
    monkeypatch.delitem(choices.SOURCES, "lsun")
    with pytest.raises(ConfigError, match="data.source=lsun is not allowed"):
        config.data_section(source="lsun")


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epochs=abc", "train.epochs=abc is not allowed: train.epochs must be a whole number, 0 or more."),
        ("train.epochs=-3", "train.epochs=-3 is not allowed: train.epochs must be a whole number, 0 or more."),
        ("train.epochs=2.5", "train.epochs=2.5 is not allowed: train.epochs must be a whole number, 0 or more."),
        ("train.lr=abc", "train.lr=abc is not allowed: train.lr must be a number, 0 or more."),
        ("train.lr=.nan", "train.lr=nan is not allowed: train.lr must be a number, 0 or more."),
        ("train.beta_1=1", "train.beta_1=1 is not allowed: train.beta_1 must be a number from 0 to below 1."),
        ("model.ngf=abc", "model.ngf=abc is not allowed: model.ngf must be a whole number, 1 or more."),
        ("model.ngf=true", "model.ngf=true is not allowed: model.ngf must be a whole number, 1 or more."),
        ("train.log_every=0", "train.log_every=0 is not allowed: train.log_every must be a whole number, 1 or more."),
        ("train.threads_per_op=-1", "train.threads_per_op=-1 is not allowed: train.threads_per_op must be auto or a whole number, 0 or more."),
        ("train.threads_per_op=some", "train.threads_per_op=some is not allowed: train.threads_per_op must be auto or a whole number, 0 or more."),
        ("train.max_steps_per_epoch=0", "train.max_steps_per_epoch=0 is not allowed: train.max_steps_per_epoch must be a whole number, 1 or more, or null."),
        ("data.flip=maybe", "data.flip=maybe is not allowed: data.flip must be true or false."),
        ("data.preprocess=zoom", "data.preprocess=zoom is not allowed: data.preprocess must be resize_and_crop, crop, scale_width, scale_width_and_crop or none."),
        ("train.precision=fp8", "train.precision=fp8 is not allowed: train.precision must be auto, float32, mixed_float16 or mixed_bfloat16."),
        ("train.conv_gradients=fast", "train.conv_gradients=fast is not allowed: train.conv_gradients must be auto, native or forward."),
        ("train.jit_compile=fast", "train.jit_compile=fast is not allowed: train.jit_compile must be auto, true or false."),
        ("train.threads_per_op=true", "train.threads_per_op=true is not allowed: train.threads_per_op must be auto or a whole number, 0 or more."),
        ("train.steps_per_call=0", "train.steps_per_call=0 is not allowed: train.steps_per_call must be a whole number, 1 or more."),
        ("train.strategy=horovod", "train.strategy=horovod is not allowed: train.strategy must be default, mirrored or multi_worker."),
        ("train.pool_size=-1", "train.pool_size=-1 is not allowed: train.pool_size must be a whole number, 0 or more."),
        ("train.epochs_decay=-1", "train.epochs_decay=-1 is not allowed: train.epochs_decay must be a whole number, 0 or more."),
        ("model.type=stargan", "model.type=stargan is not allowed: model.type must be cyclegan or pix2pix."),
        ("model.generator=vgg", "model.generator=vgg is not allowed: model.generator must be resnet or unet."),
        ("model.discriminator=big", "model.discriminator=big is not allowed: model.discriminator must be patchgan or pixel."),
        ("model.dropout=1", "model.dropout=1 is not allowed: model.dropout must be auto or a number from 0 to below 1."),
        ("model.dropout=some", "model.dropout=some is not allowed: model.dropout must be auto or a number from 0 to below 1."),
        ("data.root=5", "data.root=5 is not allowed: data.root must be a name or path (text), or null."),
        ("data=5", "data=5 is not allowed: data must be a section of keys, as in experiments/base.yaml; set one of them with --set data.source=VALUE."),
    ],
)
def test_a_wrongly_typed_value_names_the_key_the_value_and_what_is_allowed(override, message):
    with pytest.raises(ConfigError) as error:
        config.resolve("demo", [override])
    assert str(error.value) == message


def test_a_section_that_is_not_a_section_in_an_experiment_file_is_refused(tmp_path):
    (tmp_path / "mine.yaml").write_text("extends: demo\ndata: 5\n")
    with pytest.raises(ConfigError, match=r"^data=5 is not allowed: data must be a section of keys"):
        config.resolve(tmp_path / "mine.yaml")


def test_a_key_given_twice_in_an_experiment_file_is_refused_naming_it_and_both_lines(tmp_path):
    (tmp_path / "mine.yaml").write_text("extends: demo\ntrain:\n  lr: 0.001\n  epochs: 2\n  lr: 0.5\n")
    with pytest.raises(ConfigError) as error:
        config.resolve(tmp_path / "mine.yaml")
    assert str(error.value) == f"{tmp_path / 'mine.yaml'}: lr is given twice, on line 3 and line 5; keep one of them."


def test_a_whole_section_set_on_the_command_line_sets_those_keys_of_it():
    resolved = config.resolve("demo", ["data={root: /my/data, load_size: 80}"])
    demo = config.resolve("demo")
    assert (resolved["data"]["root"], resolved["data"]["load_size"]) == ("/my/data", 80)
    assert {k: v for k, v in resolved["data"].items() if k not in ("root", "load_size")} == \
        {k: v for k, v in demo["data"].items() if k not in ("root", "load_size")}
    with pytest.raises(ConfigError, match=r"^Unknown key 'data.rot': data has no 'rot'. Did you mean 'root'\?$"):
        config.resolve("demo", ["data={rot: /my/data}"])


def test_numbers_yaml_reads_as_text_are_kept_as_numbers():
    resolved = config.resolve("demo", ["train.lr=2e-4", "loss.lambda_cycle=5"])
    assert resolved["train"]["lr"] == 0.0002 and isinstance(resolved["train"]["lr"], float)
    assert resolved["loss"]["lambda_cycle"] == 5


def test_nothing_to_train_is_refused():
    with pytest.raises(ConfigError, match=r"^train.epochs=0 and train.epochs_decay=0 leave nothing to train"):
        config.resolve("demo", ["train.epochs=0", "train.epochs_decay=0"])
    assert config.resolve("demo", ["train.epochs=0", "train.epochs_decay=1"])["train"]["epochs"] == 0


@pytest.mark.parametrize("zero", ["loss.lambda_identity=0", "loss.lambda_cycle=0"])
def test_a_cyclegan_without_adversarial_cycle_or_identity_loss_is_refused(zero):
    without = ["loss.gan=false", "loss.cycle=none", zero]
    with pytest.raises(ConfigError, match=r"^loss.gan=false, loss.cycle=none and an identity loss weighing 0 .* leave nothing to train"):
        config.resolve("demo", without)
    assert config.resolve("demo", without[:2])["loss"]["cycle"] == "none"  # the identity loss alone trains
    assert config.resolve("demo", ["model.type=pix2pix", *without])["model"]["type"] == "pix2pix"  # pix2pix has none of them


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.generator=resnet", "data.crop_size=30"], "data.crop_size=30 does not fit model.generator=resnet: Image size 30x30 does not fit "
         "this generator: height and width must be multiples of 4 and at least 8 (e.g. 28x28 or 32x32)."),
        (["model.generator=unet", "model.num_downs=8", "data.load_size=128", "data.crop_size=128"], "data.crop_size=128 does not fit model.generator=unet: Image "
         "size 128x128 does not fit this generator: height and width must be multiples of 256 and at least 256 (e.g. 256x256 or 512x512)."),
    ],
)
def test_a_crop_size_the_generator_cannot_take_is_refused_before_anything_is_built(overrides, message):
    with pytest.raises(ConfigError) as error:
        config.resolve("demo", overrides)
    assert str(error.value) == message
    assert config.resolve("demo", ["model.generator=unet", "model.num_downs=6", "data.crop_size=64"])


def test_the_old_mixed_precision_key_reads_as_precision_with_a_note(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text((config.EXPERIMENTS_DIR / "base.yaml").read_text())
    (tmp_path / "old.yaml").write_text("extends: base\ntrain:\n  mixed_precision: true\n")
    train = config.resolve("old", experiments_dir=tmp_path)["train"]
    assert train["precision"] == "mixed_float16" and "mixed_precision" not in train
    assert "old.yaml: train.mixed_precision: True is now train.precision: 'mixed_float16'" in capsys.readouterr().err
    resolved = config.resolve("base", ["train.mixed_precision=false"], experiments_dir=tmp_path)
    assert resolved["train"]["precision"] == "float32"
    assert "--set: train.mixed_precision" in capsys.readouterr().err
    # a run folder saved by an earlier version resumes under the new name
    saved = config.resolve("base", experiments_dir=tmp_path)
    config.save(saved, tmp_path / "config.yaml")
    text = (tmp_path / "config.yaml").read_text()
    assert "  precision: auto\n" in text
    (tmp_path / "config.yaml").write_text(text.replace("  precision: auto\n", "  mixed_precision: auto\n"))
    assert config.load(tmp_path / "config.yaml") == saved


def test_dropout_is_the_official_codes_default_for_the_model_unless_set_and_the_saved_config_says_which():
    assert config.resolve("demo")["model"]["dropout"] == 0.0  # CycleGAN: the official code's no_dropout
    assert config.resolve("demo", ["model.type=pix2pix", "loss.gan_mode=vanilla"])["model"]["dropout"] == 0.5
    assert config.resolve("pix2pix_facades")["model"]["dropout"] == 0.5
    assert config.resolve("demo", ["model.dropout=0.25"])["model"]["dropout"] == 0.25
    assert config.resolve("pix2pix_facades", ["model.dropout=0"])["model"]["dropout"] == 0


@pytest.mark.parametrize("generator, trained_with", [("unet", 0.5), ("resnet", 0.0)])
def test_a_run_saved_before_model_dropout_existed_reads_as_it_trained(generator, trained_with, tmp_path):
    saved = config.resolve("demo", [f"model.generator={generator}"])
    text = yaml.safe_dump(saved, sort_keys=False)
    (tmp_path / "config.yaml").write_text(text.replace(f"  dropout: {saved['model']['dropout']}\n", ""))
    assert "dropout" not in (tmp_path / "config.yaml").read_text()
    assert config.load(tmp_path / "config.yaml")["model"]["dropout"] == trained_with  # the U-Net always had dropout


# ---------------------------------------------------------------- extends, read beside the file that names it


def test_extends_reads_a_sibling_file_beside_the_experiment_wherever_the_user_stands(tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "sibling.yaml").write_text("extends: demo\ntrain:\n  epochs: 3\n")
    (mine / "by_path.yaml").write_text("extends: sibling.yaml\ntrain:\n  epochs_decay: 2\n")
    (mine / "by_name.yaml").write_text("extends: sibling\n")
    monkeypatch.chdir(tmp_path)  # not the experiments' folder
    by_path = config.resolve(mine / "by_path.yaml")
    assert (by_path["name"], by_path["train"]["epochs"], by_path["train"]["epochs_decay"]) == ("by_path", 3, 2)
    assert by_path["data"]["source"] == "synthetic"  # demo, from the kit's experiments/, two levels up
    assert config.resolve(mine / "by_name.yaml")["train"]["epochs"] == 3


def test_a_missing_parent_is_named_with_the_file_that_names_it(tmp_path):
    (tmp_path / "by_path.yaml").write_text("extends: gone.yaml\n")
    (tmp_path / "by_name.yaml").write_text("extends: gone\n")
    with pytest.raises(ConfigError) as error:
        config.resolve(tmp_path / "by_path.yaml")
    assert str(error.value) == f"{tmp_path / 'by_path.yaml'} extends 'gone.yaml', but there is no {tmp_path / 'gone.yaml'}."
    with pytest.raises(ConfigError) as error:
        config.resolve(tmp_path / "by_name.yaml")
    assert str(error.value) == (f"{tmp_path / 'by_name.yaml'} extends 'gone', but there is no {tmp_path / 'gone.yaml'} "
                                f"nor {config.EXPERIMENTS_DIR / 'gone.yaml'}.")


def test_a_missing_experiment_file_is_named_in_full_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=rf"^No experiment file {tmp_path / 'mine.yaml'}\. Known experiments: ") as error:
        config.resolve("mine.yaml")
    assert ".yaml.yaml" not in str(error.value)

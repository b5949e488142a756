"""pix2pix: its losses by hand, the conditional discriminator, paired jitter, dropout keyed by
(seed, step), two replicas as one, and a tiny run that trains, resumes exactly, trains alike on two
workers, exports and translates with dropout on."""

import hashlib
import json

import keras
import numpy as np
import PIL.Image
import pytest
import tensorflow as tf

from replication import config as config_lib
from replication import data as data_lib
from replication import loading, models, networks
from replication.cli import main
from replication.errors import KitError
from replication.figures import results
from replication.config import data_section
from replication.pix2pix import Pix2Pix

from helpers import assert_trained_alike, assert_workers_trained_as_one, experiment_file, gradient_image, loss_rows, save
from helpers import tiny_config as cyclegan_config

SIZE = 64  # the smallest U-Net with dropout (num_downs 6) takes multiples of 64


def tiny_config(root=None, *overrides):
    """pix2pix_synthetic shrunk to a few filters and a few steps."""
    return config_lib.resolve(
        "pix2pix_synthetic",
        [
            f"data.root={root}", f"data.load_size={SIZE + 4}", f"data.crop_size={SIZE}",
            "model.ngf=4", "model.ndf=4",
            "train.epochs=2", "train.epochs_decay=1", "train.log_every=1", "train.n_samples=2",
            "train.max_steps_per_epoch=3", "train.save_epoch_freq=1", "train.jit_compile=false",
            "train.steps_per_call=1", "train.eval_every=0", "train.precision=float32",
            *overrides,
        ],
    )


def images(seed, batch=1):
    return tf.random.stateless_uniform((batch, SIZE, SIZE, 3), (seed, 1), -1.0, 1.0)


def build(config):
    keras.utils.set_random_seed(0)
    return models.build(config)


def one_step(model, step=0):
    """One training step, run eagerly (the compiled step is exercised by the run below), on images(0), images(1)."""
    losses = model.train_step(images(0), images(1), tf.constant(step, tf.int64))
    return {name: value.numpy() for name, value in losses.items()}


def bce(logits, target):
    """Binary cross-entropy of the label against logits, averaged (the vanilla GAN loss), in NumPy."""
    x = np.asarray(logits, np.float64)
    return np.mean(np.maximum(x, 0) - x * target + np.log1p(np.exp(-np.abs(x))))


def translate_as_in_step(model, a, step, seed=0):
    model.seed = seed  # train.seed
    model.seed_dropout(step)
    return model.G(a, training=True)


def test_the_table_runs_pix2pix_on_paired_data():
    config = tiny_config()
    assert models.model_class(config) is Pix2Pix
    assert models.entry(config).data is data_lib.paired
    model = build(config)
    assert model.D.input_shape == (None, None, None, 6)  # input and output stacked
    assert len(networks.dropout_layers(model.G)) == 1  # num_downs - 5


def test_step_losses_match_a_hand_computation_before_the_update():
    model = build(tiny_config(None, "train.lr=0"))  # lr 0: weights stay, so we can recompute
    a, b = images(0), images(1)
    got = one_step(model)
    fake_b = translate_as_in_step(model, a, step=0)
    fake_scores = model.D(tf.concat([a, fake_b], -1), training=True).numpy()
    real_scores = model.D(tf.concat([a, b], -1), training=True).numpy()
    np.testing.assert_allclose(got["D_fake"], bce(fake_scores, 0.0), rtol=1e-5)
    np.testing.assert_allclose(got["D_real"], bce(real_scores, 1.0), rtol=1e-5)
    np.testing.assert_allclose(got["G_GAN"], bce(fake_scores, 1.0), rtol=1e-5)
    np.testing.assert_allclose(got["G_L1"], 100 * np.mean(np.abs(fake_b.numpy() - b.numpy())), rtol=1e-5)


def test_discriminator_is_updated_before_the_generator_scores_against_it():
    config = tiny_config()
    trained, untouched = build(config), build(config)
    a = images(0)
    got = one_step(trained)
    fake_b = translate_as_in_step(untouched, a, step=0)  # G before its update, the step's masks
    after = bce(trained.D(tf.concat([a, fake_b], -1), training=True).numpy(), 1.0)
    before = bce(untouched.D(tf.concat([a, fake_b], -1), training=True).numpy(), 1.0)
    np.testing.assert_allclose(got["G_GAN"], after, rtol=1e-5)
    assert abs(after - before) > 1e-4  # the check can fail: D did change


def test_the_conditional_discriminator_sees_the_input_as_well_as_the_output():
    model = build(tiny_config())
    output = images(2)
    one, other = model.judge(images(0), output), model.judge(images(1), output)
    assert np.abs(one.numpy() - other.numpy()).max() > 1e-3


def test_dropout_masks_are_keyed_by_seed_and_step():
    model = build(tiny_config())
    a = images(0)
    first = translate_as_in_step(model, a, step=5).numpy()
    again = translate_as_in_step(model, a, step=5).numpy()
    later = translate_as_in_step(model, a, step=6).numpy()
    other_seed = translate_as_in_step(model, a, step=5, seed=1).numpy()
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - later).max() > 1e-4 and np.abs(first - other_seed).max() > 1e-4


def test_two_replicas_of_batch_one_train_as_one_replica_of_batch_two(two_replicas):
    """Dropout masks drawn for each image's place in the global batch and batch norm over the
    global batch: the two replicas' steps are the one replica's, to float32 rounding."""
    from replication.training import compile_step

    mirrored = two_replicas
    config = tiny_config(None, "data.batch_size=2")
    losses = {}
    for strategy in (tf.distribute.get_strategy(), mirrored):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = models.build(config)
        step, losses[strategy] = compile_step(model, strategy, jit_compile=False), []
        for i in range(2):
            batch = tf.data.Dataset.from_tensors((images(2 * i, 2), images(2 * i + 1, 2)))
            a, b = next(iter(strategy.experimental_distribute_dataset(batch)))
            losses[strategy].append([step(a, b, tf.constant(i, tf.int64))[name].numpy() for name in Pix2Pix.loss_names])
    np.testing.assert_allclose(losses[mirrored], losses[tf.distribute.get_strategy()], rtol=1e-6)


def test_testing_the_model_in_training_mode_leaves_its_moving_statistics_alone():
    model = build(tiny_config())
    one_step(model)  # moving statistics that are not the initial ones
    before = [v.numpy() for v in model.G.non_trainable_weights]
    translator = loading.Translator(model.G, "AtoB", training_mode=True)
    x = images(3)
    first, second = translator(x).numpy(), translator(x).numpy()
    assert np.abs(first - second).max() > 1e-4  # dropout on, fresh masks at each call
    for kept, now in zip(before, model.G.non_trainable_weights):
        np.testing.assert_array_equal(kept, now.numpy())
    model.G(x, training=True)  # the check can fail: a plain training-mode call moves them
    assert any(not np.array_equal(kept, now.numpy()) for kept, now in zip(before, model.G.non_trainable_weights))


def test_paired_jitter_is_the_same_crop_and_flip_on_both_images(tmp_path):
    # A and B halves share red = 8x, green = 8y; their blue differs, so they are different images
    a = gradient_image(16, 16)
    b = a.copy()
    b[..., 2] = 200
    for split in ("train", "test"):
        for i in range(4):
            save(tmp_path / split / f"{i}.png", np.concatenate([a, b], axis=1))
    ds = data_lib.paired(data_section(source="paired", root=str(tmp_path), preprocess="crop", crop_size=12, flip=True, batch_size=1))
    views = set()
    for epoch in range(4):
        for x, y in ds.epoch(epoch).as_numpy_iterator():
            np.testing.assert_array_equal(x[..., :2], y[..., :2])
            views.add(x[0, :2, :2, :2].tobytes())
    assert len(views) >= 4  # crops and flips did vary


# ---------------------------------------------------------------- a tiny run


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    return data_lib.write_synthetic(tmp_path_factory.mktemp("data") / "synthetic", seed=0, size=SIZE, n_train=8, n_test=2)


# The tiny run's settings: batches of 2, each image with its own dropout masks (so two workers can
# share one); its quality log tests G after each epoch.
RUN = ("data.batch_size=2", "train.eval_every=1")


@pytest.fixture(scope="module")
def straight_run(synthetic_root, tmp_path_factory):
    from replication.training import train

    return train(tiny_config(synthetic_root, *RUN), run_dir=tmp_path_factory.mktemp("runs") / "pix2pix")


def test_a_run_logs_the_four_losses_and_samples_input_output_and_truth(straight_run, synthetic_root):
    rows = loss_rows(straight_run)
    assert list(rows[0]) == ["step", "epoch", "G_GAN", "G_L1", "D_real", "D_fake", "lr"]
    assert len(rows) == 9
    with np.load(straight_run / "samples" / "epoch_003.npz") as raw:
        assert tuple(raw.files) == Pix2Pix.sample_names
        truth = data_lib.paired(tiny_config(synthetic_root)["data"]).samples(2)[1].numpy()
        np.testing.assert_array_equal(raw["real_B"], truth)  # the ground truth, testA_truth/


def test_resume_is_exact_with_dropout(straight_run, synthetic_root, tmp_path):
    from replication.training import train

    config = tiny_config(synthetic_root, *RUN)
    train(config, run_dir=tmp_path, until_step=3)  # stops at the end of epoch 1, after its quality log
    train(config, run_dir=tmp_path, until_step=4)  # stops inside epoch 2
    train(config, run_dir=tmp_path)
    assert_trained_alike(tmp_path, straight_run, generators=("G_AtoB",))
    assert (tmp_path / "eval.csv").read_text() == (straight_run / "eval.csv").read_text()


def test_two_workers_train_as_one_with_dropout_and_batch_norm_over_the_global_batch(straight_run, synthetic_root, tmp_path, launcher_env):
    workers = tmp_path / "workers"
    config = experiment_file(tmp_path, tiny_config(synthetic_root, *RUN))
    assert main(["train", str(config), "--run-dir", str(workers), "--workers", "2"]) == 0
    assert_workers_trained_as_one(workers, straight_run, generators=("G_AtoB",))


def test_the_export_says_dropout_stays_on_and_translate_runs_it_so(straight_run, tmp_path):
    manifest = json.loads((straight_run / "export" / "manifest.json").read_text())
    assert manifest["model"] == "pix2pix" and manifest["training_mode_at_test"] is True
    sha256 = hashlib.sha256((straight_run / "export" / "G_AtoB.keras").read_bytes()).hexdigest()
    assert manifest["generators"] == {"AtoB": {"keras": "G_AtoB.keras", "saved_model": "G_AtoB_savedmodel", "sha256": sha256}}
    assert manifest["size_multiple"] == SIZE
    translator = loading.load_generators(straight_run)["AtoB"]
    x = images(7)
    first, second = translator(x).numpy(), translator(x).numpy()
    assert np.abs(first - second).max() > 1e-4  # fresh dropout masks at every call
    inference = translator.generator(x, training=False).numpy()
    assert np.abs(first - inference).max() > 1e-4

    save(tmp_path / "in" / "scene.png", np.full((SIZE, SIZE + 10, 3), 90, np.uint8))
    assert main(["translate", "--run", str(straight_run), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "scene.png").exists()


def test_a_paired_model_is_tested_against_the_ground_truth(synthetic_root):
    config = tiny_config(synthetic_root)
    inputs = list(models.test_images(config, "A", SIZE).as_numpy_iterator())
    truths = list(models.test_images(config, "B", SIZE).as_numpy_iterator())
    assert [name for _, name in inputs] == [name for _, name in truths] == [b"a_0000.png", b"a_0001.png"]
    expected = np.asarray(PIL.Image.open(synthetic_root / "testA_truth" / "a_0000.png"), np.float32) / 127.5 - 1
    np.testing.assert_allclose(truths[0][0][0], expected, atol=1e-6)

    # CycleGAN (unpaired: its test B are other scenes) and pix2pix translate the same A images,
    # so `figures --compare` may set them side by side from A to B, and only so.
    folders = ["runs/cyclegan", "runs/pix2pix"]
    configs = [cyclegan_config(synthetic_root, f"data.crop_size={SIZE}", f"data.load_size={SIZE + 4}"), config]
    pairs = results.same_test_images(folders, configs, SIZE, 2, ["AtoB"])
    assert [a[1] for _, _, a, _ in pairs] == ["a_0000.png", "a_0001.png"]
    with pytest.raises(KitError, match="tested on other images"):
        results.same_test_images(folders, configs, SIZE, 2, ["AtoB", "BtoA"])

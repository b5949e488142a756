"""The CycleGAN step and the training loop: losses, XLA, mixed precision, replicas,
logs, checkpoints, exact resume, several steps per call, interruption, divergence, export."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from replication import config as config_lib
from replication import schedule
from replication.checkpoints import Checkpoints
from replication.cyclegan import CycleGAN
from replication.errors import ConfigError, DataError
from replication.training import TrainingDiverged, compile_step, compile_steps, train

from helpers import SIZE, assert_trained_alike, build, images, loss_rows, patch_calls, tiny_config

def weights(model):
    return [w.numpy() for w in model.generator_variables + model.discriminator_variables]


def run_steps(model, n, strategy=None, jit=False, batch=1, first=0):
    strategy = strategy or tf.distribute.get_strategy()
    step = compile_step(model, strategy, jit)
    out = []
    for i in range(first, first + n):
        a, b = images(2 * i, batch), images(2 * i + 1, batch)
        if strategy.num_replicas_in_sync > 1:
            dataset = tf.data.Dataset.from_tensors((a, b))
            a, b = next(iter(strategy.experimental_distribute_dataset(dataset)))
        out.append({k: v.numpy() for k, v in step(a, b, tf.constant(i, tf.int64)).items()})
    return out


def first_step_gradients(model) -> dict:
    """{network: [gradient of each weight]} of the step just taken, the first: Adam's first moment
    starts at zero, so after one step it holds (1 - beta_1) times the gradient."""
    networks = {"G": model.G, "F": model.F, "D_X": model.D_X, "D_Y": model.D_Y}
    moments = {}
    for optimizer, variables in zip(model.optimizers, (model.generator_variables, model.discriminator_variables)):
        assert int(optimizer.iterations.numpy()) == 1
        first_moments = [v for v in optimizer.variables if v.path.endswith("_momentum")]
        moments.update({id(v): m.numpy() / (1 - optimizer.beta_1) for v, m in zip(variables, first_moments, strict=True)})
    return {name: [moments[id(v)] for v in net.trainable_variables] for name, net in networks.items()}


# float32's unit roundoff
UNIT_ROUNDOFF = 2.0**-24


def assert_same_gradients(expected: dict, got: dict, accumulations: int):
    """Each network's gradients computed two ways agree up to the rounding of their sums.

    A sum of K float32 terms, added in any order, is off by at most about K * u times the sum of
    the terms' magnitudes (u the unit roundoff). Kernels differ in their order (oneDNN, Eigen, XLA,
    a forward convolution), so the same gradient computed two ways may differ by that much. The
    bound is taken relative to the network's largest gradient, not each tensor's own: the biases of
    the convolutions that instance norm follows have a gradient that is exactly zero in exact
    arithmetic, so theirs is rounding alone and has no scale of its own. K is the longest sum of
    the step, a kernel gradient's sum over the batch and the output pixels.
    """
    for network in expected:
        scale = max(np.abs(g).max() for g in expected[network])
        worst = max(np.abs(e - g).max() for e, g in zip(expected[network], got[network], strict=True))
        assert worst <= accumulations * UNIT_ROUNDOFF * scale, (
            f"{network}: gradients differ by {worst:.3g}, more than rounding allows "
            f"({accumulations} * u * {scale:.3g} = {accumulations * UNIT_ROUNDOFF * scale:.3g})")


def assert_same_training(expected, got, steps, lr=0.0002):
    """Weights after the same steps computed two ways are within Adam's largest possible steps of
    each other: each update is at most about lr, whatever the gradient (Adam divides by sqrt(v)),
    so where a gradient is rounding alone its update's sign can differ between two computations."""
    diff = np.concatenate([np.abs(e - g).ravel() for e, g in zip(expected, got)])
    assert diff.max() <= 2 * lr * steps


ACCUMULATIONS = SIZE * SIZE  # batch 1 times the largest conv's output pixels


@pytest.fixture(scope="module")
def plain_steps():
    """The tiny model's first 3 steps, one compiled step at a time: (weights before, the first
    step's gradients, each step's losses, weights after). The other ways of computing the steps
    are held to it."""
    model = build(tiny_config())
    before = weights(model)
    losses = run_steps(model, 1)
    gradients = first_step_gradients(model)
    losses += run_steps(model, 2, first=1)
    return before, gradients, losses, weights(model)


def test_step_returns_the_eight_named_finite_losses_and_updates_every_network(plain_steps):
    before, _, losses, after = plain_steps
    assert set(losses[-1]) == {"D_X", "G", "cycle_X", "idt_X", "D_Y", "F", "cycle_Y", "idt_Y"}
    assert all(np.isfinite(v) and v.dtype == np.float32 for v in losses[-1].values())
    assert losses[-1]["idt_X"] > 0
    changed = [not np.array_equal(b, a) for b, a in zip(before, after)]
    assert all(changed)


def test_identity_weight_zero_removes_the_identity_terms():
    model = build(tiny_config(None, "loss.lambda_identity=0"))
    losses = run_steps(model, 1)[0]
    assert losses["idt_X"] == 0.0 and losses["idt_Y"] == 0.0


def test_adam_updates_weights_as_the_official_codes_pytorch_adam():
    """Three steps of the kit's Adam against PyTorch's update rule written out in NumPy, with the
    official code's settings (lr 2e-4, betas 0.5 and 0.999, epsilon 1e-8), on gradients as small as
    those of the convolutions that instance norm follows, where epsilon's placement matters."""
    from replication import gan

    train_cfg = config_lib.resolve("horse2zebra")["train"]
    assert train_cfg["epsilon"] == 1e-8
    lr, b1, b2, eps = 2e-4, 0.5, 0.999, 1e-8
    gradients = np.array([[1e-7, -3e-8, 2e-6], [5e-8, 1e-7, -1e-6], [-2e-7, 4e-8, 3e-6]])
    weight = tf.Variable(np.zeros(3, np.float32))
    optimizer = gan.adam(train_cfg)
    expected, m, v = np.zeros(3), np.zeros(3), np.zeros(3)
    for t, g in enumerate(gradients, start=1):
        optimizer.apply_gradients([(tf.constant(g, tf.float32), weight)])
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
        expected -= lr / (1 - b1**t) * m / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(weight.numpy(), expected, rtol=1e-5)


def test_step_losses_match_a_hand_computation_before_the_update():
    model = build(tiny_config(None, "train.lr=0"))  # lr 0: weights stay, so we can recompute
    a, b = images(0), images(1)
    got = run_steps(model, 1)[0]
    fake_b, fake_a = model.G(a), model.F(b)
    lsgan = lambda s, t: np.mean((s.numpy() - t) ** 2)  # noqa: E731
    np.testing.assert_allclose(got["G"], lsgan(model.D_Y(fake_b), 1), rtol=1e-5)
    np.testing.assert_allclose(got["cycle_X"], 10 * np.mean(np.abs(model.F(fake_b) - a)), rtol=1e-5)
    np.testing.assert_allclose(got["idt_Y"], 5 * np.mean(np.abs(model.G(b) - b)), rtol=1e-5)
    # the buffer is still filling, so D sees this step's fakes; the D objective is halved
    expected_d_y = 0.5 * (lsgan(model.D_Y(b), 1) + lsgan(model.D_Y(fake_b), 0))
    np.testing.assert_allclose(got["D_Y"], expected_d_y, rtol=1e-5)


def assert_trains_as_the_plain_steps(model, plain_steps, jit=False):
    _, plain_gradients, plain_losses, plain_weights = plain_steps
    losses = run_steps(model, 1, jit=jit)
    assert_same_gradients(plain_gradients, first_step_gradients(model), ACCUMULATIONS)
    losses += run_steps(model, 2, jit=jit, first=1)
    for name in plain_losses[-1]:
        np.testing.assert_allclose(losses[-1][name], plain_losses[-1][name], rtol=1e-4, atol=1e-5)
    assert_same_training(plain_weights, weights(model), steps=3)


def test_jit_compiled_step_matches_the_plain_step(plain_steps):
    assert_trains_as_the_plain_steps(build(tiny_config()), plain_steps, jit=True)


def test_forward_conv_gradients_train_as_tensorflows_gradients(plain_steps):
    forward = build(tiny_config(), conv_gradients="forward")
    stride_1 = [l for l in forward.G.layers + forward.D_X.layers if getattr(l, "forward_gradients", False)]
    assert len(stride_1) == 2 + 2 + 2  # the two c7s1 convs, one R block's two, C(stride 1) and the score conv
    assert_trains_as_the_plain_steps(forward, plain_steps)


def test_the_gradient_comparison_catches_a_gradient_off_by_a_thousandth(plain_steps):
    """The tolerance above is tight enough to matter: a cycle loss weighted 10.01 instead of 10
    changes G's and F's gradients by a small fraction of the cycle term's share, and is caught."""
    _, plain_gradients, _, _ = plain_steps
    model = build(tiny_config(None, "loss.lambda_cycle=10.01"))
    run_steps(model, 1)
    with pytest.raises(AssertionError, match="more than rounding allows"):
        assert_same_gradients(plain_gradients, first_step_gradients(model), ACCUMULATIONS)


@pytest.mark.parametrize("precision, half", [("mixed_float16", "float16"), ("mixed_bfloat16", "bfloat16")])
def test_mixed_precision_computes_convs_in_half_and_keeps_norms_outputs_and_losses_in_float32(precision, half):
    model = build(tiny_config(), precision=precision)
    convs = [l for m in (model.G, model.D_X) for l in m.layers if isinstance(l, keras.layers.Conv2D)]
    assert convs and all(l.compute_dtype == half and l.variable_dtype == "float32" for l in convs)
    norms = [l for l in model.G.layers if isinstance(l, keras.layers.GroupNormalization)]
    assert norms and all(l.compute_dtype == "float32" for l in norms)
    assert model.G.get_layer("tanh").compute_dtype == "float32"
    a, b = images(0), images(1)
    assert model.G(a).dtype == tf.float32 and model.D_Y(b).dtype == tf.float32
    generator_losses, fake_x, fake_y = model.generator_losses(a, b)
    assert fake_x.dtype == fake_y.dtype == tf.float32
    assert all(v.dtype == tf.float32 for v in generator_losses.values())
    # float16 needs its loss scaled; bfloat16 has float32's exponent range and needs none
    assert isinstance(model.optimizer_G, keras.optimizers.LossScaleOptimizer) == (precision == "mixed_float16")
    assert keras.config.dtype_policy().name == "float32"  # build put the global policy back


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_steps_give_finite_float32_losses_and_a_checkpoint_keeps_optimizer_and_loss_scale(precision, tmp_path):
    model = build(tiny_config(), precision=precision)
    before = weights(model)
    losses = run_steps(model, 6)
    assert all(v.dtype == np.float32 and np.isfinite(v) for step in losses for v in step.values())
    if precision == "mixed_float16":
        # Dynamic loss scaling starts at 2**15 and skips the updates whose float16 gradients
        # overflow, halving the scale each time, until the gradients fit.
        assert float(model.optimizer_G.dynamic_scale.numpy()) < 2**15
    else:
        assert int(model.optimizer_G.iterations.numpy()) == 6  # no step skipped
    assert any(not np.array_equal(b, a) for b, a in zip(before, weights(model)))

    Checkpoints(tmp_path, model.checkpoint_items(), save_epoch_freq=0).save(step=6)
    restored = build(tiny_config(), precision=precision)
    Checkpoints(tmp_path, restored.checkpoint_items(), save_epoch_freq=0).restore_latest()
    for saved, loaded in ((model.optimizer_G, restored.optimizer_G), (model.optimizer_D, restored.optimizer_D)):
        if precision == "mixed_float16":  # G's scale came down from 2**15 (above), so its restore is seen
            assert float(loaded.dynamic_scale.numpy()) == float(saved.dynamic_scale.numpy())
        assert int(loaded.iterations.numpy()) == int(saved.iterations.numpy())
        for a, b in zip(saved.variables, loaded.variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(weights(model), weights(restored)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dropout", ["0", "0.5"])  # with dropout, each image's masks do not depend on its replica
def test_two_replicas_of_batch_one_equal_one_replica_of_batch_two(dropout, two_replicas):
    mirrored = two_replicas
    config = tiny_config(None, "data.batch_size=2", f"model.dropout={dropout}")
    single, double = build(config), build(config, mirrored)
    assert isinstance(double.G.trainable_variables[0].value, tf.distribute.DistributedValues)
    for s, d in zip(weights(single), weights(double)):
        np.testing.assert_array_equal(s, d)
    run_steps(single, 1, batch=2)
    run_steps(double, 1, mirrored, batch=2)
    assert_same_gradients(first_step_gradients(single), first_step_gradients(double), 2 * ACCUMULATIONS)
    single_losses = run_steps(single, 1, batch=2, first=1)
    double_losses = run_steps(double, 1, mirrored, batch=2, first=1)
    for name in single_losses[-1]:
        np.testing.assert_allclose(double_losses[-1][name], single_losses[-1][name], rtol=1e-4, atol=1e-6)
    assert_same_training(weights(single), weights(double), steps=2)


def test_jit_with_several_cpu_replicas_is_refused_saying_why(two_replicas):
    mirrored = two_replicas
    model = build(tiny_config(None, "data.batch_size=2"), mirrored)
    with pytest.raises(ConfigError, match="jit_compile with several replicas needs every replica on a GPU"):
        compile_step(model, mirrored, jit_compile=True)


def test_several_steps_per_call_train_as_the_same_steps_one_by_one(plain_steps):
    _, _, expected, one_by_one = plain_steps
    in_calls = build(tiny_config())
    batches = tf.data.Dataset.from_tensor_slices(
        (tf.concat([images(2 * i) for i in range(3)], 0), tf.concat([images(2 * i + 1) for i in range(3)], 0))
    ).batch(1, drop_remainder=True)
    call = compile_steps(in_calls, tf.distribute.get_strategy(), jit_compile=False, steps_per_call=2)
    iterator = iter(batches)
    rows = [call(iterator, tf.constant(0, tf.int64), tf.constant(2, tf.int64)),
            call(iterator, tf.constant(2, tf.int64), tf.constant(1, tf.int64))]
    got = np.concatenate([r.numpy() for r in rows])
    assert got.shape == (3, 8)
    np.testing.assert_array_equal(got, [[step[name] for name in in_calls.loss_names] for step in expected])
    for a, b in zip(one_by_one, weights(in_calls)):
        np.testing.assert_array_equal(a, b)
    assert call.experimental_get_tracing_count() == 2  # the call of 2 steps, and the one-step call


# ---------------------------------------------------------------- the loop, end to end


@pytest.fixture(scope="module")
def straight_run(tiny_finished_run):
    """3 epochs of 3 steps, trained in one go (conftest's, shared with test_runs.py)."""
    return tiny_finished_run


def test_run_folder_describes_itself(straight_run, synthetic_root):
    config = tiny_config(synthetic_root)
    assert config_lib.load(straight_run / "config.yaml") == config
    assert "tensorflow" in (straight_run / "versions.json").read_text()
    rows = loss_rows(straight_run)
    assert [int(r["step"]) for r in rows] == list(range(1, 10))
    assert list(rows[0]) == ["step", "epoch", "D_X", "G", "cycle_X", "idt_X", "D_Y", "F", "cycle_Y", "idt_Y", "lr"]
    # the schedule, per epoch: 2 constant epochs, then 1 of linear decay
    for row in rows:
        assert float(row["lr"]) == pytest.approx(schedule.learning_rate(0.0002, int(row["epoch"]) - 1, 2, 1))
    assert float(rows[-1]["lr"]) == pytest.approx(0.0001)
    assert any((straight_run / "tensorboard").iterdir())
    assert "finished" in (straight_run / "run.log").read_text()


def test_every_epoch_saves_the_same_test_images_translated(straight_run):
    for epoch in (1, 2, 3):
        assert (straight_run / "samples" / f"epoch_{epoch:03d}.png").exists()
        with np.load(straight_run / "samples" / f"epoch_{epoch:03d}.npz") as raw:
            assert sorted(raw.files) == sorted(CycleGAN.sample_names)
            assert raw["fake_B"].shape == (2, SIZE, SIZE, 3)
            first_real = raw["real_A"] if epoch == 1 else first_real
            np.testing.assert_array_equal(raw["real_A"], first_real)


def test_checkpoints_keep_the_latest_two_and_one_every_save_epoch_freq(straight_run):
    state = tf.train.get_checkpoint_state(str(straight_run / "checkpoints"))
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["ckpt-6", "ckpt-9"]
    kept = tf.train.get_checkpoint_state(str(straight_run / "checkpoints" / "every_epoch"))
    assert [os.path.basename(p) for p in kept.all_model_checkpoint_paths] == ["epoch-1", "epoch-2", "epoch-3"]


def test_exported_generators_load_without_the_kit_config_and_translate(straight_run):
    generator = keras.models.load_model(straight_run / "export" / "G_AtoB.keras")
    assert generator.dtype_policy.name == "float32"
    assert generator(images(0)).shape == (1, SIZE, SIZE, 3)


def record_bar_updates(monkeypatch) -> list:
    """(epoch, steps done, traced) of every progress bar update the loop makes."""
    import replication.training as training

    updates = []

    class Recording(training.ProgressBar):
        def update(self, done, losses=None, traced=False):
            updates.append((self.description, done, traced))
            super().update(done, losses, traced)

    monkeypatch.setattr(training, "ProgressBar", Recording)
    return updates


def test_resume_is_exact_whatever_the_steps_per_call(straight_run, synthetic_root, tmp_path, monkeypatch):
    # straight_run trains one step per call. Here calls of 2: steps 1-2, 3 (epoch 1's end), then 4
    # (asked to stop inside epoch 2); resumed in calls of 3: steps 5-6 (epoch 2's rest), 7-9.
    updates, compiled = record_bar_updates(monkeypatch), patch_calls(monkeypatch, lambda first, count, call: call())
    train(tiny_config(synthetic_root, "train.steps_per_call=2"), run_dir=tmp_path, until_step=4)
    # the first call of 2 traced, then the first shorter one (its one-step call), never again: the
    # bar leaves those out of its rate
    assert updates == [("epoch 1/3", 2, True), ("epoch 1/3", 3, True), ("epoch 2/3", 1, False)]
    assert compiled[0].experimental_get_tracing_count() == 2
    assert re.search(
        r"building the training step: about a minute on a CPU\n.* built the training step in \d+ s\n",
        (tmp_path / "run.log").read_text(),
    )
    assert (tmp_path / "run.log").read_text().count("building the training step") == 2
    assert (tmp_path / "samples" / "epoch_001.png").exists()
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-4")
    assert len(loss_rows(tmp_path)) == 4
    train(tiny_config(synthetic_root, "train.steps_per_call=3"), run_dir=tmp_path)
    assert_trained_alike(tmp_path, straight_run)
    kept = tf.train.get_checkpoint_state(str(tmp_path / "checkpoints" / "every_epoch"))
    assert [os.path.basename(p) for p in kept.all_model_checkpoint_paths] == ["epoch-1", "epoch-2", "epoch-3"]
    assert "resumed from" in (tmp_path / "run.log").read_text()


def test_a_20_step_run_of_8_step_epochs_in_calls_of_5_builds_its_step_twice(synthetic_root, tmp_path):
    # as `train demo --until-step 20` on 8 images per domain: calls of 5, 3 (epoch 1's end), 5, 3, 4
    run = train(tiny_config(synthetic_root, "train.max_steps_per_epoch=null", "train.steps_per_call=5"),
                run_dir=tmp_path, until_step=20)
    assert [int(r["step"]) for r in loss_rows(run)] == list(range(1, 21))
    assert [int(r["epoch"]) for r in loss_rows(run)] == [1] * 8 + [2] * 8 + [3] * 4
    assert (run / "run.log").read_text().count("building the training step") == 2  # calls of 5, and of 1


def test_the_demos_first_steps_in_calls_of_5_are_the_same_in_two_runs(tmp_path):
    """Two models built alike train alike, bit for bit, in calls of 5 steps (steps made conditional
    inside one trace did not: they parted in the sixth digit within three steps)."""
    from replication import data as data_lib, models

    root = data_lib.write_synthetic(tmp_path / "synthetic", seed=0, size=64, n_train=10, n_test=1)
    config = config_lib.resolve("demo", [f"data.root={root}"])
    data = models.entry(config).data(config["data"])

    def first_steps():
        keras.utils.set_random_seed(0)
        model = models.build(config)
        call = compile_steps(model, tf.distribute.get_strategy(), jit_compile=False, steps_per_call=5)
        batches = iter(data.epoch(1).take(10))
        return np.concatenate([call(batches, tf.constant(first, tf.int64), tf.constant(5, tf.int64)).numpy() for first in (0, 5)])

    np.testing.assert_array_equal(first_steps(), first_steps())


def test_a_dataset_whose_file_names_are_not_utf8_trains(synthetic_root, tmp_path, monkeypatch):
    root = shutil.copytree(synthetic_root, tmp_path / "data")
    name = os.fsdecode(b"caf\xe9\xff.png")  # a name Linux allows
    for split in ("trainA", "testA", "testA_truth"):  # a test image and its truth keep one name
        sorted((root / split).iterdir())[0].rename(root / split / name)

    def calls_without_the_step(model, *args):  # the pipeline as training reads it, without tracing a step
        def call(batches, first_step, count):
            for _ in range(int(count)):
                next(batches)
            return tf.zeros([int(count), len(model.loss_names)])
        return call

    monkeypatch.setattr("replication.training.compile_steps", calls_without_the_step)
    # eval_every reads the test images and their truths, by name, as the loop starts
    run = train(tiny_config(root, "train.eval_every=1"), run_dir=tmp_path / "run", until_step=2)
    assert [int(r["step"]) for r in loss_rows(run)] == [1, 2]


def test_a_training_sets_its_threads_per_op_before_it_reads_its_data(synthetic_root, tmp_path):
    """Reading the data starts TensorFlow, which takes threads per op only before it starts."""
    script = (
        "import sys\n"
        "sys.path.insert(0, 'tests')\n"
        "from replication import training\n"
        "from helpers import tiny_config\n"
        "training.Loop.run = lambda self, step, until_step: None  # no step to build\n"
        "training.train(tiny_config(sys.argv[1], 'train.threads_per_op=1'), run_dir=sys.argv[2])\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", script, str(synthetic_root), str(tmp_path / "run")],
                          capture_output=True, text=True, cwd=root, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    settings = json.loads((tmp_path / "run" / "versions.json").read_text())["settings"]
    assert settings["threads_per_op"] == {"value": 1, "reason": "set in the config"}


def mixed_config(synthetic_root, precision):
    """2 epochs of 3 steps under `precision`."""
    return tiny_config(synthetic_root, f"train.precision={precision}", "train.epochs=1", "train.epochs_decay=1")


def assert_resumed_as_straight(resumed, straight):
    assert [int(r["step"]) for r in loss_rows(resumed)] == list(range(1, 7))
    assert_trained_alike(resumed, straight, epochs=())


def test_resume_is_exact_under_mixed_bfloat16(synthetic_root, tmp_path):
    # mixed_float16's resume is held to its straight run below, where auto picks it
    config = mixed_config(synthetic_root, "mixed_bfloat16")
    straight = train(config, run_dir=tmp_path / "straight")
    train(config, run_dir=tmp_path / "resumed", until_step=4)
    resumed = train(config, run_dir=tmp_path / "resumed")
    assert_resumed_as_straight(resumed, straight)
    assert "precision mixed_bfloat16 (set in the config)" in (resumed / "run.log").read_text()
    settings = json.loads((resumed / "versions.json").read_text())["settings"]
    assert settings["precision"] == {"value": "mixed_bfloat16", "reason": "set in the config"}
    assert settings["jit_compile"]["value"] is False
    # what TensorFlow runs with, whether training set it or found it set (0: TensorFlow's default)
    assert settings["threads_per_op"]["value"] == tf.config.threading.get_intra_op_parallelism_threads()


def test_a_run_started_under_mixed_float16_by_auto_resumes_on_a_cpu_in_mixed_float16_exactly(synthetic_root, tmp_path, monkeypatch):
    from replication.speed import machine
    from replication.checkpoints import loss_scale_in

    straight = train(mixed_config(synthetic_root, "mixed_float16"), run_dir=tmp_path / "straight")
    assert "precision mixed_float16 (set in the config)" in (straight / "run.log").read_text()
    auto, resumed = mixed_config(synthetic_root, "auto"), tmp_path / "resumed"
    cpu = machine.detect()
    monkeypatch.setattr(machine, "detect", lambda: machine.Machine(cpu.cpu_flags, ((7, 5),), cpu.cpu_cores))  # a T4
    train(auto, run_dir=resumed, until_step=4)
    assert loss_scale_in(resumed / "checkpoints") is True
    monkeypatch.setattr(machine, "detect", lambda: cpu)  # resumed where auto would pick float32 or bfloat16
    train(auto, run_dir=resumed)
    log = (resumed / "run.log").read_text()
    assert "precision mixed_float16 (kept: the run's checkpoints were written under mixed_float16" in log
    assert "finished" in log
    assert_resumed_as_straight(resumed, straight)


def test_sigterm_during_a_call_stops_at_its_end_with_a_checkpoint_and_the_run_resumes(synthetic_root, tmp_path, monkeypatch):
    def sigterm_as_steps_1_and_2_start(first, count, call):
        if first == 0:
            os.kill(os.getpid(), signal.SIGTERM)  # handled at once; the call still runs to its end
        return call()

    patch_calls(monkeypatch, sigterm_as_steps_1_and_2_start)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(synthetic_root, "train.steps_per_call=2"), run_dir=tmp_path)
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-2")
    assert [int(r["step"]) for r in loss_rows(tmp_path)] == [1, 2]
    assert "stopped on SIGTERM" in (tmp_path / "run.log").read_text()
    assert recorded_state(tmp_path) == {"state": "stopped", "step": 2, "how": "SIGTERM", "steps_per_epoch": 3}
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back

    monkeypatch.undo()
    train(tiny_config(synthetic_root, "train.epochs=1", "train.epochs_decay=0"), run_dir=tmp_path)
    assert [int(r["step"]) for r in loss_rows(tmp_path)] == [1, 2, 3]
    assert recorded_state(tmp_path) == {"state": "finished", "step": 3, "how": "", "steps_per_epoch": 3}


def recorded_state(run_dir) -> dict:
    """RUN/state.json as training wrote it, without its time."""
    recorded = json.loads((run_dir / "state.json").read_text())
    assert recorded.pop("at").startswith("20")
    return recorded


def test_a_non_finite_loss_stops_the_run_by_its_own_step_before_the_next_checkpoint(synthetic_root, tmp_path, monkeypatch):
    def nan_at_step_5(first, count, call):
        losses = call()
        if first <= 4 < first + count:
            losses = tf.tensor_scatter_nd_update(losses, [[4 - first, 0]], [float("nan")])  # column 0: D_X
        return losses

    compiled = patch_calls(monkeypatch, nan_at_step_5)
    # epochs of 3 steps, a row every 4th: step 5 is neither logged nor an epoch's end; the NaN is
    # caught at epoch 2's end (step 6), before its checkpoint, and named by its own step
    with pytest.raises(TrainingDiverged, match=r"D_X=nan at step 5: .* the last good checkpoint is \S*ckpt-3\. "):
        train(tiny_config(synthetic_root, "train.log_every=4"), run_dir=tmp_path)
    assert [int(r["step"]) for r in loss_rows(tmp_path)] == [4]
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-3")
    assert recorded_state(tmp_path)["how"].startswith("a fault: TrainingDiverged: Loss D_X=nan at step 5: training diverged.")
    # the call was traced once, not again for the second epoch's new dataset
    assert compiled[0].experimental_get_tracing_count() == 1


SAVE_THAT_FAILS = """
import resource, signal, sys
import tensorflow as tf
from replication.checkpoints import Checkpoints

weight = tf.Variable(1.0)
checkpoints = Checkpoints(sys.argv[1], {"weight": weight}, save_epoch_freq=0)
checkpoints.save(step=1)
weight.assign(2.0)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing the process
resource.setrlimit(resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))  # every file ends at its first byte
try:
    checkpoints.save(step=2)
except tf.errors.OpError as err:
    print(type(err).__name__)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="file-size limits are POSIX")
def test_a_save_that_fails_or_is_cut_short_leaves_a_checkpoint_that_restores(tmp_path):
    # a save whose writes fail, as on a full disk: nothing of step 2 is listed, step 1 stays whole
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": root}
    done = subprocess.run([sys.executable, "-c", SAVE_THAT_FAILS, str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    assert (done.returncode, done.stdout) == (0, "OutOfRangeError\n"), done.stderr
    again = Checkpoints(tmp_path, {"weight": tf.Variable(0.0)}, save_epoch_freq=0)
    first = str(tmp_path / "ckpt-1")
    assert again.latest.latest_checkpoint == first
    assert again.restore_latest() == first
    assert again.step == 1 and float(again.checkpoint.weight.numpy()) == 1.0

    # killed after step 2's files are in place, before the index names them: the next start finds it
    index = (tmp_path / "checkpoint").read_bytes()
    again.checkpoint.weight.assign(2.0)
    again.save(step=2)
    (tmp_path / "checkpoint").write_bytes(index)
    assert tf.train.latest_checkpoint(str(tmp_path)) == first
    again = Checkpoints(tmp_path, {"weight": tf.Variable(0.0)}, save_epoch_freq=0)
    assert again.latest.latest_checkpoint == str(tmp_path / "ckpt-2")  # the index is repaired
    assert again.restore_latest() == str(tmp_path / "ckpt-2")
    assert again.step == 2 and float(again.checkpoint.weight.numpy()) == 2.0


def test_fresh_moves_the_old_run_aside_and_a_changed_config_is_refused(synthetic_root, tmp_path):
    from replication.runs import RunFolder

    run = RunFolder(tmp_path / "run")
    run.prepare(tiny_config(synthetic_root))
    (run.checkpoints).mkdir()
    with pytest.raises(ConfigError, match=r"model.ngf.*--fresh"):
        run.prepare(tiny_config(synthetic_root, "model.ngf=8"))
    run.prepare(tiny_config(synthetic_root, "train.epochs=5"))  # training longer is a resume
    # how the step is computed is a resume too: the same weights, other rounding
    run.prepare(tiny_config(synthetic_root, "train.conv_gradients=native", "train.jit_compile=true"))
    aside = run.move_aside()
    assert aside.name.startswith("run.old-") and (aside / "config.yaml").exists()
    assert not run.path.exists()


def add_images(folder, count, like):
    """`count` more images in `folder`, copies of `like` under new names."""
    for i in range(count):
        shutil.copy(like, folder / f"added_{i}.png")


def test_a_resume_on_changed_data_is_refused_in_one_line_and_accepted_with_accept_new_data(synthetic_root, tmp_path):
    root = shutil.copytree(synthetic_root, tmp_path / "data")
    config = tiny_config(root, "train.max_steps_per_epoch=null", "train.epochs=5")  # 8 steps per epoch
    run = train(config, run_dir=tmp_path / "run", until_step=10)  # 2 steps into epoch 2
    add_images(root / "trainA", 4, sorted((root / "trainA").iterdir())[0])  # now 12 steps per epoch
    before = {name: (run / name).read_bytes() for name in ("config.yaml", "losses.csv", "data.json")}
    with pytest.raises(DataError) as refused:
        train(config, run_dir=run)
    message = str(refused.value)
    assert "\n" not in message
    assert f"{root / 'trainA'}: 8 -> 12 images (4 new, e.g. added_0.png, added_1.png, added_2.png)" in message
    assert "--accept-new-data" in message and "--fresh" in message and "trainB" not in message
    assert {name: (run / name).read_bytes() for name in before} == before  # nothing written

    train(config, run_dir=run, until_step=26, accept_new_data=True)
    assert re.search(r"--accept-new-data: the data changed \(.*trainA: 8 -> 12 images.*\); the run trains on it "
                     r"from step 10 on, epoch 2 starting again with 12 steps", (run / "run.log").read_text())
    rows = loss_rows(run)
    assert [int(r["step"]) for r in rows] == list(range(1, 27))
    # epoch 2 starts again at step 10 on the new data: 12 steps, 11 to 22; then epoch 3
    assert [int(r["epoch"]) for r in rows] == [1] * 8 + [2] * 2 + [2] * 12 + [3] * 4
    assert (run / "samples" / "epoch_002.png").exists() and not (run / "samples" / "epoch_003.png").exists()
    from replication import loading

    assert loading.load_generators(run)["AtoB"].weights.epochs_text() == "4 of the 12 steps of epoch 3"
    train(config, run_dir=run, until_step=27)  # the data it now trains on is recorded: no flag needed
    assert [int(r["epoch"]) for r in loss_rows(run)][-1] == 3


def test_a_relative_data_root_is_stored_absolute_so_the_run_works_from_any_folder(synthetic_root, tmp_path, monkeypatch):
    from replication import loading, models
    from replication.runs import load_config

    shutil.copytree(synthetic_root, tmp_path / "here" / "syn8")
    monkeypatch.chdir(tmp_path / "here")
    train(tiny_config("syn8"), run_dir="runs/tiny", until_step=1)
    run = tmp_path / "here" / "runs" / "tiny"
    assert load_config(run)["data"]["root"] == str(tmp_path / "here" / "syn8")
    assert f"data.root syn8 is {tmp_path / 'here' / 'syn8'}" in (run / "run.log").read_text()
    monkeypatch.chdir(tmp_path)
    assert len(models.training_data(load_config(run)).train_a) == 8
    assert loading.load_generators(run)["AtoB"].weights.epochs_text() == "1 of the 3 steps of epoch 1"
    monkeypatch.chdir(tmp_path / "here")
    train(tiny_config("syn8"), run_dir="runs/tiny", until_step=2)  # the same run, given as before


def test_a_longer_train_epochs_is_said_in_one_line_and_the_old_configuration_is_kept(synthetic_root, tmp_path, capsys):
    short = tiny_config(synthetic_root, "train.epochs=1", "train.epochs_decay=0")
    run = train(short, run_dir=tmp_path / "run")  # finished: 1 epoch of 3 steps
    train(tiny_config(synthetic_root), run_dir=run)  # 2 + 1 epochs
    line = ("train.epochs 1 -> 2, train.epochs_decay 0 -> 1: the run continues from epoch 2; the learning rate "
            "schedule is recomputed (the configuration before is kept as config.")
    assert line in capsys.readouterr().out and line in (run / "run.log").read_text()
    [kept] = run.glob("config.*.yaml")
    assert config_lib.load(kept) == short and config_lib.load(run / "config.yaml") == tiny_config(synthetic_root)
    assert [int(r["epoch"]) for r in loss_rows(run)] == [1, 1, 1, 2, 2, 2, 3, 3, 3]


# ---------------------------------------------------------------- the command line


def test_translate_a_folder_at_its_own_size_keeping_names(straight_run, tmp_path, capsys):
    from PIL import Image

    from replication.cli import main

    (tmp_path / "in" / "sub").mkdir(parents=True)
    Image.new("RGB", (42, 37), (200, 10, 10)).save(tmp_path / "in" / "red.png")
    Image.new("RGB", (32, 32), (10, 200, 10)).save(tmp_path / "in" / "sub" / "green.jpg")
    assert main(["translate", "--run", str(straight_run), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]) == 0
    assert Image.open(tmp_path / "out" / "red.png").size == (42, 37)  # padded to multiples of 4, cropped back
    assert Image.open(tmp_path / "out" / "sub" / "green.png").size == (32, 32)  # lossless PNG by default
    model = straight_run / "export" / "F_BtoA.keras"
    assert main(["translate", "--model", str(model), "--direction", "BtoA", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out2")]) == 0


def test_user_errors_end_in_one_line_and_status_2(tmp_path, capsys):
    from PIL import Image

    from replication.cli import main

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    assert main(["translate", "--run", str(tmp_path / "nope"), "--input", str(tmp_path), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "not a run folder" in err
    assert main(["train", "demo", "--set", "train.epoch=3"]) == 2
    assert "Did you mean 'epochs'" in capsys.readouterr().err
    assert main(["train", "demo", "--set", f"data.root={tmp_path / 'missing'}", "--run-dir", str(tmp_path / "r")]) == 2
    assert "missing" in capsys.readouterr().err


def test_unknown_gan_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="loss.gan_mode=wgan is not allowed: loss.gan_mode must be lsgan or vanilla"):
        tiny_config(None, "loss.gan_mode=wgan")

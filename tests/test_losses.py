"""Each loss against a NumPy hand computation on fixed small tensors."""

import numpy as np
import pytest
import tensorflow as tf

from replication.losses import (
    adversarial_loss,
    cycle_loss,
    discriminator_loss,
    generator_adversarial_loss,
    identity_loss,
)

# Discriminator scores shaped like a PatchGAN output: (batch 2, 2, 2, 1).
REAL_SCORES = np.array([0.9, 1.2, -0.3, 0.5, 2.0, 0.0, 0.7, -1.1], np.float32).reshape(2, 2, 2, 1)
FAKE_SCORES = np.array([0.1, -0.4, 0.6, 1.5, -2.0, 0.3, 0.0, 0.8], np.float32).reshape(2, 2, 2, 1)

# Images shaped (batch 2, 2, 1, 2).
REAL = np.array([-1.0, 0.5, 0.25, 1.0, 0.0, -0.5, 0.75, -0.25], np.float32).reshape(2, 2, 1, 2)
RECONSTRUCTED = np.array([-0.5, 0.5, 0.0, 0.25, 1.0, -1.0, 0.75, 0.5], np.float32).reshape(2, 2, 1, 2)


def softplus(x):
    return np.log1p(np.exp(x))


def numpy_bce_with_logits(logits, target):
    """-[t log sigmoid(x) + (1-t) log(1 - sigmoid(x))], averaged."""
    log_sigmoid = -softplus(-logits.astype(np.float64))
    log_one_minus_sigmoid = -softplus(logits.astype(np.float64))
    return np.mean(-(target * log_sigmoid + (1 - target) * log_one_minus_sigmoid))


def test_lsgan_real_is_mean_squared_distance_to_one():
    expected = np.mean((REAL_SCORES.astype(np.float64) - 1.0) ** 2)
    assert float(adversarial_loss(REAL_SCORES, True, "lsgan")) == pytest.approx(expected, rel=1e-6)


def test_lsgan_fake_is_mean_square():
    expected = np.mean(FAKE_SCORES.astype(np.float64) ** 2)
    assert float(adversarial_loss(FAKE_SCORES, False, "lsgan")) == pytest.approx(expected, rel=1e-6)


def test_lsgan_by_hand_on_two_scores():
    # (0.5 - 1)^2 = 0.25, (3 - 1)^2 = 4 -> mean 2.125; fake: (0.25 + 9) / 2 = 4.625.
    scores = tf.constant([0.5, 3.0])
    assert float(adversarial_loss(scores, True, "lsgan")) == 2.125
    assert float(adversarial_loss(scores, False, "lsgan")) == 4.625


def test_vanilla_is_binary_cross_entropy_on_logits():
    expected_real = numpy_bce_with_logits(REAL_SCORES, 1.0)
    expected_fake = numpy_bce_with_logits(FAKE_SCORES, 0.0)
    assert float(adversarial_loss(REAL_SCORES, True, "vanilla")) == pytest.approx(expected_real, rel=1e-6)
    assert float(adversarial_loss(FAKE_SCORES, False, "vanilla")) == pytest.approx(expected_fake, rel=1e-6)


def test_vanilla_at_zero_logit_is_log_two():
    zeros = tf.zeros((1, 3, 3, 1))
    assert float(adversarial_loss(zeros, True, "vanilla")) == pytest.approx(np.log(2.0), rel=1e-6)
    assert float(adversarial_loss(zeros, False, "vanilla")) == pytest.approx(np.log(2.0), rel=1e-6)


@pytest.mark.parametrize("gan_mode", ["lsgan", "vanilla"])
def test_generator_wants_fakes_scored_real(gan_mode):
    if gan_mode == "lsgan":
        expected = np.mean((FAKE_SCORES.astype(np.float64) - 1.0) ** 2)
    else:
        expected = numpy_bce_with_logits(FAKE_SCORES, 1.0)
    assert float(generator_adversarial_loss(FAKE_SCORES, gan_mode)) == pytest.approx(expected, rel=1e-6)


def test_discriminator_objective_is_halved_lsgan():
    real, fake = REAL_SCORES.astype(np.float64), FAKE_SCORES.astype(np.float64)
    expected = 0.5 * (np.mean((real - 1.0) ** 2) + np.mean(fake**2))
    assert float(discriminator_loss(REAL_SCORES, FAKE_SCORES, "lsgan")) == pytest.approx(expected, rel=1e-6)


def test_discriminator_objective_is_halved_vanilla():
    expected = 0.5 * (numpy_bce_with_logits(REAL_SCORES, 1.0) + numpy_bce_with_logits(FAKE_SCORES, 0.0))
    assert float(discriminator_loss(REAL_SCORES, FAKE_SCORES, "vanilla")) == pytest.approx(expected, rel=1e-6)


def test_discriminator_by_hand():
    # real 0.5 -> (0.5-1)^2 = 0.25; fake 0.5 -> 0.25; halved sum = 0.25 (not 0.5).
    assert float(discriminator_loss(tf.constant([0.5]), tf.constant([0.5]), "lsgan")) == 0.25


def test_cycle_loss_is_weighted_mean_absolute_error():
    # |diffs| = 0.5 0 0.25 0.75 1 0.5 0 0.75 -> sum 3.75, mean 0.46875; times 10.
    assert float(cycle_loss(REAL, RECONSTRUCTED, 10.0)) == 4.6875


def test_identity_loss_is_weighted_mean_absolute_error():
    # Default weight: lambda_identity * lambda_cycle = 0.5 * 10 = 5.
    assert float(identity_loss(REAL, RECONSTRUCTED, 5.0)) == 2.34375


def test_identity_weight_zero_is_exactly_zero():
    loss = identity_loss(REAL, RECONSTRUCTED, 0.0)
    assert loss.dtype == tf.float32
    assert float(loss) == 0.0


def test_mean_runs_over_the_batch_too():
    # The second image alone differs: mean over both images halves its error.
    real = np.zeros((2, 1, 1, 1), np.float32)
    other = np.array([0.0, 1.0], np.float32).reshape(2, 1, 1, 1)
    assert float(cycle_loss(real, other, 1.0)) == 0.5


@pytest.mark.parametrize("half", [tf.float16, tf.bfloat16])
@pytest.mark.parametrize("gan_mode", ["lsgan", "vanilla"])
def test_half_precision_scores_give_float32_losses(gan_mode, half):
    real16 = tf.constant(REAL_SCORES, half)
    fake16 = tf.constant(FAKE_SCORES, half)
    for loss in (
        adversarial_loss(real16, True, gan_mode),
        generator_adversarial_loss(fake16, gan_mode),
        discriminator_loss(real16, fake16, gan_mode),
    ):
        assert loss.dtype == tf.float32
        assert loss.shape == ()
    # Same value as the float32 computation on the rounded scores.
    real_rounded = tf.cast(real16, tf.float32).numpy()
    fake_rounded = tf.cast(fake16, tf.float32).numpy()
    expected = float(discriminator_loss(real_rounded, fake_rounded, gan_mode))
    assert float(discriminator_loss(real16, fake16, gan_mode)) == expected


@pytest.mark.parametrize("half", [tf.float16, tf.bfloat16])
def test_half_precision_images_give_float32_l1_losses(half):
    real16 = tf.constant(REAL, half)
    same16 = tf.constant(RECONSTRUCTED, half)
    for loss in (cycle_loss(real16, same16, 10.0), identity_loss(real16, same16, 5.0)):
        assert loss.dtype == tf.float32
        assert loss.shape == ()
    # All values are exact in float16 and bfloat16, so the result is the float32 one.
    assert float(cycle_loss(real16, same16, 10.0)) == 4.6875

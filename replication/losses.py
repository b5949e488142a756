"""The CycleGAN objective (paper §3, §4, §7.1) and pix2pix's L1 term, one pure function per term.

Every function takes tensors and returns a float32 scalar. Inputs are cast to
float32 first, so discriminator scores and images may arrive as float16 under
mixed precision. Each loss is the mean over all elements, batch included
(PyTorch's default `reduction='mean'`, as in the reference code).

These are per-replica means: under `tf.distribute` with several replicas the
trainer divides each loss by the number of replicas before taking gradients;
nothing here knows about replicas.
"""

from __future__ import annotations

import tensorflow as tf

# loss.gan_mode -> the loss of float32 scores against their label
ADVERSARIAL_LOSSES = {
    "lsgan": lambda scores, target: tf.reduce_mean(tf.square(scores - target)),
    "vanilla": lambda scores, target: tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=scores)),
}


def adversarial_loss(scores, target_is_real: bool, gan_mode: str) -> tf.Tensor:
    """How far discriminator scores are from the label "real" (1) or "fake" (0).

    `lsgan`: mean squared error to the label (paper §4, least squares GAN).
    `vanilla`: binary cross-entropy of the label against the scores read as
    logits (the original GAN log loss; the networks end without a sigmoid).
    """
    scores = tf.cast(scores, tf.float32)
    target = tf.ones_like(scores) if target_is_real else tf.zeros_like(scores)
    return ADVERSARIAL_LOSSES[gan_mode](scores, target)


def generator_adversarial_loss(fake_scores, gan_mode: str) -> tf.Tensor:
    """The generator's adversarial term: its fakes should be scored real."""
    return adversarial_loss(fake_scores, True, gan_mode)


def discriminator_loss(real_scores, fake_scores, gan_mode: str) -> tf.Tensor:
    """The discriminator's objective: real scored real, fake scored fake, halved (paper §7.1)."""
    real_term = adversarial_loss(real_scores, True, gan_mode)
    fake_term = adversarial_loss(fake_scores, False, gan_mode)
    return 0.5 * (real_term + fake_term)


def mean_absolute_error(a, b) -> tf.Tensor:
    """L1 distance averaged over every element, in float32."""
    return tf.reduce_mean(tf.abs(tf.cast(a, tf.float32) - tf.cast(b, tf.float32)))


def cycle_loss(real, reconstructed, weight) -> tf.Tensor:
    """Cycle consistency: weight * L1(real, F(G(real))) (paper §3.2; weight lambda = 10, §4)."""
    return tf.cast(weight, tf.float32) * mean_absolute_error(real, reconstructed)


def identity_loss(real, same, weight) -> tf.Tensor:
    """Identity mapping: weight * L1(y, G(y)) (paper §5.2).

    The trainer passes weight = lambda_identity * lambda_cycle (0.5 * 10 = 5
    by default); weight 0 gives exactly 0.
    """
    return tf.cast(weight, tf.float32) * mean_absolute_error(real, same)


def l1_loss(fake, real, weight) -> tf.Tensor:
    """pix2pix's reconstruction term: weight * L1(G(x), y) (pix2pix eq. 3-4; weight lambda = 100)."""
    return tf.cast(weight, tf.float32) * mean_absolute_error(fake, real)

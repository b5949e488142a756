"""What every GAN model of the kit shares: network builders, Adam, the update step.

CycleGAN (replication/cyclegan.py) and pix2pix build their networks and their
optimizers through these functions, so the choices the paper fixes (Adam's
betas, loss scaling under mixed_float16) are written once. Their exports are
written by replication/export.py.
"""

from __future__ import annotations

from contextlib import contextmanager

import keras
import tensorflow as tf

from replication import networks
from replication.speed import machine


class GAN:
    """What the training loop asks of every model that the models answer alike.

    A subclass declares what models.Model asks of a model's file and builds its two optimizers
    `optimizer_G` and `optimizer_D` (`build_optimizers`); it sets `seed` (train.seed) too if its
    generators have dropout.
    """

    generator_names: dict[str, str]
    training_mode_at_test: bool
    sample_rows: dict[str, tuple[str, ...]]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # derived, so that it cannot disagree with the rows
        cls.sample_names = tuple(name for row in cls.sample_rows.values() for name in row)

    @property
    def optimizers(self):
        return (self.optimizer_G, self.optimizer_D)

    def build_optimizers(self, train_cfg: dict, precision: str, generator_variables, discriminator_variables) -> None:
        """`optimizer_G` and `optimizer_D`: Adam each (`adam`), built on their variables so that a
        checkpoint restores their slots before the first step."""
        self.optimizer_G = adam(train_cfg, precision)
        self.optimizer_D = adam(train_cfg, precision)
        self.optimizer_G.build(generator_variables)
        self.optimizer_D.build(discriminator_variables)

    def networks(self) -> list[keras.Model]:
        return [item for item in self.checkpoint_items().values() if isinstance(item, keras.Model)]

    def sample_images(self, real_a, real_b) -> dict:
        """What the loop shows after an epoch: `visuals` of the generators as they are tested."""
        return self.visuals({d: self.as_tested(getattr(self, name)) for d, name in self.generator_names.items()}, real_a, real_b)

    def as_tested(self, generator):
        """`generator` as it is tested: as called, or in training mode (`training_mode_at_test`) with the
        same dropout masks at every epoch (counter -1, which no step uses), so the samples change only
        as the weights do; sampling leaves the moving statistics, which a checkpoint keeps, alone."""
        if not self.training_mode_at_test:
            return generator

        def translate(images):
            self.seed_dropout(-1)
            return networks.call_as_tested(generator, images)

        return translate

    def set_learning_rate(self, lr: float) -> None:
        for optimizer in self.optimizers:
            optimizer.learning_rate.assign(lr)

    def seed_dropout(self, counter) -> None:
        """The dropout masks of step `counter` (if the generators have dropout): stateless draws keyed by
        (train.seed, the generator, the step), so a resumed run draws the uninterrupted run's masks."""
        for index, name in enumerate(self.generator_names.values()):
            # the history buffers draw from keys seed * 16 + 1 and + 2 (cyclegan.draw_from_history)
            networks.seed_dropout(getattr(self, name), self.seed * 16 + 3 + index, counter)


# model.generator and model.discriminator -> how each is built from the model section.
GENERATORS = {
    "resnet": lambda cfg: networks.resnet_generator(cfg["n_blocks"], cfg["ngf"], cfg["upsample"], dropout=cfg["dropout"]),
    "unet": lambda cfg: networks.unet_generator(cfg["num_downs"], cfg["ngf"], cfg["generator_norm"], dropout=cfg["dropout"]),
}
DISCRIMINATORS = {
    "patchgan": lambda cfg, in_channels: networks.patchgan_discriminator(
        cfg["n_layers_d"], cfg["ndf"], in_channels, cfg["discriminator_norm"]),
    "pixel": lambda cfg, in_channels: networks.pixel_discriminator(cfg["ndf"], in_channels, cfg["discriminator_norm"]),
}


def build_generator(model_cfg: dict) -> keras.Model:
    """The ResNet generator (paper §7.2) or the U-Net, as model.generator says."""
    return GENERATORS[model_cfg["generator"]](model_cfg)


def build_discriminator(model_cfg: dict, in_channels: int = 3) -> keras.Model:
    """PatchGAN or PixelGAN; `in_channels` 6 makes pix2pix's conditional D (input and output stacked)."""
    return DISCRIMINATORS[model_cfg["discriminator"]](model_cfg, in_channels)


class ReferenceAdam(keras.optimizers.Adam):
    """Adam as the official code runs it (PyTorch's `torch.optim.Adam`): epsilon is added to
    sqrt(v) after v's bias correction, w -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps).
    Keras adds it before, which makes its epsilon 1 / sqrt(1 - b2^t) times larger in effect
    (about 32 times at the first step with beta_2 0.999); the two agree once b2^t is small."""

    def update_step(self, gradient, variable, learning_rate):
        ops = keras.ops
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        t = ops.cast(self.iterations + 1, variable.dtype)
        first_correction = 1 - ops.power(ops.cast(self.beta_1, variable.dtype), t)
        second_correction = ops.sqrt(1 - ops.power(ops.cast(self.beta_2, variable.dtype), t))
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        denominator = ops.add(ops.divide(ops.sqrt(v), second_correction), self.epsilon)
        self.assign_sub(variable, ops.divide(ops.multiply(m, lr / first_correction), denominator))


def adam(train_cfg: dict, precision: str = "float32") -> keras.optimizers.Optimizer:
    """Adam(lr 2e-4, beta1 0.5, beta2 0.999) (paper §7.1) with the official code's epsilon 1e-8 and
    update rule, loss-scaled under mixed_float16 only (`precision` is the Keras policy the networks
    were built under; bfloat16 needs no scaling)."""
    optimizer = ReferenceAdam(
        float(train_cfg["lr"]), beta_1=float(train_cfg["beta_1"]), beta_2=float(train_cfg["beta_2"]),
        epsilon=float(train_cfg["epsilon"]),
    )
    return keras.optimizers.LossScaleOptimizer(optimizer) if machine.loss_scaling(precision) else optimizer


def scaled_loss(loss, optimizer):
    """What this replica differentiates: its mean loss over the replicas (Keras sums their
    gradients), times the loss scale under mixed_float16. Call it inside the tape."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return optimizer.scale_loss(loss / replicas)


def apply_gradients(tape: tf.GradientTape, scaled, optimizer, variables) -> None:
    """One update from a `scaled_loss` (the optimizer unscales under mixed_float16)."""
    grads = tape.gradient(scaled, variables)
    optimizer.apply_gradients(zip(grads, variables))


@contextmanager
def dtype_policy(name: str):
    """Keras layers built inside take the policy `name` (float32, mixed_float16, mixed_bfloat16)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)

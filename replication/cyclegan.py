"""CycleGAN (Zhu et al. 2017): two generators, two discriminators, one training step.

Paper notation: G: X -> Y and F: Y -> X, with D_Y judging G's outputs and
D_X judging F's. X is the dataset's domain A (trainA), Y is domain B.

The training loop (replication/training.py) knows nothing of CycleGAN: it
sees `loss_names`, `train_step`, `sample_images`, `checkpoint_items` and
`export`, and a pix2pix model can plug into it the same way.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from replication import losses, networks
from replication.errors import ConfigError
from replication.history import HistoryBuffer
from replication.io import atomic_replace


def build_generator(model_cfg: dict) -> keras.Model:
    if model_cfg["generator"] == "resnet":
        return networks.resnet_generator(model_cfg["n_blocks"], model_cfg["ngf"], model_cfg["upsample"])
    if model_cfg["generator"] == "unet":
        return networks.unet_generator(model_cfg["num_downs"], model_cfg["ngf"], model_cfg["generator_norm"])
    raise ConfigError(f"Unknown model.generator '{model_cfg['generator']}': choose 'resnet' or 'unet'.")


def build_discriminator(model_cfg: dict, in_channels: int = 3) -> keras.Model:
    if model_cfg["discriminator"] == "patchgan":
        return networks.patchgan_discriminator(model_cfg["n_layers_d"], model_cfg["ndf"], in_channels)
    if model_cfg["discriminator"] == "pixel":
        return networks.pixel_discriminator(model_cfg["ndf"], in_channels)
    raise ConfigError(f"Unknown model.discriminator '{model_cfg['discriminator']}': choose 'patchgan' or 'pixel'.")


def adam(train_cfg: dict, mixed_precision: bool) -> keras.optimizers.Optimizer:
    """Adam(lr 2e-4, beta1 0.5, beta2 0.999) (paper §7.1), loss-scaled under mixed precision."""
    optimizer = keras.optimizers.Adam(
        float(train_cfg["lr"]), beta_1=float(train_cfg["beta_1"]), beta_2=float(train_cfg["beta_2"])
    )
    return keras.optimizers.LossScaleOptimizer(optimizer) if mixed_precision else optimizer


class CycleGAN:
    """The paper's objective (§3, §4): LSGAN + lambda * cycle + 0.5 * lambda * identity."""

    loss_names = ("D_X", "G", "cycle_X", "idt_X", "D_Y", "F", "cycle_Y", "idt_Y")
    sample_names = ("real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B")

    def __init__(self, config: dict, mixed_precision: bool = False):
        model_cfg, loss_cfg, train_cfg = config["model"], config["loss"], config["train"]
        self.gan_mode = loss_cfg["gan_mode"]
        if self.gan_mode not in losses.GAN_MODES:
            raise ConfigError(f"loss.gan_mode must be one of {', '.join(losses.GAN_MODES)}, not {self.gan_mode!r}.")
        self.lambda_cycle = float(loss_cfg["lambda_cycle"])
        self.lambda_identity = float(loss_cfg["lambda_identity"]) * self.lambda_cycle
        self.seed = int(train_cfg["seed"])
        self.model_cfg = model_cfg

        self.G = build_generator(model_cfg)  # X -> Y (A to B)
        self.F = build_generator(model_cfg)  # Y -> X (B to A)
        self.D_X = build_discriminator(model_cfg)
        self.D_Y = build_discriminator(model_cfg)
        # One optimizer for both generators and one for both discriminators, as the reference code.
        self.optimizer_G = adam(train_cfg, mixed_precision)
        self.optimizer_D = adam(train_cfg, mixed_precision)
        self.optimizer_G.build(self.generator_variables)
        self.optimizer_D.build(self.discriminator_variables)

        crop = config["data"]["crop_size"]
        # Fakes shown to D_X come from F, fakes shown to D_Y from G (paper §4, pool of 50).
        self.history_X = HistoryBuffer(train_cfg["pool_size"], (crop, crop, 3), name="history_X")
        self.history_Y = HistoryBuffer(train_cfg["pool_size"], (crop, crop, 3), name="history_Y")

    @property
    def generator_variables(self):
        return self.G.trainable_variables + self.F.trainable_variables

    @property
    def discriminator_variables(self):
        return self.D_X.trainable_variables + self.D_Y.trainable_variables

    @property
    def optimizers(self):
        return (self.optimizer_G, self.optimizer_D)

    def checkpoint_items(self) -> dict:
        return dict(
            G=self.G, F=self.F, D_X=self.D_X, D_Y=self.D_Y,
            optimizer_G=self.optimizer_G, optimizer_D=self.optimizer_D,
            history_X=self.history_X, history_Y=self.history_Y,
        )

    # ------------------------------------------------------------ the training step

    def train_step(self, real_x, real_y, step):
        """One update of G and F, then of D_X and D_Y; returns the eight losses (float32 scalars).

        Runs once per replica. Losses are means over this replica's images;
        gradients are divided by the number of replicas because Keras sums
        them across replicas.
        """
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            generator_losses, fake_x, fake_y = self.generator_losses(real_x, real_y)
            total = tf.add_n(list(generator_losses.values()))
            scaled = self.optimizer_G.scale_loss(total / replicas)
        grads = tape.gradient(scaled, self.generator_variables)
        self.optimizer_G.apply_gradients(zip(grads, self.generator_variables))

        # D sees the fakes made before this update of G and F, drawn through the history buffers.
        pooled_x = self.draw_from_history(self.history_X, fake_x, step, stream=1)
        pooled_y = self.draw_from_history(self.history_Y, fake_y, step, stream=2)
        with tf.GradientTape() as tape:
            d_x = losses.discriminator_loss(self.D_X(real_x, training=True), self.D_X(pooled_x, training=True), self.gan_mode)
            d_y = losses.discriminator_loss(self.D_Y(real_y, training=True), self.D_Y(pooled_y, training=True), self.gan_mode)
            scaled = self.optimizer_D.scale_loss((d_x + d_y) / replicas)
        grads = tape.gradient(scaled, self.discriminator_variables)
        self.optimizer_D.apply_gradients(zip(grads, self.discriminator_variables))
        return {"D_X": d_x, "D_Y": d_y, **generator_losses}

    def generator_losses(self, real_x, real_y):
        """L_GAN(G, D_Y) + L_GAN(F, D_X) + lambda L_cyc + 0.5 lambda L_identity (paper eq. 3, §7.1)."""
        fake_y = self.G(real_x, training=True)
        fake_x = self.F(real_y, training=True)
        rec_x = self.F(fake_y, training=True)
        rec_y = self.G(fake_x, training=True)
        out = {
            "G": losses.generator_adversarial_loss(self.D_Y(fake_y, training=True), self.gan_mode),
            "F": losses.generator_adversarial_loss(self.D_X(fake_x, training=True), self.gan_mode),
            "cycle_X": losses.cycle_loss(real_x, rec_x, self.lambda_cycle),
            "cycle_Y": losses.cycle_loss(real_y, rec_y, self.lambda_cycle),
        }
        if self.lambda_identity > 0:
            # F should leave images of X alone, G images of Y.
            out["idt_X"] = losses.identity_loss(real_x, self.F(real_x, training=True), self.lambda_identity)
            out["idt_Y"] = losses.identity_loss(real_y, self.G(real_y, training=True), self.lambda_identity)
        else:
            out["idt_X"] = out["idt_Y"] = tf.constant(0.0)
        return out, fake_x, fake_y

    def draw_from_history(self, history, fakes, step, stream):
        """The history buffer works on the whole global batch, in order, identically on every replica."""
        seed = tf.stack([tf.cast(self.seed * 16 + stream, tf.int64), tf.cast(step, tf.int64)])
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return history(fakes, seed)
        everything = context.all_gather(fakes, axis=0)
        pooled = history(everything, seed)
        size = tf.shape(fakes)[0]
        return pooled[context.replica_id_in_sync_group * size :][:size]

    # ------------------------------------------------------------ what the loop shows and keeps

    def set_learning_rate(self, lr: float) -> None:
        for optimizer in self.optimizers:
            optimizer.learning_rate.assign(lr)

    def sample_images(self, real_a, real_b) -> dict:
        fake_b = self.G(real_a, training=False)
        fake_a = self.F(real_b, training=False)
        return dict(
            real_A=real_a, fake_B=fake_b, rec_A=self.F(fake_b, training=False),
            real_B=real_b, fake_A=fake_a, rec_B=self.G(fake_a, training=False),
        )

    def export(self, folder: Path) -> dict:
        """Save both generators as float32 `.keras` files that load without this kit's config."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"AtoB": folder / "G_AtoB.keras", "BtoA": folder / "F_BtoA.keras"}
        for model, path in ((self.G, paths["AtoB"]), (self.F, paths["BtoA"])):
            export_float32(model, self.model_cfg, path)
        return paths


def export_float32(model: keras.Model, model_cfg: dict, path: Path) -> None:
    """Write the generator rebuilt with a float32 policy (float16 kernels are slow on CPUs)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        copy = build_generator(model_cfg)
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    with atomic_replace(path) as tmp:
        copy.save(tmp)

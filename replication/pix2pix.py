"""pix2pix (Isola et al. 2017) as the reference implementation trains it: CycleGAN's paired baseline.

G: A -> B is a U-Net trained on aligned pairs (x, y); D is a PatchGAN that
judges an input and an output together, stacked on the channel axis (the
conditional GAN of pix2pix §2.1, 6 channels). Objective: vanilla GAN loss
+ lambda * L1(G(x), y) with lambda = 100 (pix2pix eq. 4). Dropout (model.dropout,
0.5 by default) is the only noise (pix2pix §2.1); the reference code tests in
training mode, so it stays on at test time, and batch norm uses the test
batch's own statistics.

The training loop sees the contract in replication/models.py, as for CycleGAN.
"""

from __future__ import annotations

import tensorflow as tf

from replication import gan, losses


class Pix2Pix(gan.GAN):
    """One generator G (A to B), one conditional discriminator D; D is updated first, then G."""

    loss_names = ("G_GAN", "G_L1", "D_real", "D_fake")  # the reference code's names
    # The loss figure's panels ({direction: loss name}, as CycleGAN's); one direction, one curve each.
    loss_panels = {
        "adversarial": {"AtoB": "G_GAN"},
        "L1": {"AtoB": "G_L1"},
        "discriminator, real pairs": {"AtoB": "D_real"},
        "discriminator, fake pairs": {"AtoB": "D_fake"},
    }
    sample_rows = {"AtoB": ("real_A", "fake_B", "real_B")}
    sample_captions = {"real_A": "input", "fake_B": "output", "real_B": "ground truth"}
    generator_names = {"AtoB": "G"}
    training_mode_at_test = True
    judges = {}  # D judges an input and an output together, not one domain

    @classmethod
    def from_config(cls, config: dict, precision: str = "float32") -> "Pix2Pix":
        return cls(config["model"], config["loss"], config["train"], precision)

    def __init__(self, model_cfg: dict, loss_cfg: dict, train_cfg: dict, precision: str = "float32"):
        self.gan_mode = loss_cfg["gan_mode"]
        self.lambda_l1 = float(loss_cfg["lambda_L1"])
        self.seed = train_cfg["seed"]

        self.G = gan.build_generator(model_cfg)
        self.D = gan.build_discriminator(model_cfg, in_channels=6)  # input and output stacked
        self.build_optimizers(train_cfg, precision, self.G.trainable_variables, self.D.trainable_variables)

    # Forward passes in one step (the bench's FLOP count): G(x); D(x, G(x)) in G's loss; D on the
    # real and the fake pair.
    forward_passes = {"generator": 1, "discriminator_through": 1, "discriminator": 2}

    def checkpoint_items(self) -> dict:
        return dict(G=self.G, D=self.D, optimizer_G=self.optimizer_G, optimizer_D=self.optimizer_D)

    # ------------------------------------------------------------ the training step

    def train_step(self, real_a, real_b, step):
        """One update of D, then one of G, as the reference code's `optimize_parameters`.

        G translates once; D learns from that translation, then G's adversarial
        term is scored by the updated D. Returns the four losses (float32 scalars).
        """
        self.seed_dropout(step)
        with tf.GradientTape() as tape:
            fake_b = self.G(real_a, training=True)
            with tape.stop_recording():
                d_real, d_fake = self.update_discriminator(real_a, real_b, fake_b)
            g_gan, g_l1 = self.generator_losses(real_a, real_b, fake_b)
            scaled = gan.scaled_loss(g_gan + g_l1, self.optimizer_G)
        gan.apply_gradients(tape, scaled, self.optimizer_G, self.G.trainable_variables)
        return {"G_GAN": g_gan, "G_L1": g_l1, "D_real": d_real, "D_fake": d_fake}

    def judge(self, real_a, b):
        """D's scores for `b` as the output for input `real_a` (conditional GAN, pix2pix §2.1)."""
        return self.D(tf.concat([real_a, tf.cast(b, real_a.dtype)], axis=-1), training=True)

    def update_discriminator(self, real_a, real_b, fake_b):
        """D's objective, halved (pix2pix §3.3): fake pairs scored fake, real pairs real. Returns both terms."""
        with tf.GradientTape() as tape:
            d_fake = losses.adversarial_loss(self.judge(real_a, fake_b), False, self.gan_mode)
            d_real = losses.adversarial_loss(self.judge(real_a, real_b), True, self.gan_mode)
            scaled = gan.scaled_loss(0.5 * (d_fake + d_real), self.optimizer_D)
        gan.apply_gradients(tape, scaled, self.optimizer_D, self.D.trainable_variables)
        return d_real, d_fake

    def generator_losses(self, real_a, real_b, fake_b):
        """G's adversarial term (its output scored real) and lambda * L1 to the ground truth (pix2pix eq. 4)."""
        g_gan = losses.generator_adversarial_loss(self.judge(real_a, fake_b), self.gan_mode)
        return g_gan, losses.l1_loss(fake_b, real_b, self.lambda_l1)

    # ------------------------------------------------------------ what the loop shows and keeps

    @staticmethod
    def visuals(generators: dict, real_a, real_b) -> dict:
        """Input, output and ground truth (pix2pix's figures), by `sample_rows`."""
        return dict(real_A=real_a, fake_B=generators["AtoB"](real_a), real_B=real_b)

"""A model in one file: one generator G: A -> B judged by one discriminator D, the least-squares
GAN loss alone (CycleGAN without F and without its cycles). With its row in the model table, the
training loop, logs, checkpoints, samples, figures and exports take it as they take CycleGAN.
It declares what replication/models.py's `Model` asks of a model's file; gan.GAN derives the rest."""

import tensorflow as tf

from replication import gan, losses


class OneWayGAN(gan.GAN):
    loss_names = ("G", "D")  # what train_step returns, the columns of losses.csv
    generator_names = {"AtoB": "G"}  # direction -> the checkpoint item that translates it
    training_mode_at_test = False
    sample_rows = {"AtoB": ("real_A", "fake_B")}  # what `visuals` returns, one row of a sample grid
    sample_captions = {"real_A": "input A", "fake_B": "G(A)"}
    loss_panels = {"adversarial": {"AtoB": "G"}, "discriminator": {"AtoB": "D"}}
    judges = {"AtoB": "D"}  # D judges G's outputs alone
    forward_passes = {"generator": 1, "discriminator_through": 1, "discriminator": 2}

    @classmethod
    def from_config(cls, config: dict, precision: str = "float32") -> "OneWayGAN":
        return cls(config["model"], config["train"], precision)

    def __init__(self, model_cfg: dict, train_cfg: dict, precision: str = "float32"):
        self.G = gan.build_generator(model_cfg)
        self.D = gan.build_discriminator(model_cfg)
        self.build_optimizers(train_cfg, precision, self.G.trainable_variables, self.D.trainable_variables)

    def checkpoint_items(self) -> dict:
        return dict(G=self.G, D=self.D, optimizer_G=self.optimizer_G, optimizer_D=self.optimizer_D)

    def train_step(self, real_a, real_b, step):
        with tf.GradientTape() as tape:
            fake_b = self.G(real_a, training=True)
            g = losses.generator_adversarial_loss(self.D(fake_b, training=True), "lsgan")
            scaled = gan.scaled_loss(g, self.optimizer_G)
        gan.apply_gradients(tape, scaled, self.optimizer_G, self.G.trainable_variables)
        with tf.GradientTape() as tape:
            d = losses.discriminator_loss(self.D(real_b, training=True), self.D(fake_b, training=True), "lsgan")
            scaled = gan.scaled_loss(d, self.optimizer_D)
        gan.apply_gradients(tape, scaled, self.optimizer_D, self.D.trainable_variables)
        return {"G": g, "D": d}

    @staticmethod
    def visuals(generators: dict, real_a, real_b) -> dict:
        return dict(real_A=real_a, fake_B=generators["AtoB"](real_a))

"""CycleGAN (Zhu et al. 2017): two generators, two discriminators, one training step.

Paper notation: G: X -> Y and F: Y -> X, with D_Y judging G's outputs and
D_X judging F's. X is the dataset's domain A (trainA), Y is domain B.

The training loop (replication/training.py) knows nothing of CycleGAN: it
sees the contract in replication/models.py, and pix2pix plugs in the same way.
"""

from __future__ import annotations

import tensorflow as tf

from replication import gan, losses
from replication.choices import CYCLES
from replication.history import HistoryBuffer


class CycleGAN(gan.GAN):
    """The paper's objective (§3, §4): LSGAN + lambda * cycle + 0.5 * lambda * identity.

    `loss.gan` and `loss.cycle` switch terms off for the ablations of Tables 4
    and 5; a term that is off is not computed and is logged as 0.
    """

    loss_names = ("D_X", "G", "cycle_X", "idt_X", "D_Y", "F", "cycle_Y", "idt_Y")
    sample_rows = {"AtoB": ("real_A", "fake_B", "rec_A"), "BtoA": ("real_B", "fake_A", "rec_B")}
    sample_captions = {
        "real_A": "input A", "fake_B": "G(A)", "rec_A": "F(G(A))",
        "real_B": "input B", "fake_A": "F(B)", "rec_B": "G(F(B))",
    }
    generator_names = {"AtoB": "G", "BtoA": "F"}
    # The loss figure's panels, each loss under the direction it belongs to: G's side (A to B) is
    # G's adversarial loss, D_Y that judges it, the cycle that starts in A, and G's identity on B.
    loss_panels = {
        "adversarial": {"AtoB": "G", "BtoA": "F"},
        "cycle": {"AtoB": "cycle_X", "BtoA": "cycle_Y"},
        "identity": {"AtoB": "idt_Y", "BtoA": "idt_X"},
        "discriminators": {"AtoB": "D_Y", "BtoA": "D_X"},
    }
    training_mode_at_test = False
    # The discriminator that judges each direction's outputs alone (evaluate scores them with it).
    judges = {"AtoB": "D_Y", "BtoA": "D_X"}

    @classmethod
    def from_config(cls, config: dict, precision: str = "float32") -> "CycleGAN":
        crop = config["data"]["crop_size"]
        return cls(config["model"], config["loss"], config["train"], (crop, crop, 3), precision)

    def __init__(self, model_cfg: dict, loss_cfg: dict, train_cfg: dict, image_shape, precision: str = "float32"):
        """`precision`: the Keras dtype policy the networks are built under (models.build sets it)."""
        self.gan_mode = loss_cfg["gan_mode"]
        self.lambda_cycle = float(loss_cfg["lambda_cycle"])
        self.lambda_identity = float(loss_cfg["lambda_identity"]) * self.lambda_cycle
        self.adversarial, cycles = loss_cfg["gan"], CYCLES[loss_cfg["cycle"]]
        self.forward_cycle, self.backward_cycle = "forward" in cycles, "backward" in cycles
        self.seed = train_cfg["seed"]

        self.G = gan.build_generator(model_cfg)  # X -> Y (A to B)
        self.F = gan.build_generator(model_cfg)  # Y -> X (B to A)
        self.D_X = gan.build_discriminator(model_cfg)
        self.D_Y = gan.build_discriminator(model_cfg)
        # One optimizer for both generators and one for both discriminators, as the reference code.
        self.build_optimizers(train_cfg, precision, self.generator_variables, self.discriminator_variables)

        # Fakes shown to D_X come from F, fakes shown to D_Y from G (paper §4, pool of 50).
        self.history_X = HistoryBuffer(train_cfg["pool_size"], tuple(image_shape), name="history_X")
        self.history_Y = HistoryBuffer(train_cfg["pool_size"], tuple(image_shape), name="history_Y")

    @property
    def generator_variables(self):
        return self.G.trainable_variables + self.F.trainable_variables

    @property
    def discriminator_variables(self):
        return self.D_X.trainable_variables + self.D_Y.trainable_variables

    @property
    def forward_passes(self) -> dict:
        """Forward passes of each kind of network in one step (the bench's FLOP count): G(x) and
        F(y), each cycle's second generator, the identity's F(x) and G(y); D_Y(G(x)) and D_X(F(y))
        in G's loss, which the backward pass goes through; D_X and D_Y on real and pooled images."""
        generators = 2 + self.forward_cycle + self.backward_cycle + 2 * (self.lambda_identity > 0)
        judged = 2 if self.adversarial else 0
        return {"generator": generators, "discriminator_through": judged, "discriminator": 2 * judged}

    def checkpoint_items(self) -> dict:
        return dict(
            G=self.G, F=self.F, D_X=self.D_X, D_Y=self.D_Y,
            optimizer_G=self.optimizer_G, optimizer_D=self.optimizer_D,
            history_X=self.history_X, history_Y=self.history_Y,
        )

    # ------------------------------------------------------------ the training step

    def train_step(self, real_x, real_y, step):
        """One update of G and F, then of D_X and D_Y; returns the eight losses (float32 scalars).

        Runs once per replica; losses are means over this replica's images.
        Without the adversarial terms (loss.gan false) the discriminators are not run at all.
        """
        self.seed_dropout(step)  # only if model.dropout asks for dropout, which the paper's CycleGAN has not
        with tf.GradientTape() as tape:
            generator_losses, fake_x, fake_y = self.generator_losses(real_x, real_y)
            scaled = gan.scaled_loss(tf.add_n(list(generator_losses.values())), self.optimizer_G)
        gan.apply_gradients(tape, scaled, self.optimizer_G, self.generator_variables)
        if not self.adversarial:
            return {"D_X": tf.constant(0.0), "D_Y": tf.constant(0.0), **generator_losses}

        # D sees the fakes made before this update of G and F, drawn through the history buffers.
        pooled_x = self.draw_from_history(self.history_X, fake_x, step, stream=1)
        pooled_y = self.draw_from_history(self.history_Y, fake_y, step, stream=2)
        with tf.GradientTape() as tape:
            d_x = losses.discriminator_loss(self.D_X(real_x, training=True), self.D_X(pooled_x, training=True), self.gan_mode)
            d_y = losses.discriminator_loss(self.D_Y(real_y, training=True), self.D_Y(pooled_y, training=True), self.gan_mode)
            scaled = gan.scaled_loss(d_x + d_y, self.optimizer_D)
        gan.apply_gradients(tape, scaled, self.optimizer_D, self.discriminator_variables)
        return {"D_X": d_x, "D_Y": d_y, **generator_losses}

    def generator_losses(self, real_x, real_y):
        """L_GAN(G, D_Y) + L_GAN(F, D_X) + lambda L_cyc + 0.5 lambda L_identity (paper eq. 3, §7.1).

        Only the terms that are on are computed (and only the translations they
        need); the others are 0. Returns (losses, F(y) or None, G(x) or None).
        """
        out = {name: tf.constant(0.0) for name in ("G", "F", "cycle_X", "cycle_Y", "idt_X", "idt_Y")}
        fake_y = self.G(real_x, training=True) if self.adversarial or self.forward_cycle else None
        fake_x = self.F(real_y, training=True) if self.adversarial or self.backward_cycle else None
        if self.adversarial:
            out["G"] = losses.generator_adversarial_loss(self.D_Y(fake_y, training=True), self.gan_mode)
            out["F"] = losses.generator_adversarial_loss(self.D_X(fake_x, training=True), self.gan_mode)
        if self.forward_cycle:
            out["cycle_X"] = losses.cycle_loss(real_x, self.F(fake_y, training=True), self.lambda_cycle)
        if self.backward_cycle:
            out["cycle_Y"] = losses.cycle_loss(real_y, self.G(fake_x, training=True), self.lambda_cycle)
        if self.lambda_identity > 0:
            # F should leave images of X alone, G images of Y.
            out["idt_X"] = losses.identity_loss(real_x, self.F(real_x, training=True), self.lambda_identity)
            out["idt_Y"] = losses.identity_loss(real_y, self.G(real_y, training=True), self.lambda_identity)
        return out, fake_x, fake_y

    def draw_from_history(self, history, fakes, step, stream):
        """The history buffer works on the whole global batch, in order, identically on every replica."""
        seed = tf.stack([tf.cast(self.seed * 16 + stream, tf.int64), tf.cast(step, tf.int64)])
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return history(fakes, seed)
        everything = context.all_gather(fakes, axis=0)
        if fakes.shape[0] is not None:  # all_gather drops the static shape, which the buffer's loop needs
            everything = tf.ensure_shape(everything, [context.num_replicas_in_sync * fakes.shape[0], *fakes.shape[1:]])
        pooled = history(everything, seed)
        size = tf.shape(fakes)[0]
        return pooled[context.replica_id_in_sync_group * size :][:size]

    # ------------------------------------------------------------ what the loop shows and keeps

    @staticmethod
    def visuals(generators: dict, real_a, real_b) -> dict:
        """Inputs, translations and reconstructions (paper Figure 4), by `sample_rows`; a run of one
        direction (an imported generator) has that direction's input and translation only."""
        G, F = generators.get("AtoB"), generators.get("BtoA")
        if G is None or F is None:
            return dict(real_A=real_a, fake_B=G(real_a)) if G is not None else dict(real_B=real_b, fake_A=F(real_b))
        fake_b, fake_a = G(real_a), F(real_b)
        return dict(real_A=real_a, fake_B=fake_b, rec_A=F(fake_b), real_B=real_b, fake_A=fake_a, rec_B=G(fake_a))


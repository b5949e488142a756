"""The loss ablations of CycleGAN paper Tables 4 and 5: each switch removes its term from the
logged losses, from the gradients and from the computation."""

import numpy as np
import pytest
import tensorflow as tf

from replication import config as config_lib
from replication.errors import ConfigError
from helpers import build, images, tiny_config

# row of Tables 4 and 5: (experiment file, overrides, the terms that stay)
ROWS = {
    "cycle alone": ("cityscapes_ablation_cycle_alone", ["loss.gan=false"], {"cycle_X", "cycle_Y"}),
    "GAN alone": ("cityscapes_ablation_gan_alone", ["loss.cycle=none"], {"G", "F", "D_X", "D_Y"}),
    "GAN + forward cycle": ("cityscapes_ablation_gan_forward", ["loss.cycle=forward"], {"G", "F", "D_X", "D_Y", "cycle_X"}),
    "GAN + backward cycle": ("cityscapes_ablation_gan_backward", ["loss.cycle=backward"], {"G", "F", "D_X", "D_Y", "cycle_Y"}),
    "CycleGAN": ("cityscapes_ablation_full", [], {"G", "F", "D_X", "D_Y", "cycle_X", "cycle_Y"}),
}
# how often one step runs each network (identity off): G(x), G(F(y)); F(y), F(G(x)); D on fake, real, pooled
CALLS = {
    "cycle alone": dict(G=2, F=2, D_X=0, D_Y=0),
    "GAN alone": dict(G=1, F=1, D_X=3, D_Y=3),
    "GAN + forward cycle": dict(G=1, F=2, D_X=3, D_Y=3),
    "GAN + backward cycle": dict(G=2, F=1, D_X=3, D_Y=3),
    "CycleGAN": dict(G=2, F=2, D_X=3, D_Y=3),
}


def ablation(row):
    return build(tiny_config(None, "loss.lambda_identity=0", *ROWS[row][1]))


@pytest.mark.parametrize("row", ROWS)
def test_the_experiment_files_are_the_rows_of_tables_4_and_5(row):
    experiment, overrides, _ = ROWS[row]
    resolved = config_lib.resolve(experiment)
    expected = config_lib.resolve("cityscapes", ["loss.lambda_identity=0", *overrides])
    assert {**resolved, "name": None} == {**expected, "name": None}


class Counted:
    """A network that counts its calls and otherwise is the network."""

    def __init__(self, network):
        self.network, self.calls = network, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.network(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.network, name)


@pytest.mark.parametrize("row", ROWS)
def test_terms_that_are_off_are_logged_as_zero_and_not_computed(row):
    model = ablation(row)
    for name in CALLS[row]:
        setattr(model, name, Counted(getattr(model, name)))
    losses = model.train_step(images(0), images(1), tf.constant(0, tf.int64))
    kept = ROWS[row][2]
    assert {name for name, value in losses.items() if float(value) > 0} == kept
    assert {name for name, value in losses.items() if float(value) == 0.0} == set(losses) - kept
    assert {name: getattr(model, name).calls for name in CALLS[row]} == CALLS[row]


def gradient(model, network, x, y) -> np.ndarray:
    with tf.GradientTape() as tape:
        losses, _, _ = model.generator_losses(x, y)
        total = tf.add_n(list(losses.values()))
    grads = tape.gradient(total, network.trainable_variables)
    return np.concatenate([g.numpy().ravel() for g in grads])


def differs(a, b) -> bool:
    return not np.allclose(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("row", ROWS)
def test_terms_that_are_off_give_no_gradient(row):
    model = ablation(row)
    kept = ROWS[row][2]
    x, y, other = images(0), images(1), images(2)
    # G sees y only through the backward cycle G(F(y)); F sees x only through the forward cycle F(G(x)).
    assert differs(gradient(model, model.G, x, y), gradient(model, model.G, x, other)) == ("cycle_Y" in kept)
    assert differs(gradient(model, model.F, x, y), gradient(model, model.F, other, y)) == ("cycle_X" in kept)
    # G's gradient depends on D_Y only through the adversarial term.
    before = gradient(model, model.G, x, y)
    model.D_Y.set_weights([w + 0.05 for w in model.D_Y.get_weights()])
    assert differs(before, gradient(model, model.G, x, y)) == ("G" in kept)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["loss.cycle=sideways"], "loss.cycle must be both, forward, backward or none"),
        (["loss.gan=maybe"], "loss.gan must be true or false"),
    ],
)
def test_switches_a_user_gets_wrong_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build(tiny_config(None, *overrides))

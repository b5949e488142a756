"""The learning rate per epoch, against values worked out by hand for 100 + 100 epochs."""

import pytest

from replication.schedule import decay_factor, learning_rate, total_epochs

BASE_LR = 0.0002
EPOCHS = 100
EPOCHS_DECAY = 100


def lr(epoch):
    return learning_rate(BASE_LR, epoch, EPOCHS, EPOCHS_DECAY)


def test_first_epoch_has_the_base_rate():
    assert lr(0) == BASE_LR


def test_last_constant_epoch_has_the_base_rate():
    # epoch 99: max(0, 99 + 1 - 100) = 0 -> factor 1.
    assert lr(EPOCHS - 1) == BASE_LR


def test_first_decay_epoch_drops_by_one_step():
    # epoch 100: 1 - 1/101 = 100/101.
    assert lr(EPOCHS) == pytest.approx(BASE_LR * 100 / 101, rel=1e-12)
    assert lr(EPOCHS) < BASE_LR


def test_halfway_through_the_decay():
    # epoch 149: 1 - 50/101 = 51/101; epoch 150: 1 - 51/101 = 50/101.
    assert lr(149) == pytest.approx(BASE_LR * 51 / 101, rel=1e-12)
    assert lr(150) == pytest.approx(BASE_LR * 50 / 101, rel=1e-12)


def test_last_epoch_has_one_step_left():
    # epoch 199: 1 - 100/101 = 1/101 -> 0.0002 / 101, not zero.
    assert total_epochs(EPOCHS, EPOCHS_DECAY) == 200
    assert lr(199) == pytest.approx(BASE_LR / 101, rel=1e-12)
    assert lr(199) == pytest.approx(1.98019801980198e-06, rel=1e-12)


def test_decay_is_linear_with_equal_steps():
    steps = [lr(e) - lr(e + 1) for e in range(EPOCHS, EPOCHS + EPOCHS_DECAY - 1)]
    for step in steps:
        assert step == pytest.approx(BASE_LR / 101, rel=1e-9)


def test_no_decay_keeps_the_rate_constant():
    assert [learning_rate(BASE_LR, e, 5, 0) for e in range(5)] == [BASE_LR] * 5


def test_factor_matches_reference_lambda_rule():
    # Reference: 1.0 - max(0, epoch + epoch_count - n_epochs) / float(n_epochs_decay + 1), epoch_count = 1.
    assert decay_factor(3, 2, 3) == 1.0 - 2 / 4.0
    assert decay_factor(1, 2, 3) == 1.0


def test_epoch_outside_training_is_refused():
    with pytest.raises(ValueError):
        lr(200)
    with pytest.raises(ValueError):
        lr(-1)

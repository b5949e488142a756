"""The learning rate per epoch (paper §4): constant, then linear decay towards zero.

Training runs `epochs + epochs_decay` epochs. The rate is `base_lr` for the
first `epochs` of them, then falls by `base_lr / (epochs_decay + 1)` per epoch.
This is the reference code's `lambda_rule` (with its `epoch_count` = 1), with
`epoch` counted from 0:

    factor = 1 - max(0, epoch + 1 - epochs) / (epochs_decay + 1)

so epochs 0 .. epochs-1 get `base_lr`, epoch `epochs` gets
`base_lr * epochs_decay / (epochs_decay + 1)`, and the last epoch,
`epochs + epochs_decay - 1`, gets `base_lr / (epochs_decay + 1)`: the rate
never reaches exactly zero. With the paper's 100 + 100 epochs and lr 0.0002
the last epoch trains at 0.0002 / 101. `epochs_decay` 0 keeps the rate
constant throughout.
"""

from __future__ import annotations

from dataclasses import dataclass


def total_epochs(epochs: int, epochs_decay: int) -> int:
    """How many epochs training runs: the constant ones, then the decaying ones."""
    return epochs + epochs_decay


def decay_factor(epoch: int, epochs: int, epochs_decay: int) -> float:
    """The multiplier on the base learning rate in 0-based `epoch` (the reference `lambda_rule`)."""
    if not 0 <= epoch < total_epochs(epochs, epochs_decay):
        raise ValueError(
            f"epoch {epoch} is outside training: epochs run from 0 to {total_epochs(epochs, epochs_decay) - 1}."
        )
    return 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)


def learning_rate(base_lr: float, epoch: int, epochs: int, epochs_decay: int) -> float:
    """The learning rate for 0-based `epoch`: `base_lr` for `epochs` epochs, then linear decay (paper §4)."""
    return base_lr * decay_factor(epoch, epochs, epochs_decay)


def steps_per_epoch(data_steps: int, train_cfg: dict) -> int:
    """An epoch's steps: the data's (the larger domain's images per batch), capped by train.max_steps_per_epoch."""
    cap = train_cfg["max_steps_per_epoch"]
    return min(data_steps, cap) if cap else data_steps


@dataclass(frozen=True)
class Epochs:
    """Which epoch a step is in: epochs of `steps` steps each, the first of them, 0-based epoch
    `first`, beginning at step `from_step`. A run that accepts new data (another number of steps
    per epoch) starts the epoch under way again where it resumes, so neither counter goes back."""

    steps: int
    from_step: int = 0
    first: int = 0

    def of(self, step: int) -> int:
        """The 0-based epoch that step `step + 1` trains in (at an epoch's last step: the next one)."""
        return self.first + (step - self.from_step) // self.steps

    def start(self, epoch: int) -> int:
        """The steps done when 0-based `epoch` begins."""
        return self.from_step + (epoch - self.first) * self.steps

    def restarted(self, step: int, steps: int) -> "Epochs":
        """Epochs of `steps` steps from `step` on, where the epoch under way at `step` starts again."""
        return Epochs(steps, step, self.of(step))


def position(step: int, steps_per_epoch: int, epochs: int | None = None) -> str:
    """Where a run at `step` stands, in the words of every command and page: `4 of the 8 steps of epoch 3`,
    `the end of epoch 2` (`... of 16` given the run's `epochs`), `no step yet`."""
    return position_words(*divmod(step, steps_per_epoch), steps_per_epoch, epochs)


def position_words(done: int, into: int, steps_per_epoch: int, epochs: int | None = None) -> str:
    """`position`'s words for `done` whole epochs and `into` steps of the next."""
    of = f" of {epochs}" if epochs else ""
    if into:
        return f"{into} of the {steps_per_epoch} steps of epoch {done + 1}{of}"
    return f"the end of epoch {done}{of}" if done else "no step yet"

"""The training loop: generic over any model with named losses and named sample images.

A model plugs in through the contract in replication/models.py (`loss_names`,
`train_step(a, b, step)`, `set_learning_rate(lr)`, `sample_images(a, b)`,
`checkpoint_items()`, `export(folder)`). The loop owns the run folder
(replication/runs.py), the compiled step, the learning-rate schedule, logs,
samples, checkpoints, resume and interruption.
"""

from __future__ import annotations

import math
import signal
import threading
from pathlib import Path

import keras
import tensorflow as tf

from replication import figures, machine, models, schedule
from replication.checkpoints import Checkpoints
from replication.errors import ConfigError, KitError
from replication.logs import LossLog, ProgressBar, TextLog
from replication.runs import RunFolder

class TrainingDiverged(KitError):
    """A loss became NaN or infinite."""


def make_strategy(train_cfg: dict) -> tf.distribute.Strategy:
    if train_cfg["strategy"] == "default":
        return tf.distribute.get_strategy()
    if train_cfg["strategy"] == "mirrored":
        return tf.distribute.MirroredStrategy()
    raise ConfigError(f"train.strategy must be 'default' or 'mirrored', not {train_cfg['strategy']!r}.")


def compile_step(model, strategy: tf.distribute.Strategy, jit_compile: bool):
    """One tf.function for the whole step on every replica; losses come back averaged over replicas.

    With XLA, each replica's step is one XLA program. Several replicas work only when all are
    GPUs: TensorFlow then compiles each replica's step on its own GPU and all-reduces across
    them with collectives. On other devices it would compile one program spanning all of them,
    which XLA cannot run (a variable on another device), so the kit refuses it.
    """
    if jit_compile and strategy.num_replicas_in_sync > 1 and not all(
        "GPU" in device.upper() for device in strategy.extended.worker_devices
    ):
        raise ConfigError(
            "train.jit_compile with several replicas needs every replica on a GPU (XLA compiles each GPU's "
            "step on its own; across CPU devices it cannot); set train.jit_compile=false."
        )
    replica_step = tf.function(model.train_step, jit_compile=True) if jit_compile else model.train_step

    @tf.function
    def step(a, b, step_index):
        per_replica = strategy.run(replica_step, args=(a, b, step_index))
        return {name: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None) for name, value in per_replica.items()}

    return step


def compile_steps(model, strategy: tf.distribute.Strategy, jit_compile: bool):
    """Several steps in one compiled call: `call(batches, first_step, count)` -> losses [count, len(loss_names)].

    `batches` is an iterator over the epoch's (distributed) batches; the call takes `count` (a
    Python int) of them and trains step `first_step`, then `first_step + 1`, ... on them. The
    steps are unrolled, not a tf.while_loop: TensorFlow's graph optimizer fuses ops the same way
    as in one step, so the numbers are exactly those of `count` calls of `compile_step`'s step
    (a while loop would change the CPU's fused kernels and round differently). Each distinct
    `count` is one trace. The losses stay on the device until the loop fetches them.
    """
    one_step = compile_step(model, strategy, jit_compile)

    @tf.function
    def call(batches, first_step, count: int):
        rows = []
        for i in range(count):
            a, b = next(batches)
            losses = one_step(a, b, first_step + i)
            rows.append(tf.stack([losses[name] for name in model.loss_names]))
        return tf.stack(rows)

    return call


def steps_per_call(train_cfg: dict) -> int:
    value = train_cfg["steps_per_call"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"train.steps_per_call must be a whole number of at least 1, not {value!r}.")
    return value


class StopRequest:
    """Ctrl-C or SIGTERM ask the loop to stop after the current call (with a checkpoint).

    A second Ctrl-C stops at once.
    """

    def __init__(self):
        self.signal_name = None
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self.handle)
        return self

    def handle(self, signum, frame):
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False


def train(config: dict, run_dir=None, fresh: bool = False, until_step: int | None = None, strategy=None) -> Path:
    """Train (or resume) the run of `config`; returns its folder.

    until_step: stop with a checkpoint once this many steps are done (a later
    call resumes exactly where it stopped).
    """
    run = RunFolder(run_dir or Path("runs") / config["name"])
    aside = run.move_aside() if fresh else None
    run.prepare(config)
    log = TextLog(run.log)
    if aside:
        log(f"--fresh: the previous run was moved to {aside}")
    train_cfg = config["train"]
    settings = machine.choose_settings(train_cfg, machine.detect())
    strategy = strategy or make_strategy(train_cfg)
    if config["data"]["batch_size"] % strategy.num_replicas_in_sync:
        raise ConfigError(
            f"data.batch_size {config['data']['batch_size']} must be a multiple of the "
            f"{strategy.num_replicas_in_sync} replicas."
        )

    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(settings["precision"].value)
    try:
        keras.utils.set_random_seed(train_cfg["seed"])
        data = models.training_data(config)
        if data.skipped:
            log(f"left out {len(data.skipped)} images that failed to decode: {', '.join(data.skipped)}")
        with strategy.scope():
            model = models.build(config, settings["precision"].value)
            checkpoints = Checkpoints(run.checkpoints, model.checkpoint_items(), train_cfg["save_epoch_freq"])
        restored = checkpoints.restore_latest()
        loop = Loop(config, run, model, data, checkpoints, strategy, log, settings["jit_compile"].value)
        run.record_settings(settings)
        log(
            f"{'resumed from ' + restored if restored else 'started'} at step {checkpoints.step}: "
            f"{loop.steps_per_epoch} steps per epoch, {loop.total_epochs} epochs, "
            f"{strategy.num_replicas_in_sync} replica(s); precision {settings['precision']}; "
            f"XLA {'on' if settings['jit_compile'].value else 'off'} ({settings['jit_compile'].reason})"
        )
        loop.run(checkpoints.step, until_step)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    return run.path


class Loop:
    def __init__(self, config, run, model, data, checkpoints, strategy, log, jit_compile: bool = False):
        train_cfg = config["train"]
        self.train_cfg, self.run_folder, self.model, self.data = train_cfg, run, model, data
        self.checkpoints, self.strategy, self.log = checkpoints, strategy, log
        self.steps_per_epoch = data.steps_per_epoch
        if train_cfg["max_steps_per_epoch"]:
            self.steps_per_epoch = min(self.steps_per_epoch, int(train_cfg["max_steps_per_epoch"]))
        self.total_epochs = train_cfg["epochs"] + train_cfg["epochs_decay"]
        self.steps_per_call = steps_per_call(train_cfg)
        self.step_fn = compile_steps(model, strategy, jit_compile)
        self.losses = LossLog(run.losses, model.loss_names, run.tensorboard)
        self.samples = data.samples(train_cfg["n_samples"])

    def learning_rate(self, epoch: int) -> float:
        cfg = self.train_cfg
        return schedule.learning_rate(cfg["lr"], epoch, cfg["epochs"], cfg["epochs_decay"])

    def run(self, step: int, until_step: int | None) -> None:
        self.losses.resume_at(step)
        with StopRequest() as stop:
            for epoch in range(step // self.steps_per_epoch, self.total_epochs):
                step = self.run_epoch(epoch, step, until_step, stop)
                completed = step == (epoch + 1) * self.steps_per_epoch
                if completed:
                    self.end_epoch(epoch, step)  # saves a checkpoint too
                if stop.signal_name or (until_step is not None and step >= until_step):
                    if not completed:
                        self.checkpoints.save(step, epoch)
                    reason = f"on {stop.signal_name}" if stop.signal_name else f"at step {until_step} as asked"
                    self.log(f"stopped {reason}; checkpoint saved at step {step}. Run the same command again to resume.")
                    if stop.signal_name:
                        raise KeyboardInterrupt
                    return
        paths = self.model.export(self.run_folder.export, step=step, epoch=self.total_epochs)
        self.log(f"finished: generators exported to {', '.join(str(p) for p in paths.values())}")

    def run_epoch(self, epoch: int, step: int, until_step, stop) -> int:
        """Train epoch `epoch` from `step` on; returns the step reached.

        The host never waits for the device between calls: the losses stay there and are fetched
        (and checked) at logged steps and before returning, so the caller's checkpoint follows
        finite losses only. A stop request ends the epoch at the next call boundary.
        """
        lr = self.learning_rate(epoch)
        self.model.set_learning_rate(lr)
        start = epoch * self.steps_per_epoch
        end = start + self.steps_per_epoch if until_step is None else min(start + self.steps_per_epoch, until_step)
        batches = self.data.epoch(epoch, start=step - start).take(max(end - step, 0))
        batches = iter(self.strategy.experimental_distribute_dataset(batches))
        bar = ProgressBar(epoch + 1, self.total_epochs, self.steps_per_epoch)
        pending, values = [], None  # losses [count, len(loss_names)] of the calls not fetched yet
        try:
            while step < end and not stop.signal_name:
                count = min(self.steps_per_call, end - step)
                pending.append(self.step_fn(batches, tf.constant(step, tf.int64), count))
                step += count
                if step // self.train_cfg["log_every"] > (step - count) // self.train_cfg["log_every"]:
                    values = self.fetch_losses(pending, step, epoch, lr)
                bar.update(step - start, values)
            if pending:
                self.fetch_losses(pending, step, epoch, lr)
        finally:
            bar.close()
        return step

    def fetch_losses(self, pending: list, step: int, epoch: int, lr: float) -> dict:
        """Fetch the losses of the steps up to `step` (one wait for the device), check every step's,
        write the rows of the logged steps; returns the last step's losses by name."""
        rows = tf.concat(pending, axis=0).numpy()
        pending.clear()
        for row_step, row in enumerate(rows, start=step - len(rows) + 1):
            values = dict(zip(self.model.loss_names, row))
            self.check_finite(values, row_step)
            if row_step % self.train_cfg["log_every"] == 0:
                self.losses.write(row_step, epoch + 1, values, lr)
        return values

    def check_finite(self, values: dict, step: int) -> None:
        bad = [name for name, value in values.items() if not math.isfinite(value)]
        if bad:
            latest = self.checkpoints.latest.latest_checkpoint or "none yet"
            raise TrainingDiverged(
                f"Loss {', '.join(f'{n}={values[n]}' for n in bad)} at step {step}: training diverged. "
                f"Nothing was saved after it; the last good checkpoint is {latest}. Try a lower "
                "train.lr, or train.precision=float32."
            )

    def end_epoch(self, epoch: int, step: int) -> None:
        self.checkpoints.save_epoch_end(step, epoch + 1)
        images = self.model.sample_images(*self.samples)
        figures.save_samples(images, self.run_folder.samples / f"epoch_{epoch + 1:03d}")

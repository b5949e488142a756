"""The training loop: generic over any model with named losses and named sample images.

A model plugs in through the contract in replication/models.py (`loss_names`,
`train_step(a, b, step)`, `set_learning_rate(lr)`, `sample_images(a, b)`,
`checkpoint_items()`, `generator_names`, ...). The loop owns the run folder
(replication/runs.py), the compiled step, the learning-rate schedule, logs,
samples, checkpoints, resume, interruption and the export at the end (replication/export.py).

One training at a time holds a run folder (an OS lock on its `.lock` file).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from replication import config as config_lib
from replication import cluster, export, figures, gan, jobs, models, quality, schedule
from replication.checkpoints import Checkpoints, first_line, indexed_checkpoints, loss_scale_in, remove_abandoned_temp
from replication.errors import ConfigError, KitError, RunFolderError
from replication.files import FolderLock, remove_partial_writes, storage_errors
from replication.logs import LossLog, ProgressBar, TextLog
from replication.runs import RunFolder
from replication.speed import machine

class TrainingDiverged(KitError):
    """A loss became NaN or infinite."""


STOPPED_BY = {"SIGINT": "Ctrl-C", "SIGTERM": "SIGTERM"}  # how a stop request is named in RUN/state.json


class Stopped(KeyboardInterrupt):
    """The loop stopped on a signal after saving a checkpoint; exits with 128 + the signal's number."""

    def __init__(self, signal_name: str):
        super().__init__(signal_name)
        self.exit_status = 128 + signal.Signals[signal_name].value


@contextlib.contextmanager
def claim(run: RunFolder, fresh: bool):
    """Hold the run folder's lock while training; with --fresh, move the old run aside first.

    Yields where the old run went (or None).
    """
    aside = None
    if fresh and run.path.exists():
        with FolderLock(run.path):  # never move a folder another training is writing to
            aside = run.move_aside()
    with FolderLock(run.path):
        yield aside


def after_storage_error(run: RunFolder):
    """What a training stopped by a full disk or an unwritable folder says last: what is safe."""
    def then() -> str:
        latest = (indexed_checkpoints(run.checkpoints) or [None])[-1]
        safe = f"the latest checkpoint, {latest}, is whole and" if latest else "no checkpoint was saved yet;"
        return f" (or train into another folder with --run-dir); {safe} the same command resumes."
    return then


def make_strategy(train_cfg: dict) -> tf.distribute.Strategy:
    """The strategy of train.strategy on one machine, default or mirrored (cluster.job_for makes multi_worker's)."""
    return tf.distribute.MirroredStrategy() if train_cfg["strategy"] == "mirrored" else tf.distribute.get_strategy()


def compile_step(model, strategy: tf.distribute.Strategy, jit_compile: bool):
    """One tf.function for the whole step on every replica; losses come back averaged over replicas.

    With XLA, each replica's step is one XLA program. Several replicas work only when all are
    GPUs: TensorFlow then compiles each replica's step on its own GPU and all-reduces across
    them with collectives. On other devices it would compile one program spanning all of them,
    which XLA cannot run (a variable on another device), so the kit refuses it.

    Without autograph: the step branches only on Python values, and converting it and the
    Keras optimizer it calls cost seconds at every start (the traced graph is the same).
    """
    if jit_compile and strategy.num_replicas_in_sync > 1 and not all(
        "GPU" in device.upper() for device in strategy.extended.worker_devices
    ):
        raise ConfigError(
            "train.jit_compile with several replicas needs every replica on a GPU (XLA compiles each GPU's "
            "step on its own; across CPU devices it cannot); set train.jit_compile=false."
        )
    replica_step = tf.function(model.train_step, jit_compile=True, autograph=False) if jit_compile else model.train_step

    @tf.function(autograph=False)
    def step(a, b, step_index):
        per_replica = strategy.run(replica_step, args=(a, b, step_index))
        return {name: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None) for name, value in per_replica.items()}

    return step


def compile_steps(model, strategy: tf.distribute.Strategy, jit_compile: bool, steps_per_call: int, on_trace=None):
    """Up to `steps_per_call` steps in one compiled call: `call(batches, first_step, count)` -> losses [count, len(loss_names)].

    `batches` is an iterator over the epoch's (distributed) batches; the call takes `count` (1 to
    steps_per_call) of them and trains step `first_step`, then `first_step + 1`, ... on them. A
    call of `steps_per_call` steps is one traced function with the steps unrolled, not a
    tf.while_loop: TensorFlow's graph optimizer fuses ops the same way as in one step, so the numbers
    are exactly those of one-step calls (a while loop would change the CPU's fused kernels and round
    differently). A shorter call (an epoch's last, a resumed run's first, a stop at --until-step) is
    that many calls of the one-step function, so at most two traces serve a run. (Steps made
    conditional with tf.cond inside one trace rounded differently from run to run.) `on_trace()` is
    called as a trace begins. The losses stay on the device until the loop fetches them.
    """
    one_step = compile_step(model, strategy, jit_compile)

    def steps(count: int):
        @tf.function(autograph=False)
        def call(batches, first_step):
            if on_trace:
                on_trace()  # Python runs here only while TensorFlow traces
            rows = []
            for i in range(count):
                a, b = next(batches)
                losses = one_step(a, b, first_step + i)
                rows.append(tf.stack([losses[name] for name in model.loss_names]))
            return tf.stack(rows)

        return call

    return StepCalls(steps_per_call, steps(steps_per_call), steps(1) if steps_per_call > 1 else None)


class StepCalls:
    """compile_steps' call: `steps_per_call` steps in one traced call, fewer one by one."""

    def __init__(self, steps_per_call: int, full, one):
        self.steps_per_call, self.full, self.one = steps_per_call, full, one

    def __call__(self, batches, first_step, count):
        if int(count) == self.steps_per_call:
            return self.full(batches, first_step)
        return tf.concat([self.one(batches, first_step + i) for i in range(int(count))], axis=0)

    def experimental_get_tracing_count(self) -> int:
        """Traces made so far: one for the full calls, one more once a shorter call came."""
        return sum(f.experimental_get_tracing_count() for f in (self.full, self.one) if f is not None)


class StopRequest:
    """Ctrl-C or SIGTERM ask the loop to stop after the current call (with a checkpoint).

    A second Ctrl-C stops at once, as a kill would: the process exits (130)
    without raising into whatever Python was doing (a destructor, a callback),
    and the run resumes from its latest checkpoint.

    Python runs a signal handler only once the main thread is back in Python, and TensorFlow
    builds and runs the step in C++ (the first build takes about a minute on a CPU). So every
    signal also wakes a thread of its own (signal.set_wakeup_fd), which answers at once: the
    first Ctrl-C says what will happen, the second exits.
    """

    def __init__(self, building=lambda: False):
        self.signal_name = None
        self.building = building  # whether the step is being built (then no step can stop before it is)
        self.previous = {}
        self.wakeup = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self.handle)
            self.wakeup = socket.socketpair()
            self.wakeup[1].setblocking(False)
            self.previous_wakeup = signal.set_wakeup_fd(self.wakeup[1].fileno(), warn_on_full_buffer=False)
            self.answering = threading.Thread(target=self.answer, name="Ctrl-C", daemon=True)
            self.answering.start()
        return self

    def handle(self, signum, frame):
        self.signal_name = self.signal_name or signal.Signals(signum).name

    def answer(self):
        presses = 0
        while received := self.wakeup[0].recv(64):
            for signum in received:
                if signum != signal.SIGINT:
                    continue
                presses += 1
                if presses == 1:
                    when = "as soon as the step is built" if self.building() else "after the current steps, with a checkpoint"
                    print(f"\nstopping {when}; Ctrl-C again to stop now.", file=sys.stderr, flush=True)
                elif presses == 2:
                    print("\nstopped at once on the second Ctrl-C; the same command resumes from the latest checkpoint.",
                          file=sys.stderr, flush=True)
                    os._exit(128 + signal.SIGINT)

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        if self.wakeup:
            signal.set_wakeup_fd(self.previous_wakeup)
            self.wakeup[1].close()  # the thread answers what is left, then ends
            self.answering.join()
            self.wakeup[0].close()
        return False


def train(config: dict, run_dir=None, fresh: bool = False, until_step: int | None = None, strategy=None,
          accept_new_data: bool = False) -> Path:
    """Train (or resume) the run of `config`; returns its folder.

    until_step: stop with a checkpoint once this many steps are done (a later
    call resumes exactly where it stopped).
    accept_new_data: resume even though the data's files changed since the run last trained.
    """
    if until_step is not None:
        config_lib.whole_number(1).check("--until-step", until_step)
    config, made_absolute = config_lib.with_absolute_paths(config)  # the run's config works from any folder
    job = cluster.job_for(config, RunFolder(run_dir or Path("runs") / config["name"]), strategy, make_strategy)
    run = job.run  # another worker than the chief writes into a temporary folder
    settings = machine_settings(config, job)
    data = models.training_data(config)  # read and checked before anything is written: a start that fails on its data leaves nothing behind
    with job, storage_errors(run.path, after_storage_error(run), RunFolderError), claim(run, fresh) as aside:
        new_data = job.chief_run.data_changes(data.listings(), accept_new_data)  # refused before anything is written
        changed, kept = run.prepare(config)
        log = TextLog(run.log)
        if aside:
            log(f"--fresh: the previous run was moved to {aside}")
        for key, (given, absolute) in made_absolute.items():
            log(f"{key} {given} is {absolute}")
        for temp in remove_abandoned_temp(run.checkpoints) + remove_partial_writes(run.path):
            log(f"removed {temp}, left by a write that did not finish")
        train_in(run, config, settings, job, data, log, until_step, Resume(changed, kept, new_data))
    return job.chief_run.path


@dataclass(frozen=True)
class Resume:
    """What a resume changed: configuration keys {key: (before, now)}, where the configuration they
    replaced is kept, and the data's files in words (accepted with --accept-new-data)."""

    config: dict
    kept: Path | None
    data: str | None

    def say(self, epochs: schedule.Epochs, step: int, log: TextLog) -> None:
        """One line for the changed configuration, if any; the learning rate follows the new train.epochs."""
        if not self.config:
            if self.kept:  # the same run, its config.yaml written anew (a folder now absolute, a file edited by hand)
                log(f"config.yaml is written anew; the one before is kept as {self.kept.name}")
            return
        line = ", ".join(f"{key} {before} -> {now}" for key, (before, now) in self.config.items())
        if {"train.epochs", "train.epochs_decay"} & set(self.config):
            line += f": the run continues from epoch {epochs.of(step) + 1}; the learning rate schedule is recomputed"
        if self.kept:
            line += f" (the configuration before is kept as {self.kept.name})"
        log(line)


def epochs_of(job: jobs.Job, data, steps: int, step: int, new_data: str | None, log: TextLog) -> schedule.Epochs:
    """Where the run's epochs begin (data.json), recorded with the data's files; on new data the
    epoch under way starts again where the run resumes, so the epoch and step never go back."""
    record = job.chief_run.data_record()
    epochs = schedule.Epochs(**record["epochs"]) if record and step else schedule.Epochs(steps)
    if new_data:
        epochs = epochs.restarted(step, steps)
        log(f"--accept-new-data: the data changed ({new_data}); the run trains on it from step {step} on, "
            f"epoch {epochs.first + 1} starting again with {steps} steps")
    job.run.record_data(data.listings(), epochs)
    return epochs


def machine_settings(config: dict, job: jobs.Job) -> dict:
    """This machine's settings (machine.choose_settings), with the job's strategy checked against the config.

    Chosen before TensorFlow starts (reading the data starts it): threads per op can be set only then.
    """
    train_cfg = config["train"]
    here = machine.detect()
    settings = machine.choose_settings(train_cfg, here)
    settings["threads_per_op"] = machine.apply_threads(settings["threads_per_op"], here)
    strategy = job.strategy
    if config["data"]["batch_size"] % strategy.num_replicas_in_sync:
        raise ConfigError(
            f"data.batch_size {config['data']['batch_size']} must be a multiple of the "
            f"{strategy.num_replicas_in_sync} replicas."
        )
    return settings


def train_in(run: RunFolder, config: dict, settings: dict, job: jobs.Job, data, log: TextLog, until_step: int | None,
             resume: Resume) -> None:
    train_cfg = config["train"]
    strategy = job.strategy
    settings["precision"] = machine.precision_for_checkpoints(
        train_cfg["precision"], settings["precision"], loss_scale_in(job.chief_run.checkpoints)
    )

    with gan.dtype_policy(settings["precision"].value):
        keras.utils.set_random_seed(train_cfg["seed"])
        if data.skipped:
            log(f"left out {len(data.skipped)} images that failed to decode: {', '.join(data.skipped)}")
        with strategy.scope():
            model = models.build(config, settings["precision"].value, settings["conv_gradients"].value)
            checkpoints = Checkpoints(run.checkpoints, model.checkpoint_items(), train_cfg["save_epoch_freq"], config)
        restored = job.restore(checkpoints, log)
        steps = schedule.steps_per_epoch(data.steps_per_epoch, train_cfg)
        epochs = epochs_of(job, data, steps, checkpoints.step, resume.data, log)
        loop = Loop(config, run, model, data, checkpoints, strategy, log, epochs, settings["jit_compile"].value)
        run.record_settings(settings)
        resume.say(epochs, checkpoints.step, log)
        log(
            f"{'resumed from ' + restored if restored else 'started'} at step {checkpoints.step}: "
            f"{loop.steps_per_epoch} steps per epoch, {loop.total_epochs} epochs, "
            f"{strategy.num_replicas_in_sync} replica(s); precision {settings['precision']}; "
            f"conv gradients {settings['conv_gradients']}; "
            f"XLA {'on' if settings['jit_compile'].value else 'off'} ({settings['jit_compile'].reason}); "
            f"threads per op {settings['threads_per_op']}"
        )
        warning = slow_on_this_machine(config, machine.detect())
        if warning:
            log(warning)
        loop.run(checkpoints.step, until_step)


def slow_on_this_machine(config: dict, here: machine.Machine) -> str | None:
    """A warning for a paper-size run (256x256 or larger) started without a GPU."""
    size = config["data"]["crop_size"]
    if here.gpu_capabilities or size < 256:
        return None
    return (f"warning: {size}x{size} images on a CPU: one step takes seconds, so the paper's 200 epochs take days to weeks "
            "(docs/performance.md, 'How long a run takes'). Train on a GPU; the CPU suits the demo.")


class Loop:
    def __init__(self, config, run, model, data, checkpoints, strategy, log, epochs: schedule.Epochs, jit_compile: bool = False):
        train_cfg = config["train"]
        self.train_cfg, self.run_folder, self.model, self.data = train_cfg, run, model, data
        self.model_cfg = config["model"]
        self.checkpoints, self.strategy, self.log = checkpoints, strategy, log
        self.epochs, self.steps_per_epoch = epochs, epochs.steps
        self.total_epochs = schedule.total_epochs(train_cfg["epochs"], train_cfg["epochs_decay"])
        self.steps_per_call = train_cfg["steps_per_call"]
        self.step_fn = compile_steps(model, strategy, jit_compile, self.steps_per_call, self.building)
        self.trace_started = None  # when the trace under way began
        self.losses = LossLog(run.losses, model.loss_names, run.tensorboard)
        self.samples = data.samples(train_cfg["n_samples"])
        self.quality = quality.QualityLog(config, run, model) if train_cfg["eval_every"] else None

    def learning_rate(self, epoch: int) -> float:
        cfg = self.train_cfg
        return schedule.learning_rate(cfg["lr"], epoch, cfg["epochs"], cfg["epochs_decay"])

    def run(self, step: int, until_step: int | None) -> None:
        if until_step is not None and step >= until_step:
            self.log(f"nothing to do: the run is already at step {step}, and --until-step is {until_step}.")
            return
        self.record("training", step)
        try:
            self.train_epochs(step, until_step)
        except Stopped:
            raise  # recorded where it stopped
        except BaseException as err:
            with contextlib.suppress(OSError):  # a full disk must still show its own error
                self.record("stopped", None, f"a fault: {first_line(err)}")
            raise

    def record(self, state: str, step: int | None, how: str = "") -> None:
        """RUN/state.json, so that pages can say whether the run trains, stopped (and how) or finished."""
        self.run_folder.record_state(state, step, self.steps_per_epoch, how)

    def train_epochs(self, step: int, until_step: int | None) -> None:
        self.losses.resume_at(step)
        self.complete_last_epoch(step)
        if self.quality:
            self.quality.resume_at(step)
        building = lambda: self.trace_started is not None  # noqa: E731
        with jobs.agreed_stop(StopRequest(building), self.strategy) as stop, contextlib.closing(self.losses):
            for epoch in range(self.epochs.of(step), self.total_epochs):
                step = self.run_epoch(epoch, step, until_step, stop)
                completed = step == self.epochs.start(epoch + 1)
                if completed:
                    self.end_epoch(epoch, step)  # saves a checkpoint too
                if should_stop(stop, step, until_step):
                    if not completed:
                        self.checkpoints.save(step)
                    reason = f"on {stop.signal_name}" if stop.signal_name else f"at step {until_step} as asked"
                    self.log(f"stopped {reason}; checkpoint saved at step {step}. Run the same command again to resume.")
                    self.record("stopped", step, STOPPED_BY.get(stop.signal_name, stop.signal_name) if stop.signal_name else f"--until-step {until_step}")
                    if stop.signal_name:
                        raise Stopped(stop.signal_name)
                    return
        paths = export.export_model(self.model, self.model_cfg, self.run_folder.export, step=step, epoch=self.total_epochs)
        self.log(f"finished: generators exported to {', '.join(str(p) for p in paths.values())}")
        self.record("finished", step)

    def run_epoch(self, epoch: int, step: int, until_step, stop) -> int:
        """Train epoch `epoch` from `step` on; returns the step reached.

        The host never waits for the device between calls: the losses stay there and are fetched
        (and checked) at logged steps and before returning, so the caller's checkpoint follows
        finite losses only. A stop request ends the epoch at the next call boundary.
        """
        lr = self.learning_rate(epoch)
        self.model.set_learning_rate(lr)
        start = self.epochs.start(epoch)
        end = start + self.steps_per_epoch if until_step is None else min(start + self.steps_per_epoch, until_step)
        batches = iter(jobs.epoch_batches(self.strategy, self.data, epoch, step - start, end - step))
        bar = ProgressBar(epoch + 1, self.total_epochs, self.steps_per_epoch)
        pending, values = [], None  # losses [count, len(loss_names)] of the calls not fetched yet
        try:
            while step < end and not stop.signal_name:
                count = min(self.steps_per_call, end - step)
                pending.append(self.step_fn(batches, tf.constant(step, tf.int64), count))
                traced = self.say_if_traced()
                step += count
                if step // self.train_cfg["log_every"] > (step - count) // self.train_cfg["log_every"]:
                    values = self.fetch_losses(pending, step, epoch, lr)
                bar.update(step - start, values, traced)
            if pending:
                self.fetch_losses(pending, step, epoch, lr)
        finally:
            bar.close()
        return step

    def building(self) -> None:
        """TensorFlow begins to trace (and then optimise) the call: say so, and time it."""
        self.trace_started = time.monotonic()  # first: a Ctrl-C answering the line below must find it set
        self.log("building the training step: about a minute on a CPU")

    def say_if_traced(self) -> bool:
        """After a call: whether it traced; if it did, say how long that took."""
        if self.trace_started is None:
            return False
        started, self.trace_started = self.trace_started, None
        self.log(f"built the training step in {time.monotonic() - started:.0f} s")
        return True

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
        self.save_samples(epoch + 1, step)
        if self.quality and (epoch + 1) % self.train_cfg["eval_every"] == 0:
            self.quality.log(step, epoch + 1)

    def save_samples(self, epochs_done: int, step: int) -> None:
        images = self.model.sample_images(*self.samples)
        title = f"epoch {epochs_done}, step {step}: the same test images"
        picture = figures.save_samples(images, self.samples_stem(epochs_done), self.model.sample_captions, title)
        self.losses.write_image("samples", picture, step)  # beside the scalars in TensorBoard

    def samples_stem(self, epochs_done: int) -> Path:
        return self.run_folder.samples / f"epoch_{epochs_done:03d}"

    def complete_last_epoch(self, step: int) -> None:
        """Write what a run killed just after an epoch's checkpoint did not: its samples, its kept checkpoint.

        A run that resumes at the end of an epoch has that epoch's weights, so
        what it writes now is what the epoch would have written.
        """
        epochs_done = self.epochs.of(step)
        restarted_here = step == self.epochs.from_step > 0  # new data accepted here, perhaps inside an epoch
        if step != self.epochs.start(epochs_done) or not epochs_done or restarted_here:
            return
        stem = self.samples_stem(epochs_done)
        if not (stem.with_suffix(".png").exists() and stem.with_suffix(".npz").exists()):
            self.save_samples(epochs_done, step)
            self.log(f"wrote the missing samples of epoch {epochs_done} ({stem}.png) from the restored checkpoint, which holds that epoch's weights")
        if self.checkpoints.keeps(epochs_done) and not self.checkpoints.has_kept(epochs_done):
            path = self.checkpoints.save_kept(epochs_done)
            self.log(f"saved the missing kept checkpoint of epoch {epochs_done} ({path}) from the restored checkpoint")


def should_stop(stop: StopRequest, step: int, until_step: int | None) -> bool:
    """A signal arrived, or --until-step is reached."""
    return stop.signal_name is not None or (until_step is not None and step >= until_step)

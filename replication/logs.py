"""What a run writes while it trains: the loss CSV, TensorBoard scalars, a text log, a progress bar;
and `bar`, the progress bar of `evaluate`'s work."""

from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path

import tensorflow as tf
from tqdm import tqdm

from replication.files import atomic_write_text, readable


class CsvLog:
    """A CSV file with a row per logged step (`columns` start with step), appended as the run goes.

    A resumed run keeps every row up to the step it resumes from and appends
    after it, so each step appears once even when the run died after logging
    steps its last checkpoint did not keep. A row the run died while writing
    (no line end, or fields missing) is dropped.
    """

    def __init__(self, path: Path, columns):
        self.path = Path(path)
        self.columns = list(columns)

    def resume_at(self, step: int) -> None:
        if not self.path.exists():
            atomic_write_text(self.path, ",".join(self.columns) + "\n")
            return
        text = self.path.read_text()
        whole_lines = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
        rows = list(csv.DictReader(io.StringIO(whole_lines)))
        kept = [row for row in rows if self.complete(row) and int(row["step"]) <= step]
        if len(kept) != len(rows) or whole_lines != text:
            atomic_write_text(self.path, self.to_csv(kept))

    def complete(self, row: dict) -> bool:
        return None not in row and all(row.get(column) not in (None, "") for column in self.columns) and row["step"].isdigit()

    def to_csv(self, rows) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()

    def append(self, row: dict) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns, lineterminator="\n").writerow(row)
            f.flush()


class LossLog(CsvLog):
    """One row of losses.csv every `log_every` steps: step, epoch, the named losses, lr, wall time;
    the same scalars to TensorBoard."""

    def __init__(self, path: Path, loss_names, tensorboard_dir: Path | None = None):
        super().__init__(path, ["step", "epoch", *loss_names, "lr", "wall_time"])
        self.tensorboard = tf.summary.create_file_writer(str(tensorboard_dir)) if tensorboard_dir else None

    def write(self, step: int, epoch: int, losses: dict, lr: float) -> None:
        self.append({"step": step, "epoch": epoch, **{k: f"{float(v):.6g}" for k, v in losses.items()}, "lr": f"{lr:.6g}", "wall_time": f"{time.time():.3f}"})
        if self.tensorboard:
            with self.tensorboard.as_default(step=step):
                for name, value in losses.items():
                    tf.summary.scalar(f"loss/{name}", float(value))
                tf.summary.scalar("lr", lr)

    def close(self) -> None:
        """Write out TensorBoard's queue now, so a full disk shows here and not at exit."""
        if self.tensorboard:
            self.tensorboard.close()


    def write_image(self, name: str, image, step: int) -> None:
        """One uint8 HxWx3 picture as a TensorBoard image summary (the epoch's sample grid)."""
        if self.tensorboard:
            with self.tensorboard.as_default(step=step):
                tf.summary.image(name, image[None], max_outputs=1)
            self.tensorboard.flush()


class TextLog:
    """Lines for the run's own record (`run.log`), echoed to the terminal (above a progress bar, if one is shown)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def __call__(self, message: str) -> None:
        message = readable(message)
        tqdm.write(message)
        sys.stdout.flush()
        with self.path.open("a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")


class StepRate:
    """Steps per second of the calls that did not trace, for the progress bar's rate and ETA.

    A call that traced spent its time building the step, not training, so it is left out. The rate is a moving average
    weighing the latest call by `smoothing`, so a slow start fades out.
    """

    def __init__(self, smoothing: float = 0.1):
        self.smoothing = smoothing
        self.steps = self.seconds = 0.0  # moving averages; their ratio needs no bias correction

    def add(self, steps: int, seconds: float, traced: bool) -> None:
        if traced:
            return
        self.steps += self.smoothing * (steps - self.steps)
        self.seconds += self.smoothing * (seconds - self.seconds)

    @property
    def per_second(self) -> float | None:
        """None until a call that did not trace has been timed."""
        return self.steps / self.seconds if self.seconds > 0 else None


class _Bar(tqdm):
    """tqdm showing `step_rate`'s rate and the ETA it gives, instead of its own average over every update."""

    def __init__(self, step_rate: StepRate, **kwargs):
        self.step_rate = step_rate
        super().__init__(**kwargs)

    @property
    def format_dict(self):
        shown = super().format_dict
        shown["rate"] = self.step_rate.per_second
        if shown["rate"] is None:
            shown["initial"] = shown["n"]  # no rate yet: '?', not tqdm's average over the traces
        return shown


class ProgressBar:
    """`epoch 3/200:  38%|###8      | 512/1334 [02:05<03:20, 4.10step/s, D_X 0.21 G 0.63 ...]` (tqdm).

    The bar starts once the epoch's first compiled call has returned, so the input pipeline's start
    is not timed; the rate and ETA leave out every call that traced (StepRate). On a terminal it is
    redrawn in place; into a pipe or a file, where a redrawn line would share its line with the next
    message, it is written as a whole line every `every` seconds and when the epoch ends.
    """

    def __init__(self, epoch: int, epochs: int, total: int, stream=None, clock=time.monotonic, every: float = 60):
        stream = sys.stderr if stream is None else stream  # the stderr of now, which may have been replaced since import
        self.description, self.total, self.stream, self.clock = f"epoch {epoch}/{epochs}", total, stream, clock
        self.bar, self.rate = None, StepRate()
        self.last = None  # (steps done, time) at the latest update
        self.interactive, self.every, self.written_at = stream.isatty(), every, None

    def update(self, done: int, losses: dict | None = None, traced: bool = False) -> None:
        """`done` steps of the epoch are dispatched, by a call that `traced` or not; `losses` are the
        latest fetched ones, if any."""
        now = self.clock()
        if self.bar is None:
            self.bar = _Bar(
                self.rate, total=self.total, initial=done, desc=self.description, unit="step",
                file=self.stream if self.interactive else io.StringIO(), mininterval=0.5 if self.interactive else 1e9,
                dynamic_ncols=True, ascii=not self.interactive,
            )
            self.written_at = now
        else:
            self.rate.add(done - self.last[0], now - self.last[1], traced)
            self.bar.update(done - self.bar.n)
        self.last = (done, now)
        if losses:
            self.bar.set_postfix_str(" ".join(f"{k} {float(v):.3f}" for k, v in losses.items()), refresh=False)
        if not self.interactive and now - self.written_at >= self.every:
            self.write_line(now)

    def write_line(self, now: float) -> None:
        self.stream.write(f"{self.bar}\n")
        self.stream.flush()
        self.written_at = now

    def close(self) -> None:
        if self.bar is None:
            return
        if not self.interactive:
            self.write_line(self.clock())
        self.bar.close()


def bar(iterable, total, description: str, progress: bool, unit: str = "image"):
    """`iterable` with a progress bar on stderr (tqdm) when `progress` and stderr is a terminal (into a
    pipe or a file, a bar redrawn in place would share its line with what is printed next)."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=description, unit=unit, disable=not (progress and sys.stderr.isatty()), leave=False)

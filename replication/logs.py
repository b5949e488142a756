"""What a run writes while it trains: the loss CSV, TensorBoard scalars, a text log, a progress bar."""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from pathlib import Path

import tensorflow as tf

from replication.io import atomic_write_text


class LossLog:
    """One CSV row every `log_every` steps: step, epoch, the named losses, lr, wall time.

    A resumed run keeps every row up to the step it resumes from and appends
    after it, so each step appears once even when the run died after logging
    steps its last checkpoint did not keep. A row the run died while writing
    (no line end, or fields missing) is dropped.
    """

    def __init__(self, path: Path, loss_names, tensorboard_dir: Path | None = None):
        self.path = Path(path)
        self.columns = ["step", "epoch", *loss_names, "lr", "wall_time"]
        self.tensorboard = tf.summary.create_file_writer(str(tensorboard_dir)) if tensorboard_dir else None

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

    def write(self, step: int, epoch: int, losses: dict, lr: float) -> None:
        row = {"step": step, "epoch": epoch, **{k: f"{float(v):.6g}" for k, v in losses.items()}, "lr": f"{lr:.6g}", "wall_time": f"{time.time():.3f}"}
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns, lineterminator="\n").writerow(row)
            f.flush()
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
    """Lines for the run's own record (`run.log`), echoed to the terminal."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def __call__(self, message: str) -> None:
        print(message, flush=True)
        with self.path.open("a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")


class ProgressBar:
    """`epoch 3/200 [#####.....] 512/1334 4.1 step/s ETA 3m20s D_X 0.21 G 0.63 ...` on one line."""

    def __init__(self, epoch: int, epochs: int, total: int, start: int = 0, stream=sys.stderr):
        self.epoch, self.epochs, self.total, self.done = epoch, epochs, total, start
        self.start_done, self.started = start, time.monotonic()
        self.stream = stream
        self.interactive = stream.isatty()
        self.last_line = 0.0

    def update(self, done: int, losses: dict) -> None:
        self.done = done
        now = time.monotonic()
        finished = done >= self.total
        if not self.interactive and not finished and now - self.last_line < 30:
            return
        self.last_line = now
        rate = (done - self.start_done) / max(now - self.started, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else math.inf
        filled = int(20 * done / max(self.total, 1))
        values = " ".join(f"{k} {float(v):.3f}" for k, v in losses.items())
        line = (
            f"epoch {self.epoch}/{self.epochs} [{'#' * filled}{'.' * (20 - filled)}] {done}/{self.total} "
            f"{rate:.2f} step/s ETA {format_duration(eta)} {values}"
        )
        end = "\n" if finished or not self.interactive else ""
        self.stream.write(("\r" if self.interactive else "") + line + end)
        self.stream.flush()


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"

"""What a run writes while it trains: the loss CSV, TensorBoard scalars, a text log, a progress bar."""

from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path

import tensorflow as tf
from tqdm import tqdm

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
    """`epoch 3/200:  38%|###8      | 512/1334 [02:05<03:20, 4.10step/s, D_X 0.21 G 0.63 ...]` (tqdm).

    The bar starts once the epoch's first compiled call has returned, so its rate and ETA never
    include tracing, XLA compilation or the input pipeline's start; the rate is a moving average
    of recent updates (tqdm's smoothing), so a slow start fades out of the ETA.
    """

    def __init__(self, epoch: int, epochs: int, total: int, stream=sys.stderr):
        self.description, self.total, self.stream = f"epoch {epoch}/{epochs}", total, stream
        self.bar = None

    def update(self, done: int, losses: dict | None = None) -> None:
        """`done` steps of the epoch are dispatched; `losses` are the latest fetched ones, if any."""
        if self.bar is None:
            interactive = self.stream.isatty()
            self.bar = tqdm(
                total=self.total, initial=done, desc=self.description, unit="step", file=self.stream,
                smoothing=0.1, mininterval=0.5 if interactive else 30, dynamic_ncols=True, ascii=not interactive,
            )
        else:
            self.bar.update(done - self.bar.n)
        if losses:
            self.bar.set_postfix_str(" ".join(f"{k} {float(v):.3f}" for k, v in losses.items()), refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

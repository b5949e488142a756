"""losses.csv as curves: read robustly, smoothed as TensorBoard does, drawn as the report's Figure 8."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from replication.errors import ConfigError, FigureInputError
from replication.figures.style import ARROWS, colour, new_figure

SMOOTHING = 0.99  # the replication report's Figure 8
NOT_LOSSES = ("step", "epoch", "lr", "wall_time")


@dataclass
class Log:
    """A CSV log (losses.csv, eval.csv) as one float array per column, one entry per step, in step order."""

    path: Path
    columns: dict[str, np.ndarray]
    unreadable: list[int] = field(default_factory=list)  # line numbers left out (e.g. half written)

    @property
    def steps(self) -> np.ndarray:
        return self.columns["step"]

    def __len__(self) -> int:
        return len(self.steps)


def read_log(path: Path) -> Log:
    """Read a log that a training run may be appending to right now.

    A line without its newline (half written) or with the wrong number of
    fields is left out, not fatal. A row whose step is not after the previous
    one means a resumed run replaced the log's tail from there: the later rows
    win, so every step appears once.
    """
    path = Path(path)
    if not path.exists():
        raise FigureInputError(f"{path} does not exist yet (the loop writes it every train.log_every steps).")
    lines = path.read_text(errors="replace").splitlines(keepends=True)
    header = next(csv.reader(lines[:1]), [])
    if "step" not in header:
        raise FigureInputError(f"{path} is empty or has no header row with a 'step' column.")
    step_at = header.index("step")
    rows, unreadable = [], []
    for number, (line, fields) in enumerate(zip(lines[1:], csv.reader(lines[1:])), start=2):
        values = parse_row(fields, len(header))
        if values is None or not line.endswith("\n"):
            unreadable.append(number)
            continue
        while rows and rows[-1][step_at] >= values[step_at]:
            rows.pop()
        rows.append(values)
    if not rows:
        raise FigureInputError(f"{path} has no complete rows yet.")
    table = np.array(rows, dtype=np.float64)
    return Log(path, {name: table[:, i] for i, name in enumerate(header)}, unreadable)


def parse_row(fields: list[str], width: int) -> list[float] | None:
    if len(fields) != width:
        return None
    try:
        return [float(value) if value else math.nan for value in fields]
    except ValueError:
        return None


def check_smoothing(smoothing: float) -> None:
    if not 0 <= smoothing < 1:
        raise ConfigError(f"--smoothing must be at least 0 and below 1, not {smoothing}.")


def smooth(values, smoothing: float = SMOOTHING) -> np.ndarray:
    """TensorBoard's scalar smoothing: an exponential moving average, debiased at the start.

    s_t = smoothing * s_(t-1) + (1 - smoothing) * x_t with s_0 = 0, divided by
    1 - smoothing^t so the first points are not pulled toward zero. Points that
    are not finite are skipped, as TensorBoard does. smoothing 0 is the raw curve.
    """
    check_smoothing(smoothing)
    values = np.asarray(values, dtype=np.float64)
    out = np.full_like(values, math.nan)
    finite = np.isfinite(values)
    x = values[finite]
    running = lfilter([1 - smoothing], [1, -smoothing], x)
    out[finite] = running / (1 - smoothing ** np.arange(1, len(x) + 1))
    return out


def panels_to_draw(log: Log, loss_panels: dict) -> tuple[dict, list[str]]:
    """The model's panels (title -> {direction: loss name}) present in the log, and notes on those left out.

    A panel whose losses are all zero (e.g. identity with lambda_identity 0) is
    left out; losses in the log that no panel names get a panel of their own.
    """
    losses = [name for name in log.columns if name not in NOT_LOSSES]
    panels, notes, named = {}, [], set()
    for title, curves in loss_panels.items():
        present = {direction: name for direction, name in curves.items() if name in log.columns}
        named.update(present.values())
        if not present:
            continue
        if not any(np.any(np.nan_to_num(log.columns[name])) for name in present.values()):
            notes.append(f"{title} left out: {', '.join(present.values())} are zero (off in this run)")
            continue
        panels[title] = present
    for name in losses:
        if name not in named:
            panels[name] = {"": name}
    return panels, notes


def epoch_ends(log: Log, epochs_done: int = 0) -> list[tuple[int, float]]:
    """(epoch, its last logged step) for every epoch that a later epoch follows in the log,
    and for the log's last epoch once it is done (`epochs_done`, counted from the sample files)."""
    epochs, steps = log.columns["epoch"], log.steps
    ends = [(int(epochs[i]), float(steps[i])) for i in range(len(steps) - 1) if epochs[i + 1] != epochs[i]]
    if epochs[-1] <= epochs_done:
        ends.append((int(epochs[-1]), float(steps[-1])))
    return ends


def few(items: list, most: int = 16) -> list:
    """At most `most` of `items`, evenly spaced, always the last."""
    if len(items) <= most:
        return items
    stride = math.ceil(len(items) / most)
    return items[len(items) - 1 :: -stride][::-1]


def metric_panels(eval_log: Log) -> dict:
    """eval.csv's columns `<metric>_<direction>` grouped by metric: {"MAE": {"AtoB": "MAE_AtoB", ...}}."""
    panels: dict = {}
    for column in eval_log.columns:
        metric, _, direction = column.rpartition("_")
        if direction in ARROWS:
            panels.setdefault(metric, {})[direction] = column
    return panels


def baselines_of(metric_rows: list) -> dict:
    """{(metric, direction): (baseline's name, value)} of an evaluation's rows (RUN/eval/metrics.json)."""
    found = {}
    for row in metric_rows:
        baseline = row.get("baseline") or {}
        if isinstance(baseline.get("value"), (int, float)):
            found[(row.get("metric"), row.get("direction"))] = (baseline.get("name", "baseline"), baseline["value"])
    return found


def draw_losses(log: Log, loss_panels: dict, title: str, smoothing: float = SMOOTHING, eval_log: Log | None = None,
                epochs_done: int = 0, baselines: dict | None = None):
    """The loss figure: one panel per group of losses, the raw curves faint, their smoothed curves over them.

    `baselines` ({(metric, direction): (name, value)}, from the run's evaluation) are drawn as dashed
    lines in the evaluation panels, so a reader sees at which epoch a run beats, say, the input itself.
    """
    panels, notes = panels_to_draw(log, loss_panels)
    extra = (["learning rate"] if "lr" in log.columns else []) + [f"evaluation: {m}" for m in (metric_panels(eval_log) if eval_log else {})]
    count = len(panels) + len(extra)
    ncols = 2 if count > 1 else 1
    nrows = math.ceil(count / ncols)
    fig = new_figure(6.4 * ncols, 2.9 * nrows + 0.9, layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex=True, squeeze=False).ravel()
    steps = log.steps
    marker = "." if len(steps) < 20 else None
    for ax, (panel, curves) in zip(axes, panels.items()):
        for direction, name in curves.items():
            values = log.columns[name]
            ax.plot(steps, values, color=colour(direction), alpha=0.25, linewidth=0.8, marker=marker)
            label = f"{name} ({ARROWS[direction]})" if direction in ARROWS else name
            ax.plot(steps, smooth(values, smoothing), color=colour(direction), linewidth=1.6, label=label)
        ax.set_title(panel)
        ax.set_ylabel("loss")
        ax.legend(loc="upper right", fontsize="small")
    rest = iter(axes[len(panels):])
    if "lr" in log.columns:
        ax = next(rest)
        ax.plot(steps, log.columns["lr"], color="black", linewidth=1.4, marker=marker)
        ax.set_title("learning rate")
        ax.set_ylabel("learning rate")
        ax.set_ylim(0, 1.1 * np.nanmax(log.columns["lr"]) or 1)
    for metric, curves in (metric_panels(eval_log) if eval_log else {}).items():
        ax = next(rest)
        for direction, column in curves.items():
            ax.plot(eval_log.steps, eval_log.columns[column], color=colour(direction), marker="o", label=f"{metric} ({ARROWS[direction]})")
            if (metric, direction) in (baselines or {}):
                name, value = baselines[(metric, direction)]
                short = name.split(" (")[0]  # "identity (input itself)" -> "identity"
                ax.axhline(value, color=colour(direction), linestyle="--", linewidth=1.0, label=f"{short} baseline ({ARROWS[direction]})")
        ax.set_title(f"evaluation: {metric} on the test set")
        ax.set_ylabel(metric)
        ax.legend(loc="best", fontsize="small")
    for ax in rest:
        ax.set_visible(False)
    ends = few(epoch_ends(log, epochs_done))
    for i, ax in enumerate(axes[:count]):
        for _, step in ends:
            ax.axvline(step, color="0.6", linewidth=0.6, linestyle=":", zorder=0)
        ax.grid(True, axis="y", alpha=0.3)
        if i >= count - ncols:
            ax.set_xlabel("training step")
            ax.tick_params(labelbottom=True)
        if i < ncols and ends:
            ax.set_title(ax.get_title(), pad=34)
            top = ax.secondary_xaxis("top")
            top.set_xticks([step for _, step in ends], [str(epoch) for epoch, _ in ends], fontsize="small")
            top.set_xlabel("end of epoch", fontsize="small")
    subtitle = f"faint: every logged value; solid: exponential moving average (smoothing {smoothing:g}, debiased)"
    fig.suptitle(f"{title}\n{subtitle}" + ("\n" + "; ".join(notes) if notes else ""), fontsize="medium")
    return fig


def latest_smoothed(log: Log, smoothing: float = SMOOTHING) -> dict[str, float]:
    """The last smoothed value of every loss (for the runs' index page)."""
    return {name: float(smooth(values, smoothing)[-1]) for name, values in log.columns.items() if name not in NOT_LOSSES}

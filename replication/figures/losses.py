"""losses.csv as curves: read robustly, smoothed as TensorBoard does, drawn as the report's Figure 8."""

from __future__ import annotations

import csv
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator
from scipy.signal import filtfilt, lfilter

from replication.errors import ConfigError, FigureInputError
from replication.figures.style import ARROWS, colour, new_figure, readable_text

SMOOTHING = 0.99  # the replication report's Figure 8, whose run logged about 50,000 rows
FLOOR = 0.6  # TensorBoard's default weight: runs under 250 rows are smoothed at least this much
RUN_SHARE = 100  # the default smoothing's time constant is 1/100 of the run: 0.99 from 10,000 rows on
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


def check_smoothing(smoothing: float | None) -> None:
    if smoothing is not None and not 0 <= smoothing < 1:
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


def weight_for(rows: int) -> float:
    """The default weight: a time constant of 1/RUN_SHARE of the run's rows, at least TensorBoard's 0.6
    (so a short run is smoothed too), at most the report's 0.99."""
    return min(SMOOTHING, max(FLOOR, 1 - RUN_SHARE / max(rows, 1)))


def smooth_both_ways(values, weight: float) -> np.ndarray:
    """The moving average of weight `weight` run forward and then backward (zero phase): no lag.

    The ends are continued by reflecting the curve through its end point, so a
    falling curve keeps falling there. Points that are not finite are skipped.
    """
    check_smoothing(weight)
    values = np.asarray(values, dtype=np.float64)
    out = values.copy()
    finite = np.isfinite(values)
    x = values[finite]
    if len(x) < 3 or weight == 0:
        return out
    pad = min(len(x) - 1, math.ceil(3 / (1 - weight)))
    out[finite] = filtfilt([1 - weight], [1, -weight], x, padtype="odd", padlen=pad)
    return out


def smoothed(values, smoothing: float | None = None) -> np.ndarray:
    """The solid curve: by default both ways with the weight the run's length gives; an explicit
    --smoothing is TensorBoard's (one way, lagging as TensorBoard's curve does)."""
    if smoothing is None:
        return smooth_both_ways(values, weight_for(int(np.isfinite(values).sum())))
    return smooth(values, smoothing)


def smoothing_rule(smoothing: float | None, rows: int) -> str:
    """The solid curve's rule in words, for the figure's subtitle."""
    if smoothing is not None:
        return f"solid: TensorBoard's moving average, weight {smoothing:g} (--smoothing), debiased; it lags the trend"
    rule = f"solid: moving average forward and backward (no lag), weight 1 − {RUN_SHARE}/rows, at least {FLOOR}, at most {SMOOTHING}"
    return f"{rule}: here {weight_for(rows):.3g} ({rows} rows)"


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


def epoch_ends(log: Log, epochs_done: int = 0, steps_per_epoch: int | None = None) -> list[tuple[int, float]]:
    """(epoch, the step it ends at) for every epoch that ended by the log's last step.

    Given the run's steps per epoch, the ends are where they are: epoch k ends at step
    k * steps_per_epoch. Without them, each epoch that a later one follows in the log ends at its
    last logged step, and the log's last epoch too once it is done (`epochs_done`, from the samples)."""
    steps = log.steps
    if steps_per_epoch:
        return [(k, float(k * steps_per_epoch)) for k in range(1, int(steps[-1]) // steps_per_epoch + 1)]
    epochs = log.columns["epoch"]
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


PANEL_WIDTH = 4.5  # inches: two panels to a row, 1350 px at 150 dpi
PANEL_HEIGHT = 2.7
HEADROOM = 0.4  # the share of the data's range left free above it for the legend


def draw_losses(log: Log, loss_panels: dict, title: str, smoothing: float | None = None, epochs_done: int = 0,
                steps_per_epoch: int | None = None):
    """The loss figure: one panel per group of losses and the learning rate, the raw curves faint,
    their smoothed curves over them (report Figure 8)."""
    panels, notes = panels_to_draw(log, loss_panels)
    count = len(panels) + ("lr" in log.columns)
    ncols = 2 if count > 1 else 1
    nrows = math.ceil(count / ncols)
    width = PANEL_WIDTH * ncols
    subtitle = [f"faint: every logged value; {smoothing_rule(smoothing, len(log))}", *notes]
    with readable_text(width) as size:
        heading = wrapped([title, *subtitle], width, size)
        fig = new_figure(width, PANEL_HEIGHT * nrows + 0.25 * heading.count("\n") + 0.6, layout="constrained")
        axes = fig.subplots(nrows, ncols, sharex=True, squeeze=False).ravel()
        steps = log.steps
        marker = "." if len(steps) < 20 else None
        for ax, (panel, curves) in zip(axes, panels.items()):
            for direction, name in curves.items():
                values = log.columns[name]
                ax.plot(steps, values, color=colour(direction), alpha=0.25, linewidth=0.8, marker=marker)
                label = f"{name} ({ARROWS[direction]})" if direction in ARROWS else name
                ax.plot(steps, smoothed(values, smoothing), color=colour(direction), linewidth=1.8, label=label)
            ax.set_title(panel)
            ax.set_ylabel("loss")
            legend_above_the_data(ax, [log.columns[name] for name in curves.values()])
        if "lr" in log.columns:
            ax = axes[len(panels)]
            ax.plot(steps, log.columns["lr"], color="black", linewidth=1.4, marker=marker)
            ax.set_title("learning rate")
            ax.set_ylim(0, 1.1 * np.nanmax(log.columns["lr"]) or 1)
        finish_panels(fig, axes, count, ncols, few(epoch_ends(log, epochs_done, steps_per_epoch), 8))
        fig.suptitle(heading)
    return fig


def draw_evaluation(eval_log: Log, title: str, epochs_done: int = 0, baselines: dict | None = None, steps_per_epoch: int | None = None):
    """eval.csv as one panel per metric, a point per evaluation and direction; each metric's baselines
    (`baselines`, {(metric, direction): (name, value)} from RUN/eval/metrics.json) are dashed lines,
    each named at its right end, so a reader sees at which epoch the run beats, say, the input itself."""
    metric_curves = metric_panels(eval_log)
    if not metric_curves:
        raise FigureInputError(f"{eval_log.path} has no <metric>_<direction> columns.")
    width = 2 * PANEL_WIDTH
    with readable_text(width) as size:
        heading = wrapped([title], width, size)
        fig = new_figure(width, PANEL_HEIGHT * len(metric_curves) + 0.25 * heading.count("\n") + 0.6, layout="constrained")
        axes = fig.subplots(len(metric_curves), 1, sharex=True, squeeze=False).ravel()
        for ax, (metric, curves) in zip(axes, metric_curves.items()):
            unit = " (dB)" if metric == "PSNR" else ""
            shown = []
            for direction, column in curves.items():
                values = eval_log.columns[column]
                ax.plot(eval_log.steps, values, color=colour(direction), marker="o", label=f"{metric} ({ARROWS[direction]})")
                shown.append(values)
            ends = []
            for direction in curves:
                if (metric, direction) in (baselines or {}):
                    name, value = baselines[(metric, direction)]
                    line = "--" if direction == "AtoB" else (0, (1.5, 1.5))  # two baselines on one value both show
                    ax.axhline(value, color=colour(direction), linestyle=line, linewidth=1.4)
                    ends.append((value, f"{name.split(' (')[0]} {ARROWS[direction]} {value:.4g}", colour(direction)))
                    shown.append([value])
            ax.set_title(f"evaluation on the test set: {metric}{unit}")
            ax.set_ylabel(f"{metric}{unit}")
            legend_above_the_data(ax, shown)
            label_right_ends(ax, ends, size)
        finish_panels(fig, axes, len(axes), 1, few(epoch_ends(eval_log, epochs_done, steps_per_epoch), 8))
        fig.suptitle(heading)
    return fig


def wrapped(lines: list[str], width_in: float, size: float) -> str:
    """The lines, each wrapped to the figure's width at this font size."""
    chars = int(width_in * 72 / (size * 0.55))
    return "\n".join(textwrap.fill(line, chars) for line in lines)


def legend_above_the_data(ax, curves) -> None:
    """The legend in a band left free above every value drawn, so it covers no curve."""
    values = np.concatenate([np.asarray(c, dtype=np.float64).ravel() for c in curves])
    values = values[np.isfinite(values)]
    if len(values):
        low, high = float(values.min()), float(values.max())
        span = (high - low) or abs(high) or 1.0
        ax.set_ylim(low - 0.05 * span, high + HEADROOM * span)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", ncols=2, frameon=False, borderaxespad=0.2, handlelength=1.5, columnspacing=1.0)


def label_right_ends(ax, ends: list[tuple[float, str, str]], size: float) -> None:
    """Each (value, label, colour) written just right of the axes at its value, moved apart to not overlap."""
    if not ends:
        return
    low, high = ax.get_ylim()
    height_pt = ax.get_position().height * ax.figure.get_figheight() * 72
    gap = 1.6 * size / height_pt * (high - low)  # a line of text and some, in data units (the layout may shrink the axes)
    placed: list[float] = []
    for value, label, colour_ in sorted(ends):
        y = max(value, placed[-1] + gap) if placed else value
        placed.append(y)
        ax.annotate(label, xy=(1, value), xycoords=("axes fraction", "data"), xytext=(1.01, y), textcoords=("axes fraction", "data"),
                    color=colour_, va="center", ha="left", annotation_clip=False)


def finish_panels(fig, axes, count: int, ncols: int, ends: list[tuple[int, float]]) -> None:
    """Epoch ends as dotted lines and as a top axis on the first row; whole steps on the bottom row; unused axes hidden."""
    for ax in axes[count:]:
        ax.set_visible(False)
    for i, ax in enumerate(axes[:count]):
        ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", integer=True))  # as many as fit the width
        for _, step in ends:
            ax.axvline(step, color="0.6", linewidth=0.6, linestyle=":", zorder=0)
        ax.grid(True, axis="y", alpha=0.3)
        if i >= count - ncols:
            ax.set_xlabel("training step")
            ax.tick_params(labelbottom=True)
        if i < ncols and ends:
            top = ax.secondary_xaxis("top")
            top.set_xticks([step for _, step in ends], [str(epoch) for epoch, _ in ends])
            top.set_xlabel("end of epoch")


def latest_smoothed(log: Log, smoothing: float | None = None) -> dict[str, float]:
    """The last smoothed value of every loss (for the runs' index page)."""
    return {name: float(smoothed(values, smoothing)[-1]) for name, values in log.columns.items() if name not in NOT_LOSSES}

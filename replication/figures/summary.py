"""What every page says of a run, found in one place and saved as figures/NAME/summary.json.

The run's page, figures/index.html and figures/tables.html read only the summary, so they never
disagree: where the run stands (`schedule.position`, the words `evaluate` uses too), whether it is
training, stopped (and how) or finished, its latest numbers and where they come from, its latest
checkpoint, its losses in brief, its first test translations, and how it departs from its experiment.
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from replication import config as config_lib
from replication.errors import FigureInputError, KitError
from replication.figures import losses
from replication.files import lock_holder
from replication.schedule import position

TRAINING, STOPPED, FINISHED = "training", "stopped", "finished"
SPARK_POINTS = 120  # points of a sparkline: enough for its width on the runs page
STRIP_IMAGES = 3  # test images per direction in the runs page's strip


@dataclass
class Summary:
    """A run as the pages show it (saved as figures/NAME/summary.json)."""

    name: str
    experiment: str
    run: str = ""  # the run folder, as given
    drawn_at: str = ""  # when, UTC
    epochs_done: int = 0  # epochs that ended
    epochs_total: int = 0
    step: int = 0  # the latest step the run logged (or exported)
    steps_per_epoch: int | None = None  # None: not recorded and the training data is gone
    state: str = STOPPED  # TRAINING, STOPPED or FINISHED
    how: str = ""  # how it stopped: Ctrl-C, SIGTERM, --until-step N, a fault: ...
    variant: str = ""  # the paper's name for what it trains (tables.variant)
    image_size: int = 0  # data.crop_size
    data: str = ""  # what it is tested on, in words
    finished: bool = False
    imported: str = ""  # "official weights, imported from ...": a run the kit did not train (replication import)
    latest_losses: dict = field(default_factory=dict)
    metrics: list = field(default_factory=list)  # the rows of RUN/eval/metrics.json, [] before `evaluate`
    numbers: dict = field(default_factory=dict)  # the latest numbers: {"source", "step", "words", "rows"}; {} if none
    checkpoint: dict = field(default_factory=dict)  # the latest checkpoint: {"name", "step", "saved_at"}
    sparklines: dict = field(default_factory=dict)  # {loss group: [{"label", "direction", "points", "last"}]}
    strip: list = field(default_factory=list)  # [{"direction", "name", "input", "output"}], paths in figures/NAME/
    departures: dict | None = None  # {key: value} where the run's config differs from its experiment's; None: unknown
    not_drawn: dict = field(default_factory=dict)  # figure -> why


def where(summary: dict, step: int | None = None) -> str:
    """`step 20, 4 of the 8 steps of epoch 3 of 16` (the summary's step unless another is given)."""
    step = summary["step"] if step is None else step
    if summary.get("steps_per_epoch"):
        return f"step {step}, {position(step, summary['steps_per_epoch'], summary['epochs_total'])}"
    return f"step {step}, {summary['epochs_done']} of {summary['epochs_total']} epochs done"


def state_words(summary: dict) -> str:
    """The run's state and place, in the words of every figure and page: `finished: step 9, the end of
    epoch 3 of 3`, `training: step 20, ...`, `stopped at step 20 (Ctrl-C): ...`; an imported run says whose
    weights it holds."""
    if summary.get("imported"):
        return summary["imported"]
    state = summary.get("state") or (FINISHED if summary.get("finished") else STOPPED)  # or a summary drawn before states
    how = f" ({summary['how']})" if state == STOPPED and summary.get("how") else ""
    return f"{state}{how}: {where(summary)}"


def read_state(path: Path) -> dict:
    """RUN/state.json as training wrote it ({} for a run trained before it was written, or unreadable)."""
    try:
        found = json.loads(Path(path).read_text())
        return found if isinstance(found, dict) else {}
    except (OSError, ValueError):
        return {}


def state_of(run_dir: Path, recorded: dict, step: int, exported_step: int | None) -> tuple[str, str]:
    """(state, how): training while a live process holds the run's lock; finished when its export is
    its latest step; otherwise stopped, and how as training recorded it."""
    if lock_holder(run_dir):
        return TRAINING, ""
    if exported_step is not None and exported_step >= step:
        return FINISHED, ""
    if recorded.get("state") == STOPPED:
        return STOPPED, recorded.get("how", "")
    if recorded.get("state") == TRAINING:
        return STOPPED, "it ended without a word: killed?"
    return STOPPED, ""


def steps_per_epoch_of(recorded: dict, config: dict) -> int | None:
    """The run's steps per epoch: as training recorded them, else from its training data (None if gone)."""
    if recorded.get("steps_per_epoch"):
        return int(recorded["steps_per_epoch"])
    from replication import loading  # TensorFlow: `figures` imports this module before start_tensorflow

    try:
        return loading.steps_per_epoch(config)
    except KitError:
        return None


def read_metrics(path: Path) -> tuple[list, dict]:
    """(rows, the report) of RUN/eval/metrics.json (schema in the evaluation's docs), ([], {}) before an evaluation."""
    path = Path(path)
    if not path.exists():
        return [], {}
    try:
        report = json.loads(path.read_text())
        return [dict(row, step=report.get("step"), epoch=report.get("epoch")) for row in report["rows"]], report
    except (ValueError, KeyError, TypeError):
        return [{"metric": f"{path} could not be read", "direction": "", "value": None}], {}


def eval_csv_rows(eval_log: losses.Log) -> list[dict]:
    """eval.csv's last row as metric rows: {"metric", "direction", "value"} per `<metric>_<direction>` column."""
    rows = []
    for metric, columns in losses.metric_panels(eval_log).items():
        for direction, column in columns.items():
            value = float(eval_log.columns[column][-1])
            rows.append({"metric": metric, "direction": direction, "value": value if math.isfinite(value) else None})
    return rows


def latest_numbers(summary: dict, metric_rows: list, report: dict, eval_csv: Path) -> dict:
    """The run's latest numbers and where they come from: `evaluate`'s eval/metrics.json, else the last
    row of eval.csv (train.eval_every's quick measure while training); {} when there are none."""
    if metric_rows:
        step = report.get("step")
        at = where(summary, step) if step is not None else "step unknown"
        return {"source": "eval/metrics.json", "step": step, "rows": metric_rows,
                "words": f"scored by replication evaluate (eval/metrics.json) with the weights of {at}"}
    try:
        eval_log = losses.read_log(eval_csv)
    except FigureInputError:  # none yet, or nothing whole in it yet
        return {}
    rows = eval_csv_rows(eval_log)
    if not rows:
        return {}
    step = int(eval_log.steps[-1])
    return {"source": "eval.csv", "step": step, "rows": rows,
            "words": f"eval.csv's last row ({where(summary, step)}): train.eval_every's quick measure on the first test images"}


def numbers_of(summary: dict) -> dict:
    """The summary's latest numbers; for a summary drawn before they were kept, its evaluate rows."""
    if "numbers" in summary or not summary.get("metrics"):
        return summary.get("numbers") or {}
    return {"source": "eval/metrics.json", "step": summary["metrics"][0].get("step"), "rows": summary["metrics"]}


def latest_checkpoint(checkpoints: Path) -> dict:
    """{"name", "step", "saved_at"} of the run's newest checkpoint ({} before the first)."""
    from replication.checkpoints import candidates, number_of  # TensorFlow: `figures` imports this module before start_tensorflow

    found = candidates(checkpoints)
    if not found:
        return {}
    newest = Path(found[0])
    index = newest.with_name(newest.name + ".index")
    if not index.exists():
        return {}
    saved = datetime.datetime.fromtimestamp(index.stat().st_mtime, datetime.timezone.utc)
    return {"name": newest.name, "step": number_of(newest), "saved_at": saved.isoformat(timespec="seconds")}


def sparklines(log: losses.Log, loss_panels: dict, smoothing: float | None) -> dict:
    """Each loss group's smoothed curves, thinned to SPARK_POINTS points: {group: [{"label", "direction",
    "points": [[step, value], ...], "last"}]}, as the loss figure's panels group them."""
    panels, _ = losses.panels_to_draw(log, loss_panels)
    keep = np.unique(np.linspace(0, len(log) - 1, min(SPARK_POINTS, len(log))).round().astype(int))
    found = {}
    for title, curves in panels.items():
        lines = []
        for direction, name in curves.items():
            values = losses.smoothed(log.columns[name], smoothing)
            points = [[int(log.steps[i]), round(float(values[i]), 5)] for i in keep if math.isfinite(values[i])]
            if points:
                lines.append({"label": name, "direction": direction, "points": points, "last": points[-1][1]})
        if lines:
            found[title] = lines
    return found


def strip(results: dict, sample_rows: dict, count: int = STRIP_IMAGES) -> list[dict]:
    """The first `count` test images of each direction with their translation (thumbnail paths in figures/NAME/)."""
    found = []
    for direction, entries in (results.get("directions") or {}).items():
        source, translation, *_ = sample_rows.get(direction, (None, None))
        for entry in entries[:count]:
            thumbs = entry.get("thumbnails", {})
            if source in thumbs and translation in thumbs:
                found.append({"direction": direction, "name": entry["name"], "input": thumbs[source], "output": thumbs[translation]})
    return found


def departures(config: dict) -> dict | None:
    """{key: value} where the run's config differs from its experiment as the experiment file says now;
    None when there is no such experiment file."""
    from replication.runs import differing_keys, value_at  # TensorFlow: `figures` imports this module before start_tensorflow

    try:
        experiment = config_lib.resolve(config["name"])
    except (KitError, OSError, KeyError):
        return None
    return {key: value_at(config, key) for key in sorted(differing_keys(experiment, config))}

"""figures/index.html: the page that compares runs, one row per run drawn into the folder.

Each row: the run, its experiment and the settings where the run departs from it; its state; its
latest checkpoint and how old it is; its first test images and their translations; a sparkline per
loss group; one column per metric and direction; where its numbers come from. Every cell
is read from the run's summary.json (summary.py). A click on a column head sorts by it (a few lines
of inline script, nothing from the network); the page reloads itself while a run is training.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from matplotlib.colors import to_hex

from replication.figures.page import ALL_RUNS, REFRESH, TABLES_PAGE, document, escaped_name, link, number
from replication.figures.style import ARROWS, colour
from replication.figures.summary import TRAINING, numbers_of, state_words
from replication.files import atomic_write_text

SPARK_WIDTH, SPARK_HEIGHT = 100, 24  # px

SORTING = """<script>
for (const th of document.querySelectorAll("table.runs th")) th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], column = th.cellIndex, up = th.dataset.order !== "up";
  for (const other of th.parentNode.cells) delete other.dataset.order;
  th.dataset.order = up ? "up" : "down";
  const key = row => row.cells[column].dataset.sort ?? row.cells[column].textContent.trim();
  const rows = [...body.rows].sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === "" || y === "") return (x === "") - (y === "");  // empty cells last, either way
    const order = isNaN(x) || isNaN(y) ? x.localeCompare(y) : x - y;
    return up ? order : -order;
  });
  body.append(...rows);
});
for (const when of document.querySelectorAll("[data-time]")) {
  const minutes = Math.round((Date.now() - Date.parse(when.dataset.time)) / 60000);
  when.textContent = minutes < 90 ? `${minutes} min ago` : minutes < 2880 ? `${Math.round(minutes / 60)} h ago` : `${Math.round(minutes / 1440)} days ago`;
}
</script>"""

STYLE = """
body { max-width: none; margin: 1em auto; padding: 0 0.6em; }
table.runs { font-size: 0.9em; }
table.runs th, table.runs td { padding: 0.3em 0.4em; }
table.runs th { cursor: pointer; background: #f3f3f3; }
table.runs th[data-order="up"]::after { content: " ▲"; }
table.runs th[data-order="down"]::after { content: " ▼"; }
table.runs td { vertical-align: top; }
td.state { min-width: 8em; }
td.run { min-width: 11em; max-width: 18em; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
.strip { white-space: nowrap; }
.strip img { width: 32px; height: 32px; max-width: none; image-rendering: pixelated; margin-right: 1px; }
.strip img.output { margin-right: 4px; }
.sparks { display: grid; grid-template-columns: auto auto auto; gap: 1px 5px; align-items: center; font-size: 0.9em; white-space: nowrap; }
.small { font-size: 0.85em; }
"""


def metric_columns(summaries: list[dict]) -> list[tuple[str, str]]:
    """(metric, direction) of every number any run has, in a stable order (by name, A→B before B→A)."""
    return sorted({(row["metric"], row.get("direction") or "") for s in summaries for row in numbers_of(s).get("rows", [])
                   if row.get("value") is not None})


def sparkline(lines: list[dict]) -> str:
    """One loss group's smoothed curves as an inline SVG, one colour per direction, in one frame."""
    xs = [x for line in lines for x, _ in line["points"]]
    ys = [y for line in lines for _, y in line["points"]]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    pad = 2

    def at(x, y):
        sx = pad + (x - x0) / ((x1 - x0) or 1) * (SPARK_WIDTH - 2 * pad)
        sy = SPARK_HEIGHT - pad - (y - y0) / ((y1 - y0) or 1) * (SPARK_HEIGHT - 2 * pad)
        return f"{sx:.1f},{sy:.1f}"

    curves = "".join(f'<polyline fill="none" stroke="{to_hex(colour(line["direction"]))}" stroke-width="1.5" '
                     f'points="{" ".join(at(x, y) for x, y in line["points"])}"/>' for line in lines)
    return (f'<svg width="{SPARK_WIDTH}" height="{SPARK_HEIGHT}" role="img"><title>from {y0:.3g} to {y1:.3g}, steps {x0} to {x1}</title>'
            f'<rect width="{SPARK_WIDTH}" height="{SPARK_HEIGHT}" fill="#fafafa"/>{curves}</svg>')


def loss_cell(summary: dict) -> str:
    """A sparkline per loss group, its name left of it and each curve's latest smoothed value right of it (a grid of three columns)."""
    parts = []
    for group, lines in summary.get("sparklines", {}).items():
        lasts = " ".join(f'<span style="color:{to_hex(colour(line["direction"]))}" title="{escape(line["label"])}">{line["last"]:.3g}</span>'
                         for line in lines)
        parts.append(f"<span>{escape(group)}</span>{sparkline(lines)}<span>{lasts}</span>")
    return f'<div class="sparks">{"".join(parts)}</div>' if parts else ""


def strip_cell(summary: dict) -> str:
    """The run's first test images, each followed by its translation, a row per direction."""
    rows: dict = {}
    for item in summary.get("strip", []):
        for role in ("input", "output"):
            path = f"{summary['name']}/{item[role]}"
            what = f"{escaped_name(item['name'])} {ARROWS.get(item['direction'], item['direction'])}: {role}"
            rows.setdefault(item["direction"], []).append(f'<img class="{role}" src="{link(path)}" alt="{what}" title="{what}">')
    return "".join(f'<div class="strip">{"".join(images)}</div>' for images in rows.values())


def checkpoint_cell(summary: dict) -> tuple[str, str]:
    """(cell, sort key): the latest checkpoint, its step and when it was saved (how long ago, once the page is open)."""
    found = summary.get("checkpoint") or {}
    if not found:
        return "", ""
    when = escape(found["saved_at"])
    return (f'{escape(found["name"])} (step {found["step"]})<br><span class="small" data-time="{when}">saved {when}</span>', when)


def run_cell(summary: dict) -> str:
    """The run, linking to its page; its experiment and the settings where the run departs from it."""
    changed = summary.get("departures")
    if changed is None:
        note = "no such experiment file here"
    else:
        note = "; ".join(f"{key}: {value}" for key, value in changed.items()) or "as the experiment file says"
    name = summary["name"]
    return (f'<td class="run" data-sort="{escaped_name(name)}"><a href="{link(name)}/index.html">{escaped_name(name)}</a><br>'
            f'<span class="small">experiment {escape(summary["experiment"])}</span><br><span class="small note">{escape(note)}</span></td>')


def row_of(summary: dict, columns: list[tuple[str, str]]) -> str:
    numbers = numbers_of(summary)
    values = {(r["metric"], r.get("direction") or ""): r["value"] for r in numbers.get("rows", []) if r.get("value") is not None}
    checkpoint, saved = checkpoint_cell(summary)
    cells = [
        run_cell(summary),
        f'<td class="state" data-sort="{escape(summary.get("state", ""))}">{escape(state_words(summary)).replace(": ", ": <br>", 1)}</td>',
        f'<td data-sort="{saved}">{checkpoint}</td>',
        f"<td>{strip_cell(summary)}</td>",
        f"<td>{loss_cell(summary)}</td>",
        *(f'<td class="number" data-sort="{values[c]!r}">{number(values[c])}</td>' if c in values else '<td data-sort=""></td>' for c in columns),
        f'<td class="small">{escape(numbers.get("source", ""))}{" step " + str(numbers["step"]) if numbers.get("step") is not None else ""}</td>',
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def heads(columns: list[tuple[str, str]]) -> list[str]:
    """The column heads, in the order of row_of's cells."""
    return ["run, experiment, departures", "state", "latest checkpoint", "test images → translations", "losses (smoothed)",
            *(f"{metric} {ARROWS.get(direction, direction)}".strip() for metric, direction in columns), "numbers from"]


def write_index(figures_dir: Path) -> Path:
    """FIGURES_DIR/index.html from every FIGURES_DIR/*/summary.json."""
    figures_dir = Path(figures_dir)
    summaries = [json.loads(path.read_text()) for path in sorted(figures_dir.glob("*/summary.json"))]
    columns = metric_columns(summaries)
    head = "<tr>" + "".join(f"<th>{escape(text)}</th>" for text in heads(columns)) + "</tr>"
    table = f'<table class="runs"><thead>{head}</thead><tbody>{"".join(row_of(s, columns) for s in summaries)}</tbody></table>'
    training = any(s.get("state") == TRAINING for s in summaries)
    tables_link = f' <a href="{TABLES_PAGE}">The paper\'s tables</a>, each number beside those of the runs here that measured it.' if (figures_dir / TABLES_PAGE).exists() else ""
    reloads = f" It reloads itself every {REFRESH} s while a run is training." if training else ""
    body = f"""<h1>Runs</h1>
<p>Every run drawn into this folder by <code>replication figures</code>; click a column head to sort by it.
Each run's numbers are its latest: <code>replication evaluate</code>'s, else the last row of its eval.csv
(the column "numbers from" says which).{reloads}{tables_link}</p>
{table}
{SORTING}"""
    path = figures_dir / ALL_RUNS
    atomic_write_text(path, document("Runs: CycleGAN replication kit", body, refresh=training, style=STYLE))
    return path

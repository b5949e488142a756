"""The static results pages: figures/NAME/index.html for a run, figures/index.html for every run.

Offline and self-contained: no scripts, no fonts or styles from the network,
every link relative, so the figures folder can be moved or zipped.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from replication.figures.style import ARROWS
from replication.io import atomic_write_text

STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1400px; padding: 0 1em; color: #222; }
img { max-width: 100%; }
img.pixels { image-rendering: pixelated; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: middle; }
td.image { padding: 2px; border: none; }
.note { color: #666; }
.direction { display: inline-block; vertical-align: top; margin-right: 2em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
"""

HOW_TO_READ = (
    "Each panel holds one group of losses, one colour per direction (blue A→B, orange B→A). The faint "
    "line is every logged value; the solid line is its exponential moving average, debiased at the start "
    "as TensorBoard does. Dotted lines and the top axis mark the ends of epochs. Click for the PDF."
)


def document(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{escape(title)}</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def read_metrics(path: Path) -> list:
    """The rows of RUN/eval/metrics.json (schema in the evaluation's docs), or [] before an evaluation."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        report = json.loads(path.read_text())
        return [dict(row, step=report.get("step"), epoch=report.get("epoch")) for row in report["rows"]]
    except (ValueError, KeyError, TypeError):
        return [{"metric": f"{path} could not be read", "direction": "", "value": None}]


def number(value) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else escape(str(value))


def state(summary: dict) -> str:
    """`finished: 8 of 8 epochs (step 1600)` or `training: 3 of 8 epochs done (step 640)`."""
    done, total, step = summary["epochs_done"], summary["epochs_total"], summary["step"]
    if summary["finished"]:
        return f"finished: {done} of {total} epochs (step {step})"
    return f"training or stopped: {done} of {total} epochs done (step {step})"


def metrics_table(rows: list) -> str:
    if not rows:
        return '<p class="note">No evaluation yet.</p>'
    head = "<tr><th>metric</th><th>direction</th><th>value</th><th>± std</th><th>baseline</th><th>paper</th><th>definition</th></tr>"
    lines = []
    for row in rows:
        baseline = row.get("baseline") or {}
        paper = row.get("paper") or {}
        lines.append(
            f"<tr><td>{escape(str(row.get('metric', '')))}</td><td>{escape(ARROWS.get(row.get('direction'), row.get('direction') or ''))}</td>"
            f"<td>{number(row.get('value'))}</td><td>{number(row.get('std'))}</td>"
            f"<td>{escape(str(baseline.get('name', '')))} {number(baseline.get('value'))}</td>"
            f"<td>{', '.join(f'{escape(k)} {number(v)}' for k, v in paper.items())}</td>"
            f"<td>{escape(str(row.get('definition', '')))}</td></tr>"
        )
    when = f"<p>Evaluated at epoch {rows[0].get('epoch')}, step {rows[0].get('step')}.</p>" if rows[0].get("step") is not None else ""
    return f"{when}<table>{head}{''.join(lines)}</table>"


def figure(folder: Path, stem: str, alt: str, not_drawn: str | None) -> str:
    """The figure's PNG linking to its PDF, or why it is missing."""
    if (folder / f"{stem}.png").exists():
        return f'<p><a href="{stem}.pdf"><img src="{stem}.png" alt="{escape(alt)}"></a></p>'
    return f'<p class="note">Not drawn: {escape(not_drawn or "nothing to draw it from yet")}</p>'


def test_tables(results: dict, captions: dict) -> str:
    """Every test image with its translation and reconstruction: thumbnails linking to full size."""
    if not results:
        return '<p class="note">No test images translated yet.</p>'
    parts = []
    for direction, entries in results["directions"].items():
        parts.append(f'<div class="direction"><h3>{escape(ARROWS.get(direction, direction))} ({len(entries)} test images)</h3><table>')
        names = entries[0]["images"] if entries else {}
        parts.append("<tr><th>test image</th>" + "".join(f"<th>{escape(captions.get(n, n))}</th>" for n in names) + "</tr>")
        for entry in entries:
            # small images are shown enlarged, pixel for pixel; larger ones by their thumbnail
            size = 'class="pixels" width="128"' if max(entry["size"]) < 128 else ""
            cells = "".join(
                f'<td class="image"><a href="{escape(entry["images"][name])}"><img {size} src="{escape(entry["thumbnails"][name])}" '
                f'alt="{escape(name)} of {escape(entry["name"])}" title="{escape(name)}"></a></td>'
                for name in entry["images"]
            )
            parts.append(f"<tr><td>{escape(entry['name'])}</td>{cells}</tr>")
        parts.append("</table></div>")
    return "".join(parts)


def write_run_page(folder: Path, summary: dict, config_text: str, results: dict, captions: dict) -> Path:
    """figures/NAME/index.html: state, metrics, the three figures, every test image, the resolved config."""
    folder = Path(folder)
    why = summary["not_drawn"]
    body = f"""<p><a href="../index.html">all runs</a></p>
<h1>{escape(summary['name'])}</h1>
<p>Experiment <b>{escape(summary['experiment'])}</b>: {escape(state(summary))}.</p>
<h2>Metrics</h2>
{metrics_table(summary['metrics'])}
<h2>Losses</h2>
<p>{escape(HOW_TO_READ)}</p>
{figure(folder, 'losses', 'loss curves', why.get('loss figure'))}
<h2>Progression</h2>
<p>The same test images at the end of chosen epochs (the first row: the inputs).</p>
{figure(folder, 'progression', 'progression across epochs', why.get('progression'))}
<h2>Test results</h2>
{figure(folder, 'test_results', 'test results', why.get('test results'))}
<p>Every test image, translated by the run's generators at its own size. Click an image for full size.</p>
{test_tables(results, captions)}
<h2>Configuration</h2>
<pre>{escape(config_text)}</pre>"""
    path = folder / "index.html"
    atomic_write_text(path, document(f"{summary['name']}: CycleGAN replication kit", body))
    return path


def write_index(figures_dir: Path) -> Path:
    """figures/index.html: every run that has figures, its state, latest smoothed losses and metrics."""
    figures_dir = Path(figures_dir)
    rows = []
    for path in sorted(figures_dir.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        name = summary["name"]
        losses = " ".join(f"{k}&nbsp;{v:.3f}" for k, v in summary["latest_losses"].items())
        metrics = "<br>".join(
            f"{escape(str(m.get('metric')))} {escape(ARROWS.get(m.get('direction'), ''))} {number(m.get('value'))}" for m in summary["metrics"]
        )
        metrics = metrics or '<span class="note">no evaluation yet</span>'
        thumbnail = f'<a href="{escape(name)}/index.html"><img src="{escape(name)}/losses.png" width="240" alt="losses"></a>' if (path.parent / "losses.png").exists() else ""
        rows.append(
            f'<tr><td><a href="{escape(name)}/index.html">{escape(name)}</a></td><td>{escape(state(summary))}</td>'
            f"<td>{losses}</td><td>{metrics}</td><td>{thumbnail}</td></tr>"
        )
    table = "<table><tr><th>run</th><th>state</th><th>latest smoothed losses</th><th>metrics</th><th>losses</th></tr>" + "".join(rows) + "</table>"
    body = f"<h1>Runs</h1>\n<p>Drawn by <code>python -m replication figures</code>.</p>\n{table}"
    path = figures_dir / "index.html"
    atomic_write_text(path, document("Runs: CycleGAN replication kit", body))
    return path

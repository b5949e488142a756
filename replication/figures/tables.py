"""figures/tables.html: the paper's Tables 2-5 with, beside each number, those of the runs that measured it.

Nothing here is typed by hand but the paper's numbers (SPEC.md): every run's number is a row of its
RUN/eval/metrics.json, copied into FIGURES_DIR/NAME/summary.json when its figures were drawn. A cell
no run measured says "not run" and which make target would fill it.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from replication import choices
from replication.figures.page import TABLES_PAGE, document, number
from replication.figures.style import ARROWS
from replication.files import atomic_write_text

FCN = ("per-pixel acc", "per-class acc", "class IoU")
# The cityscapes metrics' directions (segmentation.py): AtoB is photo->labels, BtoA labels->photo.
TASKS = {"BtoA": "labels→photo", "AtoB": "photo→labels"}
# (table, task, variant) -> the paper's (per-pixel acc, per-class acc, class IoU); CycleGAN paper, SPEC.md
PAPER = {
    ("Table 2", "BtoA", "CycleGAN"): (0.52, 0.17, 0.11),
    ("Table 2", "BtoA", "pix2pix"): (0.71, 0.25, 0.18),
    ("Table 3", "AtoB", "CycleGAN"): (0.58, 0.22, 0.16),
    ("Table 3", "AtoB", "pix2pix"): (0.85, 0.40, 0.32),
    ("Table 4", "BtoA", "cycle alone"): (0.22, 0.07, 0.02),
    ("Table 4", "BtoA", "GAN alone"): (0.51, 0.11, 0.08),
    ("Table 4", "BtoA", "GAN + forward cycle"): (0.55, 0.18, 0.12),
    ("Table 4", "BtoA", "GAN + backward cycle"): (0.39, 0.14, 0.06),
    ("Table 4", "BtoA", "CycleGAN"): (0.52, 0.17, 0.11),
    ("Table 5", "AtoB", "cycle alone"): (0.10, 0.05, 0.02),
    ("Table 5", "AtoB", "GAN alone"): (0.53, 0.11, 0.07),
    ("Table 5", "AtoB", "GAN + forward cycle"): (0.49, 0.11, 0.07),
    ("Table 5", "AtoB", "GAN + backward cycle"): (0.01, 0.06, 0.01),
    ("Table 5", "AtoB", "CycleGAN"): (0.58, 0.22, 0.16),
}
TITLES = {
    "Table 2": "Table 2: FCN scores, Cityscapes labels→photo",
    "Table 3": "Table 3: classification scores, Cityscapes photo→labels",
    "Table 4": "Table 4: ablations, labels→photo",
    "Table 5": "Table 5: ablations, photo→labels",
}
TARGETS = {  # variant -> what fills its cells
    "CycleGAN": "make cityscapes",
    "pix2pix": "make pix2pix-cityscapes",
    "cycle alone": "make cityscapes-ablations",
    "GAN alone": "make cityscapes-ablations",
    "GAN + forward cycle": "make cityscapes-ablations",
    "GAN + backward cycle": "make cityscapes-ablations",
}
SCORER_NOTE = "The kit scores labels→photo with its own scorer: run make cityscapes-scorer (GPU work) before evaluating"
TRUTH = ("MAE", "PSNR", "SSIM")
EXTRA_KEYS = ("weights", "ignored", "ignored_share")  # optional fields of a metrics row, shown where present


def variant(config: dict) -> str:
    """The paper's name for what a run trains: CycleGAN, pix2pix, or a loss ablation of Tables 4 and 5."""
    model_type = config["model"]["type"]
    row = choices.MODELS.get(model_type)
    return row.variant(config["loss"]) if row and row.variant else model_type


def who(summary: dict, row: dict) -> str:
    """`cityscapes (epoch 200, 128 px)`: the run, the epoch of the weights it scored, its image size."""
    if summary.get("imported"):
        return f"{escape(summary['name'])} (official weights, imported)"
    epoch = row.get("epoch")
    facts = [f"epoch {epoch} of {summary['epochs_total']}" if epoch is not None else f"{summary['epochs_total']} epochs"]
    if summary.get("image_size"):
        facts.append(f"{summary['image_size']} px")
    facts += [f"{key} {number(row[key])}" for key in EXTRA_KEYS if row.get(key) is not None]
    return f"{escape(summary['name'])} ({escape(', '.join(facts))})"


def measured(summaries: list[dict], metric: str, direction: str, variant_: str | None = None) -> list[str]:
    """`0.61 by RUN (...)` for every run (of `variant_`) whose metrics hold (metric, direction)."""
    found = []
    for summary in summaries:
        if variant_ is not None and summary.get("variant") != variant_:
            continue
        for row in summary["metrics"]:
            if row.get("metric") == metric and row.get("direction") == direction and row.get("value") is not None:
                found.append(f"<b>{number(row['value'])}</b> {who(summary, row)}")
    return found


def cell(paper: float, found: list[str], target: str) -> str:
    runs = "<br>".join(found) if found else f'<span class="note">not run: {escape(target)}</span>'
    return f"<td>paper <b>{paper:.2f}</b><br>{runs}</td>"


def paper_tables(summaries: list[dict]) -> str:
    parts = []
    for table, title in TITLES.items():
        rows = [(task, name, numbers) for (t, task, name), numbers in PAPER.items() if t == table]
        head = "<tr><th>method</th>" + "".join(f"<th>{escape(m)}</th>" for m in FCN) + "</tr>"
        lines = []
        for task, name, numbers in rows:
            cells = "".join(cell(paper, measured(summaries, metric, task, name), TARGETS[name]) for metric, paper in zip(FCN, numbers))
            lines.append(f"<tr><th>{escape(name)}</th>{cells}</tr>")
        note = f'<p class="note">{SCORER_NOTE}.</p>' if rows[0][0] == "BtoA" else ""
        parts.append(f"<h2>{escape(title)}</h2>{note}<table>{head}{''.join(lines)}</table>")
    return "".join(parts)


def truth_table(summaries: list[dict]) -> str:
    """Each run scored against the ground truth (the synthetic set, paired sets), beside the identity baseline."""
    columns = [(m, d) for d in ARROWS for m in TRUTH]
    head = "<tr><th>run</th>" + "".join(f"<th>{m} {ARROWS[d]}</th>" for m, d in columns) + "</tr>"
    lines, baselines = [], {}
    for summary in summaries:
        rows = {(r.get("metric"), r.get("direction")): r for r in summary["metrics"] if r.get("metric") in TRUTH}
        if not rows:
            continue
        for key, r in rows.items():
            if (r.get("baseline") or {}).get("value") is not None:
                baselines.setdefault(summary.get("data", ""), {})[key] = r["baseline"]["value"]
        any_row = next(iter(rows.values()))
        cells = "".join(f"<td>{number(rows[c].get('value')) if c in rows else ''}</td>" for c in columns)
        lines.append(f"<tr><td>{who(summary, any_row)}, {escape(summary.get('data', ''))}</td>{cells}</tr>")
    for data, values in baselines.items():
        cells = "".join(f"<td>{number(values.get(c))}</td>" for c in columns)
        lines.append(f"<tr><td>identity (the input itself), {escape(data)}</td>{cells}</tr>")
    if not lines:
        return '<p class="note">not run: make demo (CycleGAN) and make pix2pix-synthetic (pix2pix), each scored by make evaluate.</p>'
    return f"<table>{head}{''.join(lines)}</table>"


def write_tables_page(figures_dir: Path) -> Path:
    """FIGURES_DIR/tables.html from every FIGURES_DIR/*/summary.json."""
    figures_dir = Path(figures_dir)
    summaries = [json.loads(path.read_text()) for path in sorted(figures_dir.glob("*/summary.json"))]
    body = f"""<p><a href="index.html">all runs</a></p>
<h1>The paper's tables beside the runs here</h1>
<p>Each cell: the CycleGAN paper's number, then every run drawn into this folder that measured it
(its eval/metrics.json, written by <code>replication evaluate RUN</code>): the run, the epoch
of the weights it scored, its image size. The paper scored labels→photo with an FCN trained on
Cityscapes; the kit scores it with its own scorer (make cityscapes-scorer), so those numbers compare
loosely. Higher is better everywhere.</p>
{paper_tables(summaries)}
<h2>Against the ground truth (no paper numbers)</h2>
<p>Data with ground truth (the synthetic set, paired sets): MAE (lower is better), PSNR in dB and SSIM
(higher is better), each run beside the identity baseline, the input itself scored against the truth.</p>
{truth_table(summaries)}"""
    path = figures_dir / TABLES_PAGE
    atomic_write_text(path, document("The paper's tables: CycleGAN replication kit", body))
    return path

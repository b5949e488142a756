"""A run's results page, figures/NAME/index.html, and what the kit's pages share (all_runs.py and
tables.py draw the others).

Offline and self-contained: no fonts, styles or scripts from the network, every link relative, so
the figures folder can be moved or zipped. Each page reads the run summaries (summary.py) only.
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from urllib.parse import quote

from replication import choices
from replication.figures.style import ARROWS
from replication.figures.summary import TRAINING, state_words
from replication.files import atomic_write_text, readable

TABLES_PAGE = "tables.html"
ALL_RUNS = "index.html"  # FIGURES_DIR/index.html, all_runs.py
REFRESH = 60  # s: how often a page reloads itself while a run it shows is training

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
    "line is every logged value; the solid line is its moving average (the rule is under the figure's "
    "title). Dotted lines and the top axis mark the ends of epochs. Click for the PDF."
)

# Keys that do not apply to a run, by the choice that makes them moot (as base.yaml's comments say);
# the loss and train keys its model does not read are its row's (choices.moot_keys).
NOT_APPLYING = (
    (lambda c: c["model"]["generator"] == "unet", ("model.n_blocks", "model.upsample")),
    (lambda c: c["model"]["generator"] != "unet", ("model.num_downs", "model.generator_norm")),
    (lambda c: c["data"]["source"] in ("synthetic", "folder", "paired", "cityscapes"), ("data.name",)),
    (lambda c: c["data"]["source"] not in ("pix2pix", "paired"), ("data.direction",)),
    (lambda c: c["data"]["source"] not in ("pix2pix", "cityscapes"), ("data.download_url", "data.download_sha256")),
)


def config_keys(config: dict) -> tuple[dict, dict]:
    """({section.key: value} the run used, {section.key: value} that do not apply to it or are unset)."""
    flat = {f"{section}.{key}": value for section, keys in config.items() if isinstance(keys, dict) for key, value in keys.items()}
    flat.update({key: value for key, value in config.items() if not isinstance(value, dict)})
    moot = set()
    try:
        moot.update(choices.moot_keys(config["model"]["type"]))
    except (KeyError, TypeError):  # a model the table no longer has
        pass
    for applies, keys in NOT_APPLYING:
        try:
            if applies(config):
                moot.update(keys)
        except (KeyError, TypeError):  # a config of another shape: show it all
            pass
    unused = {k: v for k, v in flat.items() if k in moot or v is None}
    return {k: v for k, v in flat.items() if k not in unused}, unused


def config_section(config: dict) -> str:
    used, unused = config_keys(config)

    def listing(keys: dict) -> str:
        return escape("\n".join(f"{key}: {json.dumps(value)}" for key, value in keys.items()))

    return (
        f"<p>The keys this run used (RUN/config.yaml holds them all):</p><pre>{listing(used)}</pre>"
        f"<details><summary>{len(unused)} keys that do not apply to this run or are unset</summary><pre>{listing(unused)}</pre></details>"
    )


def document(title: str, body: str, refresh: bool = False, style: str = "") -> str:
    """A whole page; `refresh`: the browser reloads it every REFRESH seconds (while a run trains); `style`: the page's own CSS."""
    reload = f'<meta http-equiv="refresh" content="{REFRESH}">\n' if refresh else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n{reload}<title>{escape(title)}</title>\n'
        f"<style>{STYLE}{style}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def number(value) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else escape(str(value))


def metrics_table(rows: list) -> str:
    """One row per metric and direction, one number per cell; columns nobody filled are left out."""
    baselines = list(dict.fromkeys((row.get("baseline") or {}).get("name", "baseline") for row in rows if row.get("baseline")))
    papers = list(dict.fromkeys(name for row in rows for name, v in (row.get("paper") or {}).items() if v is not None))
    columns = [("metric", lambda r: escape(str(r.get("metric", "")))),
               ("direction", lambda r: escape(ARROWS.get(r.get("direction"), r.get("direction") or ""))),
               ("value", lambda r: number(r.get("value"))),
               ("± std", lambda r: number(r.get("std")))]
    columns += [(name, lambda r, n=name: number((r.get("baseline") or {}).get("value")) if (r.get("baseline") or {}).get("name", "baseline") == n else "")
                for name in baselines]
    columns += [(f"paper, {name}", lambda r, n=name: number((r.get("paper") or {}).get(n))) for name in papers]
    columns += [("definition", lambda r: escape(str(r.get("definition") or "")))]
    cells = [[cell(row) for _, cell in columns] for row in rows]
    kept = [i for i in range(len(columns)) if any(line[i] for line in cells)]
    head = "<tr>" + "".join(f"<th>{escape(columns[i][0])}</th>" for i in kept) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{line[i]}</td>" for i in kept) + "</tr>" for line in cells)
    return f"<table>{head}{body}</table>"


def numbers_section(summary: dict) -> str:
    """The run's latest numbers, saying where they come from (evaluate's, else eval.csv's last row)."""
    numbers = summary.get("numbers") or {}
    if not numbers:
        return ('<p class="note">No numbers yet: <code>replication evaluate RUN</code> scores the run, and '
                "<code>train.eval_every</code> scores it after its epochs while it trains (eval.csv).</p>")
    return f"<p>The latest numbers: {escape(numbers['words'])}.</p>{metrics_table(numbers['rows'])}"


def figure(folder: Path, stem: str, alt: str, not_drawn: str | None) -> str:
    """The figure's PNG linking to its PDF, or why it is missing."""
    if (folder / f"{stem}.png").exists():
        return f'<p><a href="{stem}.pdf"><img src="{stem}.png" alt="{escape(alt)}"></a></p>'
    return f'<p class="note">Not drawn: {escape(not_drawn or "nothing to draw it from yet")}</p>'


def escaped_name(name: str) -> str:
    """A file name as page text: bytes that are not UTF-8 (legal in Linux names) as \\xNN."""
    return escape(readable(name))


def link(path: str) -> str:
    """A relative link to a file, whatever bytes its name holds (percent-encoded, as URLs carry bytes)."""
    return escape(quote(os.fsencode(path)))


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
                f'<td class="image"><a href="{link(entry["images"][name])}"><img {size} src="{link(entry["thumbnails"][name])}" '
                f'alt="{escape(name)} of {escaped_name(entry["name"])}" title="{escape(name)}"></a></td>'
                for name in entry["images"]
            )
            parts.append(f"<tr><td>{escaped_name(entry['name'])}</td>{cells}</tr>")
        parts.append("</table></div>")
    return "".join(parts)


def write_run_page(folder: Path, summary: dict, config: dict, results: dict, captions: dict) -> Path:
    """figures/NAME/index.html: state, metrics, the figures, every test image once, the config the run used.

    Every link but the one to the all-runs page stays inside figures/NAME/, so the folder reads the
    same wherever it is copied (a clone holds figures/demo/ but not figures/index.html, which git ignores)."""
    folder = Path(folder)
    why = summary["not_drawn"]
    first = "".join(f' <a href="test_results.{fmt}">test_results.{fmt}</a>' for fmt in ("png", "pdf") if (folder / f"test_results.{fmt}").exists())
    body = f"""<h1>{escape(summary['name'])}</h1>
<p>Experiment <b>{escape(summary['experiment'])}</b>: {escape(state_words(summary))}.</p>
<p class="note">Run folder <code>{escape(summary.get('run', ''))}</code>; drawn {escape(summary.get('drawn_at', ''))} by
<code>replication figures</code>, which also compares every run drawn beside this one on
<a href="../{ALL_RUNS}">the all-runs page</a> (a clone of the repository holds this folder but not that page).</p>
<h2>Metrics</h2>
{numbers_section(summary)}
<h2>Losses</h2>
<p>{escape(HOW_TO_READ)}</p>
{figure(folder, 'losses', 'loss curves', why.get('loss figure'))}
<h2>Evaluation while training</h2>
<p>The test set's scores after each epoch (eval.csv); each dashed line is a baseline, named at its right end.</p>
{figure(folder, 'evaluation', 'scores after each epoch', why.get('evaluation figure'))}
<h2>Progression</h2>
<p>The same test images at the end of chosen epochs (the first row: the inputs).</p>
{figure(folder, 'progression', 'progression across epochs', why.get('progression'))}
<h2>Test results</h2>
<p>Every test image, translated by the run's generators at its own size. Click an image for full size.
{'The first ones as one figure:' + first if first else escape('Not drawn: ' + why['test results']) if why.get('test results') else ''}</p>
{test_tables(results, captions)}
<h2>Configuration</h2>
{config_section(config)}"""
    path = folder / "index.html"
    atomic_write_text(path, document(f"{summary['name']}: CycleGAN replication kit", body, refresh=summary.get("state") == TRAINING))
    return path

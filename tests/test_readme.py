"""The README's demo numbers are the committed demo run's (figures/demo/summary.json), to the digits shown."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARROWS = {"A→B": "AtoB", "B→A": "BtoA"}


COLUMNS = [(metric, arrow) for arrow in ARROWS for metric in ("MAE", "PSNR (dB)", "SSIM")]


def demo_table_rows():
    """(metric, arrow, demo's value, baseline's value) for each column of the README's demo table."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### The demo's numbers"):]
    section = section[: section.index("\n\n", section.index("| MAE A→B"))]
    header = re.search(r"^\| \| (.+) \|$", section, re.M).group(1).split(" | ")
    assert header == [f"{m.split()[0]} {a}" + (" (dB)" if m.startswith("PSNR") else "") for m, a in COLUMNS]
    demo = re.search(r"^\| demo \| (.+) \|$", section, re.M).group(1).split(" | ")
    baseline = re.search(r"^\| identity baseline \(the input itself\) \| (.+) \|$", section, re.M).group(1).split(" | ")
    assert len(demo) == len(baseline) == 6
    return [(m, a, d, b) for (m, a), d, b in zip(COLUMNS, demo, baseline)]


@pytest.mark.parametrize("row", demo_table_rows(), ids=lambda r: f"{r[0]}-{ARROWS[r[1]]}")
def test_readme_demo_numbers_are_the_committed_runs(row):
    metric, arrow, kit, baseline = row
    summary = json.loads((ROOT / "figures" / "demo" / "summary.json").read_text())
    found = next(m for m in summary["metrics"] if m["metric"] == metric.split()[0] and m["direction"] == ARROWS[arrow])
    for shown, value in ((kit, found["value"]), (baseline, found["baseline"]["value"])):
        digits = len(shown.split(".")[1])
        assert float(shown) == round(value, digits), (metric, arrow, shown, value)

"""The README's demo numbers are the committed demo run's (figures/demo/summary.json), to the digits shown."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARROWS = {"A→B": "AtoB", "B→A": "BtoA"}


def demo_table_rows():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### The demo's numbers"):]
    section = section[: section.index("\n\n", section.index("| metric |"))]
    rows = re.findall(r"^\| (MAE|PSNR \(dB\)|SSIM) \| (A→B|B→A) \| ([\d.]+) \| ([\d.]+) \|$", section, re.M)
    assert len(rows) == 6
    return rows


@pytest.mark.parametrize("row", demo_table_rows(), ids=lambda r: f"{r[0]}-{ARROWS[r[1]]}")
def test_readme_demo_numbers_are_the_committed_runs(row):
    metric, arrow, kit, baseline = row
    summary = json.loads((ROOT / "figures" / "demo" / "summary.json").read_text())
    found = next(m for m in summary["metrics"] if m["metric"] == metric.split()[0] and m["direction"] == ARROWS[arrow])
    for shown, value in ((kit, found["value"]), (baseline, found["baseline"]["value"])):
        digits = len(shown.split(".")[1])
        assert float(shown) == round(value, digits), (metric, arrow, shown, value)

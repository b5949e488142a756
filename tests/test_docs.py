"""The README and docs/ point at things that exist: files, headings, make targets, CLI commands, config keys."""

import argparse
import re
from pathlib import Path

import pytest
import yaml

from replication.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
HTML_ID = re.compile(r"""<a\s+(?:id|name)=["']([^"']+)["']""")
MAKE = re.compile(r"(?<![\w-])make\s+([a-z0-9][a-z0-9_-]*)")
CLI = re.compile(r"(?:python3?\s+-m\s+replication|(?<![\w./-])(?<!from )(?<!import )replication)\s+([a-z][a-z0-9-]*)(?:\s+([a-z][a-z0-9-]*))?")


def page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def code_spans(text: str) -> list[str]:
    """The code a reader would type: fenced blocks, inline code, and, in a table row whose first cell
    names a command, every backticked item of that cell (`make a`, `b`, `c` names three targets)."""
    spans = [block for block in FENCE.findall(text)]
    prose = FENCE.sub("", text)
    spans += INLINE_CODE.findall(prose)
    for row in re.findall(r"^\|([^|\n]+)\|", prose, re.M):
        cell = INLINE_CODE.findall(row)
        if cell and re.match(r"(make|python -m replication|replication) ", cell[0]):
            prefix = cell[0].split()[0] if cell[0].startswith("make") else "python -m replication"
            spans += [f"{prefix} {item}" for item in cell[1:]
                      if re.match(r"[a-z][a-z0-9-]*( |$)", item) and not item.startswith(("make ", "python "))]
    return spans


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    found, seen = set(), {}
    for heading in HEADING.findall(text):
        base = slug(heading)
        n = seen.get(base, 0)
        found.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    return found | set(HTML_ID.findall(text))


def relative_links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text())
    text = INLINE_CODE.sub("", text)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in relative_links(path):
        file_part, _, fragment = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            broken.append(f"{target}: no heading #{fragment} in {file_part or path.name}")
    return broken


def make_targets() -> set[str]:
    rules = re.findall(r"^([A-Za-z0-9_.%/ -]+?)\s*:(?!=)", (ROOT / "Makefile").read_text(), re.M)
    return {target for rule in rules for target in rule.split()}


def subcommands(parser: argparse.ArgumentParser) -> dict:
    """{name: its parser} of the parser's sub-commands ({} if it has none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def unknown_commands(text: str) -> list[str]:
    commands = subcommands(build_parser())
    unknown = []
    for span in code_spans(text):
        for name, sub in CLI.findall(span):
            if name not in commands:
                unknown.append(f"replication {name}")
            elif subcommands(commands[name]) and sub and sub not in subcommands(commands[name]):
                unknown.append(f"replication {name} {sub}")
    return unknown


def unknown_targets(text: str) -> list[str]:
    targets = make_targets()
    return [f"make {t}" for span in code_spans(text) for t in MAKE.findall(span) if t not in targets]


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_relative_link_and_image_exists(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_make_target_named_exists(page):
    assert unknown_targets(page.read_text()) == []


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_replication_command_named_exists(page):
    assert unknown_commands(page.read_text()) == []


def test_the_checks_catch_what_they_look_for(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("# A heading, with `code`\n")
    page.write_text("[ok](there.md#a-heading-with-code) [gone](missing.png) [no anchor](there.md#nope) "
                    "`make demo` `make no-such-target` `python -m replication data check X` "
                    "`python -m replication data nope` `replication trian demo`\n")
    assert broken_links(page) == ["missing.png: no such file", "there.md#nope: no heading #nope in there.md"]
    assert unknown_targets(page.read_text()) == ["make no-such-target"]
    assert unknown_commands(page.read_text()) == ["replication data nope", "replication trian"]


def test_every_docs_page_is_reachable_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in relative_links(ROOT / "README.md")}
    assert [page_id(p) for p in PAGES[1:] if p.resolve() not in linked] == []


def test_every_config_key_is_in_the_configuration_page():
    base = yaml.safe_load((ROOT / "experiments" / "base.yaml").read_text())
    page = (ROOT / "docs" / "configuration.md").read_text()
    missing = [f"{section}.{key}" for section, keys in base.items() for key in keys if f"`{section}.{key}`" not in page]
    assert missing == []


def test_the_readme_starts_with_the_demo_and_test_commands():
    """.ci/run runs `make test`, the README's test command; a newcomer's first two commands come first."""
    first_block = FENCE.search((ROOT / "README.md").read_text()).group(0)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:-1]]
    assert commands == ["make demo", "make test"]


def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 220

"""The README and docs/ point at things that exist: files, headings, make targets, CLI commands, config keys;
and the commands they show work as written (docs/developing.md, 'Commands in the docs', says how)."""

import argparse
import re
import shlex
from pathlib import Path

import pytest
import yaml

from replication import config as config_lib
from replication.cli import build_parser
from replication.commands import train as train_command
from helpers import kit, tiny_sets

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


# ---------------------------------------------------------------- the commands the docs show, run or checked


MARKED_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.S | re.M)
MARKERS = ("runnable", "checked", "template")


def fenced_blocks(text: str) -> list[tuple[str, str, int]]:
    """(info string, body, line of the opening fence) of every fenced block."""
    return [(m.group(1).strip(), m.group(2), text[: m.start()].count("\n") + 1) for m in MARKED_FENCE.finditer(text)]


def kit_argv(line: str) -> list | None:
    """The arguments after `replication` (or `python -m replication`, `.venv/bin/replication`, `srun ...`)
    in one shell line, or None if the line runs something else."""
    words = shlex.split(line, comments=True)
    if words[:1] == ["srun"]:
        words = words[1:]
    if words[:1] and re.fullmatch(r"(\S*/)?replication", words[0]):
        return words[1:]
    if words[:2] in (["python", "-m"], ["python3", "-m"]) and words[2:3] == ["replication"]:
        return words[3:]
    return None


def shell_lines(body: str) -> list[str]:
    """A block's lines with their `\\` continuations joined."""
    return [line for line in body.replace("\\\n", " ").splitlines() if line.strip()]


def documented(marker: str, language: str) -> list:
    """pytest params (page:line, argv, the output quoted below it or None) of every kit command in the
    blocks marked `language marker`, each argv once."""
    found, seen = [], set()
    for page in PAGES:
        for info, body, line in fenced_blocks(page.read_text()):
            if info.split() != [language, marker]:
                continue
            if language == "console":  # $ command, then what it prints
                for command, said in re.findall(r"^\$ (.*)\n((?:(?!\$ ).*\n)*)", body, re.M):
                    found.append(pytest.param(kit_argv(command), said, id=f"{page_id(page)}:{line}:{command}"))
                continue
            for command in shell_lines(body):
                argv = kit_argv(command)
                if argv is not None and tuple(argv) not in seen:
                    seen.add(tuple(argv))
                    found.append(pytest.param(argv, None, id=f"{page_id(page)}:{line}:{' '.join(argv[:3])}"))
    return found


def unmarked_blocks(page: Path) -> list[str]:
    """Blocks that run the kit without saying whether they are runnable, checked or a template."""
    return [f"{page_id(page)}:{line}" for info, body, line in fenced_blocks(page.read_text())
            if not set(info.split()) & set(MARKERS) and not info.startswith(("python", "yaml", "json"))
            and any(kit_argv(command) is not None for command in shell_lines(body))]


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_block_of_kit_commands_says_how_it_is_tested(page):
    assert unmarked_blocks(page) == []


def test_the_docs_mark_commands_of_each_kind():
    assert len(documented("runnable", "bash")) >= 4 and len(documented("runnable", "console")) >= 3
    assert len(documented("checked", "bash")) >= 8


@pytest.mark.parametrize("argv, said", documented("checked", "bash"))
def test_a_checked_command_parses_and_its_configuration_and_flags_are_accepted(argv, said):
    args = build_parser().parse_args(argv)
    if args.command == "train":
        train_command.train_config(args)
    elif args.command == "cityscapes-scorer":
        config_lib.resolve(args.experiment, args.overrides)


@pytest.mark.parametrize("argv, said", documented("runnable", "console"))
def test_a_quoted_transcript_is_what_the_command_prints(argv, said, tmp_path):
    done = kit(*argv, cwd=tmp_path)
    assert done.stdout + done.stderr == said


@pytest.mark.parametrize("argv, said", documented("runnable", "bash"))
def test_a_runnable_command_works_as_written(argv, said, tiny_synthetic_root, tmp_path):
    argv = [re.sub(r"(^|=)ROOT$", rf"\g<1>{tiny_synthetic_root}", arg) for arg in argv]
    if argv[0] == "train":
        argv += [*tiny_sets(tiny_synthetic_root), "--until-step", "1"]
    done = kit(*argv, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

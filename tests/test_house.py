"""The house, measured from the kit's own imports (at module level and inside functions): no import
circle, data/ below figures/ and the command line, modules of one job each, no two classes of one
name, no module named as the standard library's, and a reason beside every import made in a function."""

import ast
import sys
import tokenize
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "replication"


@dataclass(frozen=True)
class KitImport:
    importer: str  # the importing module, replication.x.y
    imported: str  # the kit's module it imports
    line: int
    in_function: bool
    has_reason: bool  # a comment on its line, or above the group of imports it heads


def kit_modules(package: Path = PACKAGE) -> dict:
    """Module name -> its file, for every module of the package."""
    files = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def comment_lines(path: Path) -> set[int]:
    with open(path, "rb") as f:
        return {token.start[0] for token in tokenize.tokenize(f.readline) if token.type == tokenize.COMMENT}


def imports_in(path: Path):
    """(import node, inside a function?) for every import statement of a file."""
    found = []

    def walk(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, in_function))
            walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    walk(ast.parse(path.read_text()), False)
    return found


def kit_imports(package: Path = PACKAGE) -> list[KitImport]:
    """Every import of one of the package's modules by another: `from package import module` imports
    that module; `from module import name`, the module."""
    files = kit_modules(package)
    found = []
    for module, path in files.items():
        here = module if path.name == "__init__.py" else module.rpartition(".")[0]
        comments, source = comment_lines(path), path.read_text().splitlines()
        statements = imports_in(path)
        starts = {node.end_lineno: node.lineno for node, _ in statements}  # last line -> first line
        for node, in_function in statements:
            names = set()
            if isinstance(node, ast.Import):
                names = {alias.name for alias in node.names}
            else:
                base = node.module or ""
                if node.level:
                    parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([base] if base else [])])
                names = {f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names}
            head = node.lineno  # the first line of the group of imports, one under the other, this one is in
            while head - 1 in starts:
                head = starts[head - 1]
            own_line = any(line in comments for line in range(node.lineno, node.end_lineno + 1))
            reason = own_line or (head - 1 in comments and source[head - 2].strip().startswith("#"))
            for name in sorted(names):
                if name in files and name != module:
                    found.append(KitImport(module, name, node.lineno, in_function, reason))
    return found


def import_graph(imports=None) -> dict:
    """Module -> the kit's modules it imports, at module level or inside functions."""
    graph = {module: set() for module in kit_modules()}
    for i in imports if imports is not None else kit_imports():
        graph[i.importer].add(i.imported)
    return graph


def circles(graph: dict) -> list[list[str]]:
    visiting, done, found = [], set(), []

    def visit(module):
        if module in visiting:
            found.append(visiting[visiting.index(module):] + [module])
            return
        if module in done:
            return
        visiting.append(module)
        for name in sorted(graph[module]):
            visit(name)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    return found


def reachable(graph: dict, start: str) -> dict:
    """Each module `start` imports, directly or through others -> the chain of imports that reaches it."""
    chains, todo = {start: [start]}, [start]
    while todo:
        module = todo.pop()
        for name in sorted(graph[module]):
            if name not in chains:
                chains[name] = chains[module] + [name]
                todo.append(name)
    return chains


# ---------------------------------------------------------------- no import circle


def test_the_import_graph_of_the_kit_has_no_circle():
    graph = import_graph()
    assert "replication.choices" in graph["replication.config"]
    assert "replication.training" in graph["replication.commands.train"]  # imports inside functions count too
    assert circles(graph) == []


# ---------------------------------------------------------------- data/ at the bottom


ABOVE_DATA = ("replication.figures", "replication.cli", "replication.commands")


def climbs_from_data(graph: dict) -> list[str]:
    """Chains of imports by which a module of data/ reaches figures/, the command line or the commands."""
    found = []
    for module in sorted(m for m in graph if m == "replication.data" or m.startswith("replication.data.")):
        for name, chain in sorted(reachable(graph, module).items()):
            if any(name == top or name.startswith(top + ".") for top in ABOVE_DATA):
                found.append(" -> ".join(chain))
    return found


def test_nothing_in_data_imports_figures_the_command_line_or_the_commands():
    assert climbs_from_data(import_graph()) == []


# ---------------------------------------------------------------- modules of one job


MAX_LINES = 450
# A module over MAX_LINES -> its one job.
LONG_MODULES = {
    "replication/cluster.py": "training on several machines: finding the workers, checking them, launching local ones",
    "replication/config.py": "reading an experiment and checking every value of it, in one place",
    "replication/training.py": "the training loop: steps, logs, samples, checkpoints, exact resume",
}


def long_modules(package: Path = PACKAGE) -> dict:
    return {str(path.relative_to(package.parent)): n for path in sorted(package.rglob("*.py"))
            if (n := len(path.read_text().splitlines())) > MAX_LINES}


def test_no_module_is_over_450_lines_unless_its_one_job_is_stated():
    assert sorted(set(long_modules()) - set(LONG_MODULES)) == []


def test_the_long_modules_listed_are_still_long():
    """A module cut below MAX_LINES leaves the list (so that the list stays the house as it is)."""
    assert sorted(set(LONG_MODULES) - set(long_modules())) == []


# ---------------------------------------------------------------- names that do not collide


# Class names two modules use today, each to be renamed; a new shared name fails.
KNOWN_SHARED_CLASS_NAMES: set[str] = set()


def shared_class_names(package: Path = PACKAGE) -> dict:
    where = defaultdict(list)
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                where[node.name].append(f"{path.relative_to(package.parent)}:{node.lineno}")
    return {name: places for name, places in where.items() if len(places) > 1}


def test_no_two_classes_share_a_name():
    assert sorted(set(shared_class_names()) - KNOWN_SHARED_CLASS_NAMES) == []


def shadowing(folders=(PACKAGE, ROOT / "tests", ROOT / "bench")) -> list[str]:
    """Modules and packages named as a module of the standard library (tests/ and bench/ are on sys.path)."""
    found = []
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            names = [*path.relative_to(folder).parent.parts, path.stem]
            found += [f"{path.relative_to(ROOT)}: {name}" for name in names if name in sys.stdlib_module_names]
    return found


def test_no_module_is_named_as_the_standard_librarys():
    assert shadowing() == []


# ---------------------------------------------------------------- imports inside functions say why


# Importer -> the kit's modules it imports inside a function without a reason today (names under
# replication.); to be hoisted, or given their reason. A new one without a reason fails.
KNOWN_UNREASONED = {}


def known_unreasoned() -> set:
    return {(f"replication.{importer}", f"replication.{name}") for importer, names in KNOWN_UNREASONED.items() for name in names}


def unreasoned(imports=None) -> set:
    """(importer, imported) of the imports inside functions with no comment on their line or above
    the group of imports, one under the other, that they belong to."""
    return {(i.importer, i.imported) for i in (imports if imports is not None else kit_imports())
            if i.in_function and not i.has_reason}


def test_every_import_inside_a_function_says_why():
    imports = kit_imports()
    new = unreasoned(imports) - known_unreasoned()
    assert [f"{i.importer} line {i.line}: {i.imported}" for i in imports if (i.importer, i.imported) in new] == []


def test_the_imports_known_without_a_reason_are_still_there():
    """An import hoisted or given its reason leaves the list."""
    assert sorted(known_unreasoned() - unreasoned()) == []

"""The package's layers, read from its source: the store and the reading layer speak
SQL, nobody else does, and no two modules import each other in a circle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "promptlog"
MODULES = {
    ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts): path
    for path in sorted(PACKAGE.rglob("*.py"))
}
# Reading SQL lives in read.py, writing SQL in the store (and its migrations).
SPEAKS_SQL = ("promptlog.read", "promptlog.store")
SQL = re.compile(
    r"\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b"
)


def _strings(tree: ast.AST) -> list[str]:
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]  # fmt: skip


def _sql_in(module: str) -> list[str]:
    tree = ast.parse(MODULES[module].read_text())
    found = [text for text in _strings(tree) if SQL.search(text)]
    found += [
        f".{node.func.attr}(...)" for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("execute", "executemany", "executescript")
    ]  # fmt: skip
    return found


@pytest.mark.parametrize(
    "module", [m for m in MODULES if not m.startswith(SPEAKS_SQL)]
)
def test_only_the_store_and_the_reading_layer_speak_sql(module):
    assert _sql_in(module) == [], f"{module} runs its own SQL; ask promptlog.read.Log"


def _imports(module: str) -> set[str]:
    """The promptlog modules that ``module`` imports, anywhere in it."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rsplit(".", 1)[0]
            base = f"{base}.{node.module}" if node.level and node.module else (
                base if node.level else node.module or ""
            )
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found |= {name for name in names if name in MODULES or f"{name}.__init__" in MODULES}
    # A package's __init__ only hands names on: it ties nothing together.
    return {name for name in found if name in MODULES and not name.endswith("__init__")
            and name != module}  # fmt: skip


def test_no_modules_import_each_other_in_a_circle():
    graph = {module: _imports(module) for module in MODULES}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            current = todo.pop()
            if current == goal:
                return True
            if current not in seen:
                seen.add(current)
                todo.extend(graph.get(current, ()))
        return False

    # every import that is one step of a circle
    circles = sorted(f"{a} -> {b}" for a in graph for b in graph[a] if reaches(b, a))
    assert circles == []


def test_the_reading_layer_imports_nothing_above_it():
    assert _imports("promptlog.read") <= {
        "promptlog.stats", "promptlog.store", "promptlog.errors", "promptlog.metrics",
        "promptlog.prompts",
    }

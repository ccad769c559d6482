"""What import-linter (`make lint`, the contracts in pyproject.toml) cannot see, since these are not the package:
hack/localcluster's modules and the benches import no circle, and no test module outside tests/cluster imports
another test module (shared helpers live in helper modules: tests/*_support.py, factories.py, ...)."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported(path: Path, known: set[str] | None = None) -> set[str]:
    """Every module PATH imports, anywhere in it (a function's own imports too), as dotted names. `from A import B`
    is A.B when that is one of the KNOWN modules, else A."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            subs = {f"{node.module}.{alias.name}" for alias in node.names} & (known or set())
            out.update(subs or {node.module})
    return out


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of GRAPH (module -> the modules of GRAPH it imports), as the path around it; None if none."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for nxt in sorted(graph[module]):
            found = visit(nxt, [*path, module])
            if found:
                return found
        done.add(module)
        return None

    for module in sorted(graph):
        found = visit(module, [])
        if found:
            return found
    return None


def local_graph(files: Iterable[Path], name_of: dict[Path, str]) -> dict[str, set[str]]:
    names = set(name_of.values())
    return {name_of[f]: (imported(f, names) & names) - {name_of[f]} for f in files}


def test_cycle_finds_a_circle_and_only_one() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("where", ["hack/localcluster", "bench"])
def test_no_import_circle(where: str) -> None:
    files = sorted((ROOT / where).glob("*.py"))
    package = where == "hack/localcluster"
    name_of = {f: f.stem for f in files}
    if package:
        name_of = {f: "localcluster" if f.stem == "__init__" else f"localcluster.{f.stem}" for f in files}
    graph = local_graph(files, name_of)
    assert len(graph) > 5
    assert cycle(graph) is None, f"{where}: import circle {' -> '.join(cycle(graph) or [])}"


def test_test_modules_import_helpers_not_tests() -> None:
    tests = sorted((ROOT / "tests").glob("test_*.py"))
    wrong = {t.name: sorted(m for m in imported(t) if m.split(".")[0].startswith("test_")) for t in tests}
    assert {name: mods for name, mods in wrong.items() if mods} == {}

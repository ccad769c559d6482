"""What import-linter (`make lint`, the contracts in pyproject.toml) cannot see, since these are not the package:
hack/localcluster's modules and the benches import no circle, and no module of tests/, tests/cluster/ or bench/
imports a test module (shared fixtures live in conftest.py, shared helpers in helper modules: tests/*_support.py,
factories.py, tests/cluster/flows.py, release.py, clusterkit.py, ...)."""

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


def imported_test_modules(path: Path) -> list[str]:
    """The test modules (`test_*`, at any level of a dotted name) PATH imports."""
    return sorted(m for m in imported(path) if any(part.startswith("test_") for part in m.split(".")))


def test_an_imported_test_module_is_found(tmp_path: Path) -> None:
    src = tmp_path / "flows.py"
    src.write_text("import flows\nimport test_operator as ops\nfrom test_chart_e2e import NS\nfrom tests import x\n")
    assert imported_test_modules(src) == ["test_chart_e2e", "test_operator"]


@pytest.mark.parametrize("where", ["tests", "tests/cluster", "bench"])
def test_modules_import_helpers_not_tests(where: str) -> None:
    """Every module there, test modules, conftest.py and helper modules alike."""
    files = sorted((ROOT / where).glob("*.py"))
    assert len(files) > 5
    wrong = {f.name: imported_test_modules(f) for f in files}
    assert {name: mods for name, mods in wrong.items() if mods} == {}

"""Inputs past aigate's bounds (a duration that overflows, a document nested thousands deep, a referenced suite
larger than any gate run needs) get one line naming the field, exit 2 from the CLI and a WorkloadError in the
operator (its InvalidSpec condition), never an OverflowError or RecursionError past every handler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from aigate.api.errors import WorkloadError
from aigate.api.load import MAX_DEPTH, MAX_REFERENCED_BYTES, parse_workload, resolve
from aigate.api.models import ConfigMapKeyRef
from aigate.cli import main
from factories import example_doc

DEEP_JSON = '{"a":' * 3000 + "{}" + "}" * 3000
DEEP_YAML = "[" * 5000 + "]" * 5000


def deep_dict(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels):
        node["a"] = {}
        node = node["a"]
    return root


def workload(change: Any) -> dict[str, Any]:
    doc = example_doc()
    doc["spec"]["prompts"] = [{"inline": "You review fraud cases."}]
    change(doc)
    return doc


def referenced(text: str) -> Any:
    def lookup(ref: ConfigMapKeyRef) -> str:
        return text

    return lookup


@pytest.mark.parametrize(
    ("change", "text", "message"),
    [
        (
            lambda d: d["spec"].update(evidence={"validFor": "99999999999999999999d"}),
            "",
            "spec.evidence.validFor: must be at most 3650d (got '99999999999999999999d')",
        ),
        (
            lambda d: d["spec"]["suite"]["cases"][0]["expect"].update(jsonSchema=deep_dict(3000)),
            "",
            f"spec: nested deeper than {MAX_DEPTH} levels",
        ),
        (
            lambda d: d["spec"]["tools"][0].update(manifest={"configMapRef": {"name": "tools", "key": "m"}}),
            DEEP_JSON,
            f"spec.tools[0].manifest: nested deeper than {MAX_DEPTH} levels",
        ),
        (
            lambda d: d["spec"].update(suite={"configMapRef": {"name": "suite", "key": "cases.yaml"}}),
            DEEP_YAML,
            f"nested deeper than {MAX_DEPTH} levels",
        ),
        (
            lambda d: d["spec"].update(suite={"configMapRef": {"name": "suite", "key": "cases.yaml"}}),
            "x" * (MAX_REFERENCED_BYTES + 1),
            f"spec.suite: {MAX_REFERENCED_BYTES + 1} bytes, above the limit of {MAX_REFERENCED_BYTES} bytes",
        ),
    ],
    ids=["overflow", "nested spec", "nested manifest", "nested yaml suite", "oversize suite"],
)
def test_bounds_are_one_workload_error(change: Any, text: str, message: str) -> None:
    with pytest.raises(WorkloadError) as e:
        resolve(parse_workload(workload(change)), referenced(text))
    assert message in e.value.message


def test_the_cli_says_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = workload(lambda d: d["spec"].update(evidence={"validFor": "99999999999999999999d"}))
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SystemExit) as exc:
        main(["check", str(path), "--quiet"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "spec.evidence.validFor: must be at most 3650d" in err

"""SARIF 2.1.0 for code-scanning UIs: one rule per check (finding code), one result per finding, located at the
workload file and the spec path the finding is about (with its line, when the file can be read).

The standards a finding evidences are its rule's tags and the result's `standards` property, and each is a taxon
of the standard's taxonomy, so a code-scanning UI can filter by OWASP, NIST or EU AI Act ID.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, get_args

import yaml

from aigate.assessment import Assessment
from aigate.gates.result import Finding, FindingCode, GateResult
from aigate.standards import mapping, spec_path

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVELS = {"fail": "error", "warn": "warning", "info": "note"}
CODES: tuple[str, ...] = get_args(FindingCode)


def _rule_name(code: str) -> str:
    """'toolControl.approvalMissing' -> 'ToolControlApprovalMissing' (SARIF's rule name is one word)."""
    return "".join(part[:1].upper() + part[1:] for part in code.split("."))


def _rules() -> list[dict[str, Any]]:
    std = mapping()
    rules = []
    for code in CODES:
        entry = std.findings[code]
        gate = code.split(".", 1)[0]
        labels = [std.label(i) for i in entry.ids]
        rules.append(
            {
                "id": code,
                "name": _rule_name(code),
                "shortDescription": {"text": entry.title},
                "fullDescription": {"text": f"{entry.title} ({gate} check; evidences {', '.join(labels)})."},
                "help": {"text": f"Where: {entry.spec_path}. Standards: {'; '.join(labels)}."},
                "properties": {"tags": ["aigate", gate, *entry.ids], "gate": gate},
                "relationships": [
                    {"target": {"id": i, "toolComponent": {"name": std.framework(i)}}, "kinds": ["relevant"]}
                    for i in entry.ids
                ],
            }
        )
    return rules


def _taxonomies() -> list[dict[str, Any]]:
    std = mapping()
    out = []
    for key, source in std.sources.items():
        taxa = [{"id": i, "name": t} for i, t in std.catalogue.items() if std.framework(i) == key]
        out.append({"name": key, "fullName": source.title, "informationUri": source.url, "taxa": taxa})
    return out


def _yaml_line(text: str, dotted: str) -> int | None:
    """The line (1-based) of a spec path in the file's AIWorkload document: of the deepest part found."""
    try:
        docs = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    node = next((d for d in docs if _scalar(_get(d, "kind")) == "AIWorkload"), None)
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in dotted.replace("[", ".[").split("."):
        found: tuple[int, yaml.Node] | None = None
        if part.startswith("[") and isinstance(node, yaml.SequenceNode):
            item = next((i for i in node.value if _scalar(_get(i, "name")) == part[1:-1]), None)
            found = (item.start_mark.line, item) if item is not None else None
        elif part:
            found = _entry(node, part)
        if found is None:
            break
        line, node = found[0] + 1, found[1]
    return line


def _entry(node: yaml.Node | None, key: str) -> tuple[int, yaml.Node] | None:
    """(the key's line, 0-based, and its value) in a mapping node."""
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k.start_mark.line, v
    return None


def _get(node: yaml.Node | None, key: str) -> yaml.Node | None:
    found = _entry(node, key)
    return found[1] if found else None


def _scalar(node: yaml.Node | None) -> str | None:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else None


def _uri(source: str) -> str:
    """Relative to the working directory when inside it (code scanning resolves it against the checkout)."""
    p = Path(source)
    with contextlib.suppress(ValueError, OSError):
        p = p.resolve().relative_to(Path.cwd().resolve())
    return p.as_posix()


def _result(g: GateResult, f: Finding, index: dict[str, int], source: str | None, text: str | None) -> dict[str, Any]:
    code = f.code or "toolControl.note"
    where = spec_path(code, f.subject)
    location: dict[str, Any] = {"logicalLocations": [{"fullyQualifiedName": where, "kind": "member"}]}
    if source is not None:
        physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(source)}}
        line = _yaml_line(text, where) if text is not None else None
        if line is not None:
            physical["region"] = {"startLine": line}
        location["physicalLocation"] = physical
    props: dict[str, Any] = {"gate": g.gate, "gateStatus": g.status, "standards": f.standards}
    if f.subject:
        props["subject"] = f.subject
    return {
        "ruleId": code,
        "ruleIndex": index[code],
        "level": LEVELS[f.severity],
        "message": {"text": f.message},
        "locations": [location],
        "partialFingerprints": {"aigateFinding/v1": f"{code}:{f.subject or ''}:{where}"},
        "properties": props,
    }


def sarif_doc(a: Assessment, source: str | None = None) -> dict[str, Any]:
    """`source`: the workload file the results point at (read for line numbers when it can be)."""
    text = None
    if source is not None:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = None
    rules = _rules()
    index = {r["id"]: i for i, r in enumerate(rules)}
    results = [_result(g, f, index, source, text) for g in a.gates for f in g.findings]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "aigate",
                "version": a.runner_version,
                "semanticVersion": a.runner_version,
                "rules": rules,
            }
        },
        "taxonomies": _taxonomies(),
        "results": results,
        "invocations": [{"executionSuccessful": all(g.status != "ERROR" for g in a.gates)}],
        "properties": {
            "workload": f"{a.namespace}/{a.name}",
            "decision": a.decision,
            "specDigest": a.spec_digest,
            "gates": {g.gate: g.status for g in a.gates},
        },
    }
    if source is not None:
        run["artifacts"] = [{"location": {"uri": _uri(source)}, "roles": ["analysisTarget"]}]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def render_sarif(a: Assessment, source: str | None = None) -> str:
    return json.dumps(sarif_doc(a, source), indent=2) + "\n"

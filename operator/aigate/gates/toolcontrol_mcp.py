"""toolControl, MCP part: do the tools an MCP server really exposes match what the workload declares?

A server exposing a tool the workload never declared is authority nobody reviewed; a tool declared `read`
that its own server annotates as writing or destructive is under-declared, so it escapes the approval rule.
Annotations are hints: only what the server states explicitly is held against the declaration.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from aigate.api.load import ResolvedWorkload
from aigate.measurements import McpServerProbe, McpTool, Measurements


class ToolComparison(NamedTuple):
    problems: list[str]
    """Each one fails the gate."""
    notes: list[str]
    """Worth knowing, not failing: a declared tool this server does not expose (it may be local)."""


def compare_tools(declared: Iterable[tuple[str, str | None]], probe: McpServerProbe) -> ToolComparison:
    """Compare declared (name, access) pairs with one server's probe. Pure: no I/O."""
    access = dict(declared)
    server = probe.name
    if not probe.reachable:
        why = probe.error or "unreachable"
        return ToolComparison([f"MCP server {server} could not be probed: {why}"], [])
    problems: list[str] = []
    notes: list[str] = []
    exposed = {t.name for t in probe.tools}
    for tool in probe.tools:
        if tool.name not in access:
            problems.append(
                f"undeclared authority: MCP server {server} exposes {tool.name}, not declared in spec.tools"
                + _hints(tool)
            )
            continue
        problem = _access_mismatch(server, tool, access[tool.name])
        if problem:
            problems.append(problem)
    for name in access:
        if name not in exposed:
            notes.append(f"{name} is declared but MCP server {server} does not expose it (a local tool?)")
    return ToolComparison(problems, notes)


def _access_mismatch(server: str, tool: McpTool, declared: str | None) -> str | None:
    """The declaration understates what the server says the tool does. Unclassified tools fail elsewhere."""
    if declared == "read":
        if tool.destructive_hint is True:
            said = "destructiveHint: true"
        elif tool.read_only_hint is False:
            said = "readOnlyHint: false"
        else:
            return None
        return f"{tool.name} is declared read but MCP server {server} annotates it {said}"
    if declared == "write" and tool.destructive_hint is True and tool.read_only_hint is not True:
        return f"{tool.name} is declared write but MCP server {server} annotates it destructiveHint: true"
    return None


def _hints(tool: McpTool) -> str:
    said = [
        f"{k}: {str(v).lower()}"
        for k, v in (("readOnlyHint", tool.read_only_hint), ("destructiveHint", tool.destructive_hint))
        if v is not None
    ]
    return f" (annotated {', '.join(said)})" if said else ""


def mcp_check(resolved: ResolvedWorkload, m: Measurements) -> tuple[list[str], list[str]]:
    """The toolControl ExtraCheck over every probed server.

    A declared tool counts as missing only when no reachable server exposes it, so a workload spread over
    several servers is not told each server lacks the others' tools.
    """
    declared = [(t.name, t.access) for t in resolved.tools]
    problems: list[str] = []
    exposed: set[str] = set()
    probed = [p for p in m.mcp if p.reachable]
    for probe in m.mcp:
        problems += compare_tools(declared, probe).problems
        exposed |= {t.name for t in probe.tools}
    notes: list[str] = []
    if probed:
        servers = ", ".join(p.name for p in probed)
        notes = [
            f"{name} is declared but no MCP server ({servers}) exposes it (a local tool?)"
            for name, _ in declared
            if name not in exposed
        ]
    return problems, notes

"""The MCP probe against a real MCP server (the SDK's, over Streamable HTTP on loopback) and the comparison
the toolControl gate makes with what the workload declares."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from aigate.api.models import Credentials, McpServer
from aigate.gates.toolcontrol import judge_tool_control
from aigate.gates.toolcontrol_mcp import compare_tools, mcp_check
from aigate.measurements import McpServerProbe, McpTool
from aigate.probes.mcp import probe_mcp_server
from factories import example_doc, measurements, resolved_from
from mcp_servers.casetools import PAGE_SIZE, TOOLS, Running, serve_casetools

TOKEN = "mcp-test-token-5f2a9c"

DECLARED: list[tuple[str, str | None]] = [
    ("lookup_policy", "read"),
    ("create_case_note", "write"),
    ("export_cases", "read"),  # the server annotates it readOnlyHint: false
    ("get_case", "read"),
    ("summarize_locally", "read"),  # a local tool: no server exposes it
]


@pytest.fixture(scope="module")
def casetools() -> Iterator[Running]:
    with serve_casetools(token=TOKEN) as running:
        yield running


def server(url: str) -> McpServer:
    return McpServer(name="casetools", url=url, credentials=Credentials(env="CASETOOLS_TOKEN"))


async def test_probe_lists_every_tool_with_its_annotations(casetools: Running) -> None:
    assert len(TOOLS) > PAGE_SIZE, "the server must page for this test to exercise nextCursor"
    probe = await probe_mcp_server(server(casetools.url), TOKEN)
    assert probe.reachable, probe.error
    assert probe.error == ""
    assert probe.server_name == "casetools"
    assert probe.protocol_version
    assert [(t.name, t.read_only_hint, t.destructive_hint) for t in probe.tools] == [
        ("lookup_policy", True, None),
        ("create_case_note", False, False),
        ("delete_case", False, True),
        ("export_cases", False, None),
        ("get_case", True, None),
    ]
    assert probe.tools[0].description.startswith("Look up the fraud policy")


async def test_comparison_flags_the_undeclared_and_the_misannotated_tool_and_nothing_else(casetools: Running) -> None:
    probe = await probe_mcp_server(server(casetools.url), TOKEN)
    problems, notes = compare_tools(DECLARED, probe)
    assert problems == [
        "undeclared authority: MCP server casetools exposes delete_case, not declared in spec.tools "
        "(annotated readOnlyHint: false, destructiveHint: true)",
        "export_cases is declared read but MCP server casetools annotates it readOnlyHint: false",
    ]
    assert notes == ["summarize_locally is declared but MCP server casetools does not expose it (a local tool?)"]


async def test_gate_fails_on_the_mcp_findings(casetools: Running) -> None:
    doc = example_doc()
    doc["spec"]["tools"] += [{"name": "export_cases", "access": "read"}, {"name": "get_case", "access": "read"}]
    resolved = resolved_from(doc)
    probe = await probe_mcp_server(server(casetools.url), TOKEN)
    result = judge_tool_control(resolved, measurements({}, mcp=[probe]), extra=[mcp_check])
    assert result.status == "FAIL"
    failing = [f.message for f in result.findings if f.severity == "fail"]
    assert any("exposes delete_case" in f for f in failing)
    assert any(f.startswith("export_cases is declared read") for f in failing)
    assert len(failing) == 2


def test_declared_read_but_destructive_names_the_destructive_hint() -> None:
    probe = McpServerProbe(
        name="casetools",
        url="http://127.0.0.1:1/mcp",
        reachable=True,
        tools=[McpTool(name="lookup_policy", read_only_hint=False, destructive_hint=True)],
    )
    problems, _ = compare_tools([("lookup_policy", "read")], probe)
    assert problems == ["lookup_policy is declared read but MCP server casetools annotates it destructiveHint: true"]


@pytest.mark.parametrize(
    ("declared", "hints", "problem"),
    [
        ("read", (True, None), False),
        ("read", (None, None), False),  # no explicit claim: nothing to hold against the declaration
        ("write", (False, True), True),
        ("write", (False, False), False),
        ("write", (True, None), False),  # over-declared is safe
        ("destructive", (False, True), False),
        ("destructive", (True, False), False),
        (None, (False, True), False),  # unclassified tools are the static check's business
    ],
)
def test_access_against_annotations(
    declared: str | None, hints: tuple[bool | None, bool | None], problem: bool
) -> None:
    tool = McpTool(name="t", read_only_hint=hints[0], destructive_hint=hints[1])
    probe = McpServerProbe(name="s", url="http://127.0.0.1:1/mcp", reachable=True, tools=[tool])
    assert bool(compare_tools([("t", declared)], probe).problems) is problem


def test_unreachable_server_is_a_problem_for_the_gate() -> None:
    probe = McpServerProbe(name="casetools", url="http://127.0.0.1:1/mcp", reachable=False, error="connection failed")
    assert compare_tools(DECLARED, probe) == (["MCP server casetools could not be probed: connection failed"], [])


def test_a_tool_on_another_server_is_not_reported_missing() -> None:
    a = McpServerProbe(name="a", url="http://127.0.0.1:1/mcp", reachable=True, tools=[McpTool(name="lookup_policy")])
    b = McpServerProbe(name="b", url="http://127.0.0.1:2/mcp", reachable=True, tools=[McpTool(name="create_case_note")])
    doc = example_doc()
    doc["spec"]["tools"].append({"name": "local_only", "access": "read"})
    problems, notes = mcp_check(resolved_from(doc), measurements({}, mcp=[a, b]))
    assert problems == []
    assert notes == ["local_only is declared but no MCP server (a, b) exposes it (a local tool?)"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_unreachable_url_gives_a_clear_one_line_error() -> None:
    probe = await probe_mcp_server(server(f"http://127.0.0.1:{free_port()}/mcp"), TOKEN, timeout_s=5)
    assert not probe.reachable
    assert probe.tools == []
    assert probe.error.startswith("connection failed"), probe.error
    assert "\n" not in probe.error
    assert "Traceback" not in probe.error


async def test_silent_server_times_out() -> None:
    with socket.socket() as s:  # accepts connections into its backlog, never answers
        s.bind(("127.0.0.1", 0))
        s.listen()
        probe = await probe_mcp_server(server(f"http://127.0.0.1:{s.getsockname()[1]}/mcp"), TOKEN, timeout_s=1)
    assert not probe.reachable
    assert probe.error == "no answer within the timeout"


async def test_bearer_token_is_sent_and_never_recorded(casetools: Running) -> None:
    before = len(casetools.authorizations)
    probe = await probe_mcp_server(server(casetools.url), TOKEN)
    assert probe.reachable
    seen = casetools.authorizations[before:]
    assert seen and all(a == f"Bearer {TOKEN}" for a in seen)
    assert TOKEN not in probe.model_dump_json()


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_server_refuses_without_the_right_token(casetools: Running, token: str | None) -> None:
    probe = await probe_mcp_server(server(casetools.url), token, timeout_s=5)
    assert not probe.reachable
    assert probe.error.startswith("HTTP 401 Unauthorized"), probe.error
    dumped: dict[str, Any] = probe.model_dump()
    assert TOKEN not in str(dumped)
    if token:
        assert token not in str(dumped)

"""MCP probe: ask a Model Context Protocol server which tools it really exposes, and how it annotates them.

The toolControl gate compares this against spec.tools, so what is recorded is exactly what the server said
(hints left as None when the server gave none) and never the credential used to ask.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import anyio
import httpx2
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import StreamableHTTPError, streamable_http_client
from mcp.shared.exceptions import MCPError

from aigate.api.models import McpServer
from aigate.measurements import McpServerProbe, McpTool

log = logging.getLogger(__name__)

MAX_PAGES = 100
"""A server that keeps handing out cursors is broken; stop rather than loop forever."""


async def probe_mcp_server(server: McpServer, token: str | None, *, timeout_s: float = 10) -> McpServerProbe:
    """Initialize a session over Streamable HTTP and list every tool, following `nextCursor` to the end.

    Never raises for a server-side problem: an unreachable or misbehaving server is a measurement
    (`reachable=False` and a one-line `error`), which the gate then judges.
    """
    url = str(server.url)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http_errors: list[str] = []
    try:
        with anyio.fail_after(timeout_s):
            return await _probe(server.name, url, headers, timeout_s, http_errors)
    except Exception as e:  # every failure mode is a finding, not a crash of the gate run
        error = _one_line(e, token)
        if http_errors and http_errors[0] not in error:
            # The SDK turns an HTTP error status into a generic JSON-RPC error; the status says more.
            error = f"{http_errors[0]} ({error})"
        log.info("MCP server %s at %s not probed: %s", server.name, url, error)
        return McpServerProbe(name=server.name, url=url, reachable=False, error=error)


async def _probe(
    name: str, url: str, headers: dict[str, str], timeout_s: float, http_errors: list[str]
) -> McpServerProbe:
    async def note_status(response: httpx2.Response) -> None:
        if response.status_code >= 400:
            http_errors.append(f"HTTP {response.status_code} {response.reason_phrase}".rstrip())

    async with (
        httpx2.AsyncClient(
            headers=headers, timeout=httpx2.Timeout(timeout_s), event_hooks={"response": [note_status]}
        ) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write, read_timeout_seconds=timeout_s) as session,
    ):
        init = await session.initialize()
        tools: list[McpTool] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            tools += [_tool(t) for t in page.tools]
            cursor = page.next_cursor
            if not cursor:
                break
        else:
            raise RuntimeError(f"tools/list still paginating after {MAX_PAGES} pages")
    return McpServerProbe(
        name=name,
        url=url,
        reachable=True,
        server_name=init.server_info.name,
        protocol_version=str(init.protocol_version),
        tools=tools,
    )


def _tool(t: types.Tool) -> McpTool:
    a = t.annotations
    return McpTool(
        name=t.name,
        read_only_hint=a.read_only_hint if a else None,
        destructive_hint=a.destructive_hint if a else None,
        description=t.description or "",
    )


def _leaves(e: BaseException) -> Iterator[BaseException]:
    """The real causes inside the exception groups that anyio task groups wrap errors in."""
    if isinstance(e, BaseExceptionGroup):
        for sub in e.exceptions:
            yield from _leaves(sub)
    else:
        yield e


def _describe(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "no answer within the timeout"
    if isinstance(e, httpx2.HTTPStatusError):
        r = e.response
        return f"HTTP {r.status_code} {r.reason_phrase}".rstrip()
    if isinstance(e, httpx2.ConnectError):
        return f"connection failed ({e})" if str(e) else "connection failed"
    if isinstance(e, httpx2.TimeoutException):
        return "no answer within the timeout"
    if isinstance(e, MCPError):
        return f"MCP error: {e}"
    if isinstance(e, StreamableHTTPError):
        return f"Streamable HTTP error: {e}"
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _one_line(e: BaseException, token: str | None) -> str:
    """One line a report can show: the first real cause, whitespace folded, the credential redacted."""
    leaves = [x for x in _leaves(e) if not isinstance(x, anyio.get_cancelled_exc_class())] or [e]
    text = " ".join(_describe(leaves[0]).split())
    if token:
        text = text.replace(token, "***")
    return text[:300]

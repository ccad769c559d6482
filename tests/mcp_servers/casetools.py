"""A real MCP server for the tests: the fraud workload's `casetools`, built with the official SDK.

It serves Streamable HTTP on 127.0.0.1 (or a given address: the pod bridge's gateway, for a gate Job's pods) from a
thread, pages `tools/list` two tools at a time so that the probe must follow `nextCursor`, and, when given a token,
refuses any request without that bearer token.
Its tools are chosen to exercise the toolControl comparison:

- lookup_policy     readOnlyHint true                   (declared read: fine)
- create_case_note  readOnlyHint false, destructive false (declared write: fine)
- delete_case       destructiveHint true                (not declared: undeclared authority)
- export_cases      readOnlyHint false                  (declared read: mis-annotated)
- get_case          readOnlyHint true                   (declared read: fine)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server

PAGE_SIZE = 2

TOOLS: list[types.Tool] = [
    types.Tool(
        name="lookup_policy",
        description="Look up the fraud policy that applies to a case.",
        input_schema={"type": "object", "properties": {"case_id": {"type": "string"}}},
        annotations=types.ToolAnnotations(read_only_hint=True),
    ),
    types.Tool(
        name="create_case_note",
        description="Append a note to a case.",
        input_schema={"type": "object", "properties": {"case_id": {"type": "string"}, "note": {"type": "string"}}},
        annotations=types.ToolAnnotations(read_only_hint=False, destructive_hint=False),
    ),
    types.Tool(
        name="delete_case",
        description="Delete a case and its history.",
        input_schema={"type": "object", "properties": {"case_id": {"type": "string"}}},
        annotations=types.ToolAnnotations(read_only_hint=False, destructive_hint=True),
    ),
    types.Tool(
        name="export_cases",
        description="Export cases to an external bucket.",
        input_schema={"type": "object", "properties": {"query": {"type": "string"}}},
        annotations=types.ToolAnnotations(read_only_hint=False),
    ),
    types.Tool(
        name="get_case",
        description="Read one case.",
        input_schema={"type": "object", "properties": {"case_id": {"type": "string"}}},
        annotations=types.ToolAnnotations(read_only_hint=True),
    ),
]

NAME = "casetools"
VERSION = "1.0.0"


async def _list_tools(
    ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    """Pages of PAGE_SIZE; the cursor is the index of the next tool, as an opaque string."""
    start = int(params.cursor) if params and params.cursor else 0
    end = start + PAGE_SIZE
    return types.ListToolsResult(tools=TOOLS[start:end], next_cursor=str(end) if end < len(TOOLS) else None)


async def _call_tool(ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=f"{params.name}: ok")])


def build_server() -> Server[Any]:
    return Server(NAME, version=VERSION, on_list_tools=_list_tools, on_call_tool=_call_tool)


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Running:
    url: str
    authorizations: list[str] = field(default_factory=list)
    """Every Authorization header the server received, so a test can see the token was really sent."""


def _bearer_guard(app: Asgi, token: str | None, seen: list[str]) -> Asgi:
    """Refuse HTTP requests without the expected bearer token, as an authenticated MCP server would."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            auth = dict(scope["headers"]).get(b"authorization", b"").decode()
            seen.append(auth)
            if token is not None and auth != f"Bearer {token}":
                await send({"type": "http.response.start", "status": 401, "headers": [(b"content-length", b"0")]})
                await send({"type": "http.response.body", "body": b""})
                return
        await app(scope, receive, send)

    return guarded


@contextmanager
def serve_casetools(token: str | None = None, host: str = "127.0.0.1") -> Iterator[Running]:
    """Run the server on a free port of `host` (loopback unless told) in a thread for the duration of the block.

    `host` goes to the SDK too: on loopback it refuses any other Host header (DNS rebinding protection), which would
    refuse a client reaching it at another address."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    running = Running(url=f"http://{host}:{port}/mcp")
    app = _bearer_guard(build_server().streamable_http_app(host=host), token, running.authorizations)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("casetools MCP server did not start")
        time.sleep(0.01)
    try:
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


if __name__ == "__main__":
    with serve_casetools() as r:
        print(r.url, flush=True)
        threading.Event().wait()

"""An MCP server deployed as a gated kind (a ToolHive MCPServer) labelled for a workload must be one of the MCP
servers that workload declares (`spec.mcpServers`), so that the tools it serves are the ones the toolControl gate
judged: the declared image when the workload names one, else the declared URL reaching this server.

Pure: the object, its namespace and the workload as the index holds them in, one sentence naming both out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from aigate.policy.kinds import GatedKind, McpServing, at

_DEFAULT_PORTS = {"http": 80, "https": 443}


def mcp_problem(gated: GatedKind, obj: Mapping[str, Any], namespace: str, workload: Mapping[str, Any]) -> str | None:
    """Why this object is not an MCP server the workload declares; None when it is, or when its kind serves no MCP.

    A declared server matches by name (the object's) or by URL (its in-cluster address). Declared with an image, the
    object must run exactly that image; without one, the declared URL must reach the object."""
    serving = gated.mcp
    if serving is None:
        return None
    meta = obj.get("metadata")
    name = str(meta.get("name") or "") if isinstance(meta, Mapping) else ""
    image = at(obj, serving.image)
    image = image if isinstance(image, str) else ""
    port = at(obj, serving.port)
    port = port if isinstance(port, int) and not isinstance(port, bool) else serving.default_port
    host = serving.host.format(name=name, namespace=namespace)
    this = f"{gated.kind} {namespace}/{name} (image {image or 'none'}, served at http://{host}:{port})"
    spec = workload.get("spec")
    raw = spec.get("mcpServers") if isinstance(spec, Mapping) else None
    declared = [s for s in raw if isinstance(s, Mapping)] if isinstance(raw, list) else []
    for server in declared:
        url = str(server.get("url") or "")
        reaches = _reaches(url, serving, name, namespace, port)
        if server.get("name") != name and not reaches:
            continue
        want = server.get("image")
        if isinstance(want, str) and want:
            if want == image:
                return None
            declared_as = f"the image the workload declares for MCP server {server.get('name')}"
            return f"{this} runs image {image or 'none'}, not {want}, {declared_as}"
        if reaches:
            return None
        return (
            f"{this} is not what the workload declares as MCP server {server.get('name')} ({url}): the toolControl "
            f"gate judged the tools at {url}; declare url http://{host}:{port}/mcp or the server's image"
        )
    listed = ", ".join(f"{s.get('name')} ({s.get('url')})" for s in declared) or "none"
    return (
        f"{this} is not one of the MCP servers the workload declares in spec.mcpServers ({listed}): declare it "
        "there, so that the toolControl gate judges its tools"
    )


def _reaches(url: str, serving: McpServing, name: str, namespace: str, port: int) -> bool:
    """Whether `url` names the object's in-cluster address: its full host or a shorter form of it (the Service's
    name, name.namespace, name.namespace.svc), on its port."""
    try:
        parts = urlsplit(url)
        given = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return False
    full = serving.host.format(name=name, namespace=namespace).split(".")
    hosts = {".".join(full[:n]) for n in range(1, len(full) + 1)}
    return (parts.hostname or "").lower() in hosts and given == port

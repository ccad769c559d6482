"""The measuring half of a gate run: every call out to models, the human route and MCP servers, and nothing that
judges or signs. The gate process (`aigate run-gates`) imports this and not `aigate.pipeline`, so it loads neither
the gates, the evidence code nor `cryptography` (see bench/gate_run.py); `aigate check` gets it through the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aigate.api.load import ResolvedWorkload
from aigate.gates.numbers import assumed_timeout_ms
from aigate.measurements import McpServerProbe, Measurements, RbacProbe
from aigate.probes.credentials import credential_value, resolve_credentials
from aigate.probes.rbac import rbac_skipped
from aigate.probes.runner import RunOptions, run_workload

if TYPE_CHECKING:
    from aigate.policy.governance import EffectivePolicy

Progress = Callable[[str], None]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class CheckOptions:
    environ: Mapping[str, str]
    sign_key: Path | None = None
    evidence_out: Path | None = None
    endpoint_overrides: dict[str, str] = field(default_factory=dict)
    concurrency: int | None = None
    progress: Progress | None = None
    now: Callable[[], datetime] = _utcnow
    rbac: RbacProbe | None = None
    """An RBAC probe done by the caller (in a cluster); None means skipped: no cluster here."""
    time_scale: float = 1.0
    """The providers answer this many times as slow as real time (the demo's simulator: 0.2); see RunOptions."""
    canary: bool = False
    """A canary after launch: the cases against each model path only (no fault injection, no MCP servers)."""
    policy: EffectivePolicy | None = None
    """The policy the workload is judged under (`aigate check`: the built-in platform default, and any `--policy`);
    None: the built-in platform default."""


async def measure(resolved: ResolvedWorkload, opts: CheckOptions) -> Measurements:
    """All the I/O of a gate run: models, fault injection, human route, MCP servers."""

    spec = resolved.workload.spec
    credentials = resolve_credentials(spec, opts.environ)
    run_opts = RunOptions(
        concurrency=opts.concurrency,
        default_timeout_ms=assumed_timeout_ms(resolved.workload.spec),
        endpoint_overrides=dict(opts.endpoint_overrides),
        time_scale=opts.time_scale,
        run_faults=not opts.canary,
    )
    m = await run_workload(resolved, credentials, options=run_opts, progress=opts.progress)
    m.mcp = [] if opts.canary else await _probe_mcp(resolved, opts)
    m.rbac = opts.rbac or _rbac_skipped(resolved)
    return m


async def _probe_mcp(resolved: ResolvedWorkload, opts: CheckOptions) -> list[McpServerProbe]:
    if not resolved.workload.spec.mcp_servers:
        return []
    from aigate.probes.mcp import probe_mcp_server  # the MCP SDK costs ~0.3 s of imports; only when there are servers

    out = []
    for i, server in enumerate(resolved.workload.spec.mcp_servers):
        token = credential_value(server.credentials, opts.environ, f"spec.mcpServers[{i}].credentials")
        if opts.progress:
            opts.progress(f"MCP server {server.name}: listing tools")
        out.append(await probe_mcp_server(server, token))
    return out


def _rbac_skipped(resolved: ResolvedWorkload) -> RbacProbe | None:

    spec = resolved.workload.spec
    if spec.service_account_name is None:
        return None
    return rbac_skipped(
        "no cluster: ServiceAccount permissions were not checked (run in a cluster to check them)",
        namespace=resolved.workload.metadata.namespace,
        service_account=spec.service_account_name,
    )

"""The human route probe: a declared escalation queue only counts if it acknowledges a ticket."""

from __future__ import annotations

import time

import httpx

from aigate.measurements import HumanRouteProbe
from aigate.probes.credentials import Scrubber


def probe_ticket(workload: str, namespace: str) -> dict[str, object]:
    """A small, clearly marked ticket a queue can acknowledge and discard."""
    return {
        "source": "aigate",
        "probe": True,
        "workload": workload,
        "namespace": namespace,
        "summary": "aigate gate-run probe of the fallback human route: acknowledge and discard",
    }


async def probe_human_route(
    url: str,
    *,
    workload: str,
    namespace: str = "default",
    token: str | None = None,
    timeout_s: float = 10.0,
    scrubber: Scrubber | None = None,
) -> HumanRouteProbe:
    """POST the ticket once; acknowledged means a 2xx answer. Never raises for a network failure."""
    scrub = scrubber or Scrubber([token] if token else [])
    headers = {"authorization": f"Bearer {token}"} if token else {}
    start = time.perf_counter()
    try:
        async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client:
            resp = await client.post(url, json=probe_ticket(workload, namespace), headers=headers)
    except httpx.TimeoutException:
        latency = (time.perf_counter() - start) * 1000
        return HumanRouteProbe(
            url=url, acknowledged=False, latency_ms=latency, detail=f"no answer within {timeout_s * 1000:.0f} ms"
        )
    except httpx.HTTPError as e:
        latency = (time.perf_counter() - start) * 1000
        detail = scrub(f"{type(e).__name__}: {e}")[:200]
        return HumanRouteProbe(url=url, acknowledged=False, latency_ms=latency, detail=detail)
    latency = (time.perf_counter() - start) * 1000
    ok = 200 <= resp.status_code < 300
    return HumanRouteProbe(
        url=url,
        acknowledged=ok,
        status=resp.status_code,
        latency_ms=latency,
        detail=f"HTTP {resp.status_code}" + ("" if ok else " (not a 2xx acknowledgement)"),
    )

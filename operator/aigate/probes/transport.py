"""The HTTP transport under every provider client: verified TLS, pooled connections, sharded pools."""

from __future__ import annotations

import functools
import itertools
import math
import ssl

import httpx

SHARD_CONNECTIONS = 8
"""Connections per pool shard: httpcore's pool does work linear in its size on every request, so one pool of
200 connections costs several ms of CPU per request; many small pools keep the client's overhead flat."""


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verified TLS context for every pool: loading the CA bundle costs ~15 ms each time."""
    return httpx.create_ssl_context()


class ShardedTransport(httpx.AsyncBaseTransport):
    """Round-robin over small connection pools, so that the client's own overhead stays out of the latency."""

    def __init__(self, max_connections: int, *, per_shard: int = SHARD_CONNECTIONS) -> None:
        per = max(1, min(per_shard, max_connections))
        n = max(1, math.ceil(max_connections / per))
        limits = httpx.Limits(max_connections=per, max_keepalive_connections=per)
        self._shards = [httpx.AsyncHTTPTransport(limits=limits, verify=_ssl_context()) for _ in range(n)]
        self._next = itertools.cycle(self._shards).__next__

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._next().handle_async_request(request)

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()

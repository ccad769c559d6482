"""kopf's real admission path (its `serve_admission_request` behind its aiohttp webhook server) in-process, without
an operator or a cluster: what the HTTP tests and bench/admission.py drive over TLS on loopback.

The serving certificate comes from hack/localcluster/pki.py (the control plane's CA code), not from kopf's
self-signed generator, which needs the optional certbuilder package."""

from __future__ import annotations

import functools
import inspect
import ssl
import sys
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kopf
from kopf._cogs.structs import ephemera, references, reviews
from kopf._core.engines import admission
from kopf._core.reactor import inventory

HACK = Path(__file__).resolve().parents[1] / "hack"
if str(HACK) not in sys.path:
    sys.path.insert(0, str(HACK))

from localcluster.pki import CA  # noqa: E402

DEPLOYMENTS = references.Resource(group="apps", version="v1", plural="deployments", kind="Deployment", namespaced=True)


def webhook_fn(registry: kopf.OperatorRegistry, resources: Iterable[references.Resource]) -> reviews.WebhookFn:
    """kopf's own request handler, bound as `kopf.run` binds it, for the given handlers and resources."""
    insights = references.Insights()
    insights.webhook_resources.update(resources)
    fn = functools.partial(
        admission.serve_admission_request,
        settings=kopf.OperatorSettings(),
        registry=registry,
        insights=insights,
        memories=inventory.ResourceMemories(),
        memobase=ephemera.AnyMemo(kopf.Memo()),
        indices={},
    )
    return fn


@dataclass(frozen=True)
class Certs:
    ca_pem: bytes
    cert: Path
    key: Path
    ca_file: Path

    def client_context(self) -> ssl.SSLContext:
        """What the API server does with the configuration's caBundle: trust this CA only, check the name."""
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode())
        return ctx


def serving_certs(directory: Path) -> Certs:
    ca = CA.create(directory, "aigate-webhook-ca")
    pair = ca.issue(directory, "webhook", "127.0.0.1", dns_names=("localhost",), ips=("127.0.0.1",), server=True)
    return Certs(ca.pair.cert.read_bytes(), pair.cert, pair.key, ca.pair.cert)


@asynccontextmanager
async def serving(server: kopf.WebhookServer, fn: reviews.WebhookFn) -> AsyncIterator[dict[str, Any]]:
    """Run `server` on the current loop; yields the client config (url, caBundle) it reports."""
    configs = server(fn)
    config = await configs.__anext__()
    try:
        yield dict(config)
    finally:
        assert inspect.isasyncgen(configs)
        await configs.aclose()

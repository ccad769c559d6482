"""`aigate webhook`: the ASGI front door of the three webhooks, served by Granian (embedded in this event loop) over
TLS with HTTP/2 offered by ALPN (and HTTP/1.1), certificates re-read when their files change, and /healthz,
/readyz, /metrics on a plain HTTP port.

Why a process of its own (bench/README.md, "Webhook server"): under kopf one event loop served TLS, HTTP/1.1,
kopf's admission machinery and reconciliation, and the API server reconnected for want of HTTP/2. Here the loop
does nothing but answer reviews from an index that watch threads keep.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import ssl
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from aigate.api.errors import UsageError
from aigate.evidence.errors import EvidenceInputError
from aigate.evidence.keys import load_private_key, load_public_key
from aigate.kube.client import Kube, load_api_client
from aigate.kube.config import OperatorConfig, from_env
from aigate.kube.metrics import Metrics
from aigate.kube.names import WEBHOOK_IDS
from aigate.webhook.admission import VerifyCache
from aigate.webhook.configurations import TIMEOUT_SECONDS
from aigate.webhook.envelope import (
    MAX_BODY_BYTES,
    READ_TIMEOUT_SECONDS,
    BadReview,
    parse_review,
    refusal,
    review_problem,
)
from aigate.webhook.index import DEPLOYMENT_PATH, Index, Watcher, api_fetcher, watches
from aigate.webhook.review import Reviewer

log = logging.getLogger("aigate.webhook")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CERT_CHECK_SECONDS = 2.0
BIG_BODY = 256 * 1024


class HttpMetrics:
    """Reviews by webhook and by the HTTP version the caller negotiated ("2" when the API server multiplexes)."""

    def __init__(self, metrics: Metrics) -> None:
        self.requests = Counter(
            "aigate_admission_http_requests_total",
            "Admission reviews received, by webhook and negotiated HTTP version",
            ["webhook", "http_version"],
            registry=metrics.registry,
        )


class App:
    """The ASGI application: the webhook paths over TLS, the probes and /metrics over plain HTTP."""

    def __init__(
        self,
        reviewer: Reviewer,
        metrics: Metrics,
        *,
        ready: Callable[[], bool],
        max_body_bytes: int = MAX_BODY_BYTES,
        read_timeout: float = READ_TIMEOUT_SECONDS,
    ) -> None:
        self.reviewer = reviewer
        self.metrics = metrics
        self.http = HttpMetrics(metrics)
        self.ready = ready
        self.webhook_ids = frozenset(WEBHOOK_IDS)
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = str(scope.get("path") or "/")
        if scope.get("scheme") != "https":
            await self._probe(path, send)
            return
        webhook = path.lstrip("/")
        if webhook not in self.webhook_ids or scope.get("method") != "POST":
            await _json(send, 404, {"error": f"no webhook at /{webhook}"})
            return
        self.http.requests.labels(webhook, str(scope.get("http_version") or "")).inc()
        try:
            body = await _read_body(scope, receive, self.max_body_bytes, self.read_timeout)
            # a review is ~2 KB; one carrying a large object (an UPDATE with a big ConfigMap-sized spec) is parsed
            # in a worker thread, so that it does not hold every other review
            review = parse_review(body) if len(body) < BIG_BODY else await asyncio.to_thread(parse_review, body)
        except BadReview as e:
            await _json(send, e.status, {"error": str(e)})
            return
        problem = review_problem(review)
        if problem is not None:
            await _json(send, 200, refusal(review, problem, 400))
            return
        try:
            answer = await self.reviewer.review(webhook, review)
        except Exception:
            log.exception("admission request %s failed", review["request"]["uid"])
            answer = refusal(review, "aigate admission webhook internal error", 500)
        response = answer.get("response") or {}
        if response.get("allowed") is False:  # the product working, not an error: INFO; an admission is not logged
            log.info("denied by %s: %s", webhook, (response.get("status") or {}).get("message"))
        await _json(send, 200, answer)

    async def _probe(self, path: str, send: Send) -> None:
        if path == "/healthz":
            await _text(send, 200, "ok\n")
        elif path == "/readyz":
            await (_text(send, 200, "ready\n") if self.ready() else _text(send, 503, "indexing\n"))
        elif path == "/metrics":
            body = generate_latest(self.metrics.registry)
            await _respond(send, 200, body, CONTENT_TYPE_LATEST)
        else:
            await _text(send, 404, "not found\n")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(scope: Scope, receive: Receive, limit: int, timeout: float) -> bytes:
    """The body, at most `limit` bytes, within `timeout` seconds (a client that stalls mid-body is cut off)."""
    for name, value in scope.get("headers") or []:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise BadReview(f"request body of {int(value)} bytes is above the {limit}-byte limit", 413)
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise BadReview("client went away", 400)
                body += message.get("body") or b""
                if len(body) > limit:
                    raise BadReview(f"request body is above the {limit}-byte limit", 413)
                if not message.get("more_body"):
                    break
    except TimeoutError:
        raise BadReview(f"request body not received within {timeout:g}s", 408) from None
    return bytes(body)


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, doc: Any) -> None:
    await _respond(send, status, json.dumps(doc, separators=(",", ":")).encode(), "application/json")


async def _text(send: Send, status: int, text: str) -> None:
    await _respond(send, status, text.encode(), "text/plain; charset=utf-8")


# ---- TLS ----------------------------------------------------------------------------------------------------------


class CertificateFiles:
    """The serving certificate's files, compared by (inode, mtime, size) through their symlinks, so that a
    kubelet's atomic `..data` swap and an in-place rewrite are both seen."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert, self.key = cert, key
        self.loaded: tuple[Any, ...] | None = None
        self.reloads = 0

    def stamp(self) -> tuple[Any, ...] | None:
        try:
            a, b = os.stat(self.cert), os.stat(self.key)
        except OSError:
            return None
        return (a.st_ino, a.st_mtime_ns, a.st_size, b.st_ino, b.st_mtime_ns, b.st_size)

    def changed(self) -> bool:
        """Whether a complete pair (it loads together) differs from the one served."""
        stamp = self.stamp()
        if stamp is None or stamp == self.loaded:
            return False
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as e:  # half-written: the next check sees the finished pair
            log.warning("webhook certificate %s not loaded: %s", self.cert, e)
            return False
        return True

    def served(self) -> None:
        if self.loaded is not None:
            self.reloads += 1
        self.loaded = self.stamp()


# ---- the process --------------------------------------------------------------------------------------------------


def public_key_of(config: OperatorConfig) -> Any:
    """The key evidence is verified with: AIGATE_PUBLIC_KEY, or derived from the signing key when only that is
    mounted (the local harness); in a cluster the webhook mounts the public key only."""
    if config.public_key is not None:
        return load_public_key(config.public_key)
    return load_private_key(config.signing_key).public_key()


async def _wait_for_public_key(config: OperatorConfig) -> Any:
    """In a cluster the key comes from the ConfigMap the operator publishes at start-up, mounted as an optional
    volume: it may not be there yet. Until it is, nothing can be verified, so nothing is served (the startup probe
    allows for it)."""
    said = False
    while True:
        try:
            return public_key_of(config)
        except EvidenceInputError as e:
            if not said:
                log.info("waiting for the public key: %s", e)
                said = True
        await asyncio.sleep(1.0)


def tls_server(app: Any, *, address: str, port: int, files: CertificateFiles) -> Any:
    """Granian, embedded in this process's event loop: TLS and HTTP/2 (ALPN h2, http/1.1) in Rust, the App in
    Python on this loop, beside the index (bench/README.md, "Webhook server", for why Granian)."""
    from granian.constants import HTTPModes, Interfaces, SSLProtocols
    from granian.server.embed import Server

    server = Server(
        app,
        address=address,
        port=port,
        interface=Interfaces.ASGINL,
        http=HTTPModes.auto,
        websockets=False,
        log_enabled=False,
        ssl_cert=files.cert,
        ssl_key=files.key,
        ssl_protocol_min=SSLProtocols.tls12,
    )
    # a certificate reload starts the new worker, then (this much later) tells the old one to stop accepting and to
    # finish its connections (HTTP/2 GOAWAY: the API server reconnects, to the new one), within the kill timeout
    server.respawn_interval = 0.5
    server.workers_kill_timeout = 30
    return server


def _plain_server(app: App, config: OperatorConfig) -> Any:
    from granian.constants import HTTPModes, Interfaces
    from granian.server.embed import Server

    return Server(
        app,
        address=config.metrics_addr,
        port=config.metrics_port,
        interface=Interfaces.ASGINL,
        http=HTTPModes.http1,
        websockets=False,
        log_enabled=False,
    )


async def follow_certificate(server: Any, files: CertificateFiles, interval: float = CERT_CHECK_SECONDS) -> None:
    """A new pair on disk: Granian respawns its worker on the same socket with the new files (the old one finishes
    the connections it has), so no request is refused for the swap."""
    from granian.constants import SSLProtocols

    while True:
        await asyncio.sleep(interval)
        if await asyncio.to_thread(files.changed):
            server.build_ssl_context(files.cert, files.key, None, SSLProtocols.tls12, None, [], False)
            files.served()
            server.reload()
            log.info("webhook certificate reloaded from %s", files.cert)


async def serve(config: OperatorConfig, *, stop: asyncio.Event | None = None) -> None:
    if config.webhook_cert is None or config.webhook_key is None:
        raise ValueError("AIGATE_WEBHOOK_CERT and AIGATE_WEBHOOK_KEY: the webhook serves TLS only")
    api, how = load_api_client()
    log.info("Kubernetes API: %s", how)
    public_key = await _wait_for_public_key(config)
    metrics = Metrics()
    cache = VerifyCache()
    metrics.watch_verify_cache(cache)
    index = Index(
        operator_namespace=config.namespace,
        public_key=public_key,
        verify_cache=cache,
        platform_default=config.platform_default,
        fetch_configmap=api_fetcher(api),
        # well inside the API server's timeout for the webhook, so that a slow read is answered with a 503 to retry
        fetch_deployment=api_fetcher(api, DEPLOYMENT_PATH, timeout=TIMEOUT_SECONDS / 2),
    )
    watcher = Watcher(api, watches(index, config.watch_namespaces))
    files = CertificateFiles(config.webhook_cert, config.webhook_key)
    reviewer = Reviewer(
        index=index,
        public_key=index.public_key,
        metrics=metrics,
        ready=lambda: watcher.ready,
        acceptor_groups=config.acceptor_groups,
        watch_namespaces=frozenset(config.watch_namespaces),
        may=Kube(api).may,
    )
    app = App(reviewer, metrics, ready=lambda: watcher.ready and files.loaded is not None)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    index.start_warmer()
    watcher.start()
    plain = _plain_server(app, config)
    tasks = [asyncio.create_task(plain.serve())]
    try:
        while not files.changed():  # the operator's rotator may be writing the first pair right now
            if stop.is_set():
                return
            await asyncio.sleep(0.2)
        tls = tls_server(app, address=config.webhook_addr, port=config.webhook_port, files=files)
        files.served()
        tasks += [asyncio.create_task(tls.serve()), asyncio.create_task(follow_certificate(tls, files))]
        log.info(
            "webhook serving on %s:%s (TLS: HTTP/2, HTTP/1.1); probes and metrics on %s:%s",
            config.webhook_addr,
            config.webhook_port,
            config.metrics_addr,
            config.metrics_port,
        )
        await stop.wait()
        tls.stop()
    finally:
        plain.stop()
        watcher.stop()
        await asyncio.wait(tasks, timeout=10)
        for task in tasks:
            task.cancel()


def settings_from_env(env: Mapping[str, str] | None = None) -> OperatorConfig:
    """The operator's settings table, read for the webhook: it verifies with AIGATE_PUBLIC_KEY and never reads the
    signing key, so that variable (required by the operator) may be unset here."""
    given = dict(os.environ if env is None else env)
    if not given.get("AIGATE_SIGNING_KEY", "").strip():
        if not given.get("AIGATE_PUBLIC_KEY", "").strip():
            raise UsageError(
                "AIGATE_PUBLIC_KEY: not set (the key `aigate webhook` verifies evidence with; or AIGATE_SIGNING_KEY, "
                "to derive it)"
            )
        given["AIGATE_SIGNING_KEY"] = os.devnull  # never read: public_key_of takes AIGATE_PUBLIC_KEY
    return from_env(given)


def run_webhook(config: OperatorConfig) -> int:
    # the operator's (kopf's) line format, so that both logs read alike
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(name)-20.20s [%(levelname)-8s] %(message)s")
    logging.getLogger("granian").setLevel(logging.WARNING)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))
    return 0

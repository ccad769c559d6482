"""The simulator's HTTP server: OpenAI Chat Completions and Responses (and their Azure paths) and Anthropic
Messages over real HTTP, streaming included, with the latency, errors, hangs, resets and broken bodies the
profile asks for.

The request path stays lean for the load benchmark: no per-request logging, one JSON parse, one dump, and
`asyncio.sleep` for latency. API keys are checked for presence only and never stored or logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aigate.simulator import wire
from aigate.simulator.engine import ModelRuntime, Plan, Simulator
from aigate.simulator.profile import ProfileError, SimProfile, parse_profile
from aigate.simulator.wire import BadRequest, ChatRequest, Wire

JSON = "application/json"
SSE = "text/event-stream; charset=utf-8"
_SLEEP_MIN_S = 0.001
"""Stream events due within this of each other go out in one write."""

_OPENAI_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY)."
)
_AZURE_NO_KEY = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for "
    "an active subscription and use a correct regional API endpoint for your resource."
)
_AZURE_NO_DEPLOYMENT = (
    "The API deployment for this resource does not exist. If you created the deployment within the last 5 "
    "minutes, please wait a moment and try again."
)


class ServerTiming:
    """`Server-Timing: sim;dur=<ms>` on every answer: the simulator's own time from the request reaching the app
    to the response headers (for a stream: its first byte), so a client can tell its share from the server's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                dur = f"sim;dur={(time.perf_counter() - start) * 1000:.3f}".encode()
                message = {**message, "headers": [*message.get("headers", ()), (b"server-timing", dur)]}
            await send(message)

        await self.app(scope, receive, timed)


def _bearer(headers: Any) -> bool:
    auth = str(headers.get("authorization", ""))
    return auth.startswith("Bearer ") and bool(auth[7:].strip())


def _transport(receive: Receive) -> Any:
    """The connection's asyncio transport, reached through uvicorn's request cycle (None elsewhere)."""
    return getattr(getattr(receive, "__self__", None), "transport", None)


def _abort(transport: Any) -> None:
    """Drop the connection with a TCP RST (SO_LINGER 0), as a crashed proxy or load balancer would."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class _Reset(Response):
    """No response at all: the connection is reset."""

    def __init__(self) -> None:
        super().__init__()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = _transport(receive)
        if transport is None:  # not uvicorn: the closest we can do is a response cut after its headers
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
            raise ConnectionResetError("simulated reset")
        _abort(transport)
        for _ in range(3):  # let connection_lost run, so the server does not answer for us
            await asyncio.sleep(0)


class _Hang(Response):
    """No response until the client gives up (or the simulator stops)."""

    def __init__(self, hanging: set[Any]) -> None:
        super().__init__()
        self.hanging = hanging

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = _transport(receive)
        if transport is not None:
            self.hanging.add(transport)
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        finally:
            self.hanging.discard(transport)


class _Events(Response):
    """A server-sent event stream: `head` at once, the first of `body` at the time to first token, the rest
    of `body` evenly spread after it, and `tail` at the total latency. `cut` ends the stream early with a
    broken event (the malformed case): a complete event whose JSON stops half way. `stall` sends the first half
    of `body` and then nothing until the client disconnects."""

    def __init__(
        self, stream: wire.Stream, plan: Plan, start: float, headers: dict[str, str], cut: bool, stall: bool = False
    ) -> None:
        super().__init__()
        self.raw_headers = [
            (b"content-type", SSE.encode()),
            (b"cache-control", b"no-cache"),
            *((k.encode(), v.encode()) for k, v in headers.items()),
        ]  # no content-length: the body is streamed
        self.stream, self.plan, self.start, self.cut, self.stall = stream, plan, start, cut, stall

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        s, plan = self.stream, self.plan
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        body, tail = s.body, s.tail
        if self.stall:  # half the answer, then nothing: no tail, no end of stream
            body, tail = body[: max(1, len(body) // 2)], []
        if self.cut:
            broken = (body[1:2] or tail[:1])[0]
            # the broken event is still a complete SSE event, so that every client's parser reads it
            body, tail = [*body[:1], wire.truncated(broken).rstrip(b"\n") + b"\n\n"], []
        first = self.start + plan.ttft_s
        step = (plan.latency_s - plan.ttft_s) / len(body) if body else 0.0
        due = [first + i * step for i in range(len(body))]
        if tail:
            due.append(self.start + plan.latency_s)
            body = [*body, b"".join(tail)]
        loop = asyncio.get_running_loop()
        pending = b"".join(s.head)
        for event, at in zip(body, due, strict=True):
            wait = at - loop.time()
            if wait > _SLEEP_MIN_S:
                if pending:
                    await send({"type": "http.response.body", "body": pending, "more_body": True})
                    pending = b""
                await asyncio.sleep(wait)
            pending += event
        if self.stall:
            await send({"type": "http.response.body", "body": pending, "more_body": True})
            while (await receive())["type"] != "http.disconnect":
                pass  # stalled until the client gives up
            return
        await send({"type": "http.response.body", "body": pending, "more_body": False})


def build_app(profile: SimProfile) -> Starlette:
    """The simulator as an ASGI app; its `Simulator` (counters, reset) is at `app.state.simulator`."""
    sim = Simulator(profile)
    hanging: set[Any] = set()

    def error(
        w: Wire,
        status: int,
        message: str | None = None,
        *,
        azure: bool = False,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        h = {"request-id" if w == "anthropic" else "x-request-id": wire.new_id("req_"), **(headers or {})}
        if w == "anthropic":
            body = wire.anthropic_error(status, message)
        else:
            body = wire.openai_error(status, message, code=code, azure=azure)
        return Response(body, status, headers=h, media_type=JSON)

    async def respond(w: Wire, req: ChatRequest, m: ModelRuntime, azure: bool, responses: bool = False) -> Response:
        start = asyncio.get_running_loop().time()
        sim.apis["responses" if responses else "messages" if w == "anthropic" else "chatCompletions"] += 1
        plan = m.plan(req.stream)
        if plan.fate == "error":
            headers: dict[str, str] = {}
            if plan.status == 429:
                secs = m.spec.retry_after_seconds
                headers["retry-after"] = str(math.ceil(secs))  # whole seconds, as the header is defined
                if w == "openai":
                    headers["retry-after-ms"] = str(round(secs * 1000))
            return error(w, plan.status, azure=azure, headers=headers)
        if plan.fate == "reset":
            return _Reset()
        if plan.fate == "hang" or (plan.fate == "stall" and not req.stream):
            return _Hang(hanging)
        answer = m.answer(req)
        headers = {"request-id" if w == "anthropic" else "x-request-id": wire.new_id("req_")}
        chunk = m.spec.stream_chunk_chars
        if req.stream:
            if responses:
                stream = wire.responses_events(answer, chunk_chars=chunk, echo=req.echo)
            elif w == "anthropic":
                stream = wire.anthropic_events(answer, chunk_chars=chunk)
            else:
                stream = wire.openai_events(answer, include_usage=req.include_usage, chunk_chars=chunk, azure=azure)
            return _Events(stream, plan, start, headers, cut=plan.fate == "malformed", stall=plan.fate == "stall")
        if responses:
            body = wire.responses_json(answer, req.echo)
        elif w == "anthropic":
            body = wire.anthropic_json(answer)
        else:
            body = wire.openai_json(answer, azure=azure)
        if plan.fate == "malformed":
            body = wire.truncated(body)
        delay = start + plan.latency_s - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)
        return Response(body, 200, headers=headers, media_type=JSON)

    async def _body(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except ValueError:
            raise BadRequest("We could not parse the JSON body of your request.") from None

    async def openai_api(request: Request, parse: Callable[[Any], ChatRequest], responses: bool) -> Response:
        """Chat Completions or Responses at api.openai.com: a bearer key, the body, a known model."""
        if not _bearer(request.headers):
            sim.other["unauthorized"] += 1
            return error("openai", 401, _OPENAI_NO_KEY)
        try:
            req = parse(await _body(request))
        except BadRequest as e:
            sim.other["badRequest"] += 1
            return error("openai", 400, str(e))
        m = sim.find(req.model, "openai")
        if m is None:
            sim.other["unknownModel"] += 1
            msg = f"The model `{req.model}` does not exist or you do not have access to it."
            return error("openai", 404, msg, code="model_not_found")
        return await respond("openai", req, m, azure=False, responses=responses)

    async def openai_chat(request: Request) -> Response:
        return await openai_api(request, wire.parse_openai, responses=False)

    async def openai_responses(request: Request) -> Response:
        return await openai_api(request, wire.parse_responses, responses=True)

    async def azure_responses(request: Request) -> Response:
        """Azure's Responses API: `/openai/v1/responses` (the v1 API, no api-version) or the dated
        `/openai/responses?api-version=...`; the deployment is the body's `model`."""
        if not request.headers.get("api-key", "").strip() and not _bearer(request.headers):
            sim.other["unauthorized"] += 1
            return error("openai", 401, _AZURE_NO_KEY, azure=True)
        if request.url.path == "/openai/responses" and not request.query_params.get("api-version"):
            sim.other["badRequest"] += 1
            return error("openai", 404, "Resource not found", azure=True)
        try:
            req = wire.parse_responses(await _body(request))
        except BadRequest as e:
            sim.other["badRequest"] += 1
            return error("openai", 400, str(e), azure=True, code="BadRequest")
        m = sim.find(req.model, "openai")
        if m is None:
            sim.other["unknownModel"] += 1
            return error("openai", 404, _AZURE_NO_DEPLOYMENT, azure=True, code="DeploymentNotFound")
        return await respond("openai", req, m, azure=True, responses=True)

    async def azure_chat(request: Request) -> Response:
        headers = request.headers
        auth = headers.get("authorization", "")
        if not headers.get("api-key", "").strip() and not (auth.startswith("Bearer ") and auth[7:].strip()):
            sim.other["unauthorized"] += 1
            return error("openai", 401, _AZURE_NO_KEY, azure=True)
        if not request.query_params.get("api-version"):
            sim.other["badRequest"] += 1
            return error("openai", 404, "Resource not found", azure=True)
        deployment = request.path_params["deployment"]
        try:
            req = wire.parse_openai(await _body(request), deployment=deployment)
        except BadRequest as e:
            sim.other["badRequest"] += 1
            return error("openai", 400, str(e), azure=True, code="BadRequest")
        m = sim.find(deployment, "openai")
        if m is None:
            sim.other["unknownModel"] += 1
            return error("openai", 404, _AZURE_NO_DEPLOYMENT, azure=True, code="DeploymentNotFound")
        return await respond("openai", req, m, azure=True)

    async def anthropic_messages(request: Request) -> Response:
        headers = request.headers
        if not headers.get("x-api-key", "").strip() and not _bearer(headers):
            sim.other["unauthorized"] += 1
            return error("anthropic", 401, "x-api-key or Authorization: Bearer header is required")
        if not headers.get("anthropic-version"):  # any version: each SDK release sends its own
            sim.other["badRequest"] += 1
            return error("anthropic", 400, "anthropic-version: header is required")
        try:
            req = wire.parse_anthropic(await _body(request))
        except BadRequest as e:
            sim.other["badRequest"] += 1
            return error("anthropic", 400, str(e))
        m = sim.find(req.model, "anthropic")
        if m is None:
            sim.other["unknownModel"] += 1
            return error("anthropic", 404, f"model: {req.model}")
        return await respond("anthropic", req, m, azure=False)

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    async def stats(request: Request) -> Response:
        return Response(json.dumps(sim.stats()), media_type=JSON)

    async def reset(request: Request) -> Response:
        sim.reset()
        return Response(json.dumps(sim.stats()), media_type=JSON)

    async def load(request: Request) -> Response:
        """PUT /_sim/profile: a new profile (YAML or JSON) served from the next request on. A bad one changes
        nothing and is a 400 whose message names the field."""
        try:
            doc = yaml.safe_load(await request.body())
        except yaml.YAMLError as e:
            return _admin_error(f"profile: not valid YAML: {' '.join(str(e).split())}")
        try:
            new = parse_profile(doc)
        except ProfileError as e:
            return _admin_error(str(e))
        sim.reload(new)
        return Response(json.dumps(sim.stats()), media_type=JSON)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        msg = f"Invalid URL ({request.method} {request.url.path})"
        return Response(wire.openai_error(status, msg, code=None), status, media_type=JSON)

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", openai_chat, methods=["POST"]),
            Route("/v1/responses", openai_responses, methods=["POST"]),
            Route("/openai/deployments/{deployment}/chat/completions", azure_chat, methods=["POST"]),
            Route("/openai/v1/responses", azure_responses, methods=["POST"]),
            Route("/openai/responses", azure_responses, methods=["POST"]),
            Route("/v1/messages", anthropic_messages, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/_sim/stats", stats, methods=["GET"]),
            Route("/_sim/reset", reset, methods=["POST"]),
            Route("/_sim/profile", load, methods=["PUT"]),
        ],
        exception_handlers={404: not_found, 405: not_found},
        middleware=[Middleware(ServerTiming)],
    )
    app.state.simulator = sim
    app.state.hanging = hanging
    return app


def _admin_error(message: str) -> Response:
    return Response(json.dumps({"error": message}), 400, media_type=JSON)


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket, bound here so that port 0 resolves and a taken port is a clear OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP proto: asyncio then sets TCP_NODELAY
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def server_config(app: Starlette) -> uvicorn.Config:
    """Quiet and lean: no access log, no lifespan, warnings only; hanging requests do not hold a stop. The stdlib
    event loop, not uvloop (which uvicorn picks when it is installed, as it is for `aigate webhook`): libuv starts
    a timer from the loop's cached clock, so a 2 ms latency could end 0.6 ms early, and the simulator's latencies
    are what aigate's measurements are checked against."""
    return uvicorn.Config(
        app,
        loop="asyncio",
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        backlog=4096,
    )


def _release(hanging: set[Any]) -> None:
    for t in list(hanging):
        _abort(t)
    hanging.clear()


class SimulatorServer:
    """The simulator on a loopback port in a background thread, for tests and the in-process demo."""

    def __init__(self, profile: SimProfile, host: str = "127.0.0.1", port: int = 0) -> None:
        self.profile = profile
        self.host = host
        self.port = port
        self.app = build_app(profile)
        self.simulator: Simulator = self.app.state.simulator
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return url_of(self.host, self.port)

    def start(self) -> SimulatorServer:
        """Bind, serve in a daemon thread, and return once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the simulator is already running")
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = server_config(self.app)
        self._server = uvicorn.Server(config)
        factory = getattr(config, "get_loop_factory", lambda: None)()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            await self._server.serve(sockets=[sock])

        def run() -> None:
            try:
                with asyncio.Runner(loop_factory=factory) as runner:
                    runner.run(main())
            except BaseException as e:  # surfaced by start()
                self._error = e
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name=f"aigate-simulator-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the simulator did not start: {self._error!r}")
            time.sleep(0.002)
        return self

    def stop(self) -> None:
        """Release hanging requests, shut down, and wait for the thread."""
        if self._thread is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(_release, self.app.state.hanging)
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(timeout=10)
        self._thread = None

    def stats(self) -> dict[str, Any]:
        """The same document as GET /_sim/stats."""
        return self.simulator.stats()

    def reset(self) -> None:
        """Zero the counters and reseed (call between tests, with no request in flight)."""
        if self._loop is not None and self._thread is not None:
            asyncio.run_coroutine_threadsafe(_call(self.simulator.reset), self._loop).result(timeout=5)
        else:
            self.simulator.reset()

    def reload(self, profile: SimProfile) -> None:
        """Serve `profile` from the next request on (what PUT /_sim/profile does), on the server's own loop so no
        request sees half of it."""
        self.profile = profile
        if self._loop is not None and self._thread is not None:
            asyncio.run_coroutine_threadsafe(_call(lambda: self.simulator.reload(profile)), self._loop).result(5)
        else:
            self.simulator.reload(profile)

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _call(fn: Callable[[], None]) -> None:
    fn()

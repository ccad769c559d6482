"""Shared helpers of the probe and runner tests (no tests here): workloads, simulator profiles and the suite they
answer, and two tiny loopback servers the simulator does not play: a human-route queue and a provider that echoes
the API key back in its error, as real providers do with a wrong key."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aigate.api.load import ResolvedWorkload, resolve
from aigate.api.models import AIWorkload

CANARY = "sk-canary-7f3a9c1e5b2d4e6f8a0b"
"""An API key that must never appear in anything aigate writes."""
ANSWER = '{"risk": "low", "summary": "nothing unusual"}'
SCHEMA = {"type": "object", "required": ["risk"], "properties": {"risk": {"enum": ["low", "high"]}}}
CASES = [
    {
        "name": "summarize",
        "messages": [{"role": "user", "content": "summarize case 1"}],
        "expect": {"jsonSchema": SCHEMA},
    },
    {"name": "risk", "messages": [{"role": "user", "content": "rate case 2"}], "expect": {"contains": ["low"]}},
]


def workload(
    models: list[dict[str, Any]],
    *,
    cases: list[dict[str, Any]] | None = None,
    repeats: int = 1,
    slo: dict[str, Any] | None = None,
    fallback: dict[str, Any] | None = None,
    budget: dict[str, Any] | None = None,
    traffic: dict[str, Any] | None = None,
    tools: list[dict[str, Any]] | None = None,
    prompt: str = "You are a fraud analyst. Answer in JSON.",
) -> ResolvedWorkload:
    doc: dict[str, Any] = {
        "apiVersion": "aigate.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "probe-test", "namespace": "fraud"},
        "spec": {
            "owner": "team",
            "models": copy.deepcopy(models),
            "traffic": traffic or {"requestsPerDay": 1000, "peakRequestsPerSecond": 1000},
            "budget": budget or {"monthlyUSD": 1000},
            "slo": slo or {"p95LatencyMs": 500, "timeoutMs": 400},
            "fallback": fallback or {},
            "tools": tools or [],
            "prompts": [{"inline": prompt}],
            "suite": {
                "repeats": repeats,
                "cases": cases or [{"name": "hello", "messages": [{"role": "user", "content": "say hello"}]}],
            },
        },
    }
    return resolve(AIWorkload.model_validate(doc), lambda ref: "")


def model(name: str, provider: str, model_id: str, url: str, *, role: str = "primary", **extra: Any) -> dict[str, Any]:
    return {"name": name, "role": role, "provider": provider, "model": model_id, "endpoint": url, **extra}


class _Thread:
    """A uvicorn server on a free loopback port in a daemon thread."""

    def __init__(self, app: Starlette) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("loopback server did not start")
            time.sleep(0.005)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def queue_server(status: int = 202) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A human-route queue: records each ticket, answers `status`."""
    tickets: list[dict[str, Any]] = []

    async def take(request: Request) -> Response:
        tickets.append(await request.json())
        return JSONResponse({"ticket": len(tickets)}, status_code=status)

    with _Thread(Starlette(routes=[Route("/queue", take, methods=["POST"])])) as url:
        yield f"{url}/queue", tickets


@contextmanager
def key_echo_server() -> Iterator[str]:
    """A provider that refuses the key and quotes it back, in both wire formats."""

    def key(request: Request) -> str:
        auth = request.headers.get("authorization", "")
        return request.headers.get("x-api-key") or request.headers.get("api-key") or auth.removeprefix("Bearer ")

    async def openai(request: Request) -> Response:
        msg = f"Incorrect API key provided: {key(request)}. You can find your API key at ..."
        return JSONResponse({"error": {"message": msg, "type": "invalid_request_error"}}, status_code=401)

    async def anthropic(request: Request) -> Response:
        msg = f"invalid x-api-key {key(request)}"
        return JSONResponse({"type": "error", "error": {"type": "authentication_error", "message": msg}}, 401)

    routes = [
        Route("/v1/chat/completions", openai, methods=["POST"]),
        Route("/v1/messages", anthropic, methods=["POST"]),
        Route("/openai/deployments/{deployment}/chat/completions", openai, methods=["POST"]),
    ]
    with _Thread(Starlette(routes=routes)) as url:
        yield url


@contextmanager
def simulator(models: dict[str, dict[str, Any]], **top: Any) -> Iterator[str]:
    """The project's LLM simulator on loopback, one profile per model id; yields its base URL."""
    from aigate.simulator.profile import SimProfile
    from aigate.simulator.server import SimulatorServer

    profile = SimProfile.model_validate({"seed": 7, "models": models, **top})
    with SimulatorServer(profile) as sim:
        yield str(sim.url)


def sim_model(provider: str, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "provider": provider,
        "latency": {"fixedMs": 5},
        "usage": {"inputTokens": 100, "outputTokens": 20},
        "responses": [{"match": {"regex": ".*"}, "content": ANSWER}],
    }
    doc.update(extra)
    return doc


def keys(resolved: Any) -> dict[str, str]:
    """Every model gets a key, as the simulator, like the providers, refuses requests without one."""
    return {m.name: CANARY for m in resolved.workload.spec.models}


def pricing(inp: float, out: float) -> dict[str, float]:
    return {"inputPerMTokUSD": inp, "outputPerMTokUSD": out}

"""Malformed AdmissionReviews against `aigate webhook`'s real front door (aigate.webhook.server.App under Granian)
over TLS on loopback: every one gets a well-formed AdmissionReview answer or a plain HTTP 4xx, never a 500, a crash
or a hang; a good review after them still works. The reviewer behind it is a stand-in (a label decides), so that
these tests are about the front door; tests/test_webhook_review.py judges the real one."""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aigate.kube.metrics import Metrics
from aigate.kube.names import ROLLOUTS_WEBHOOK
from aigate.webhook.envelope import refusal
from aigate.webhook.review import Answer, respond
from aigate.webhook.server import App
from webhook_tls import Certs, serving, serving_certs

DENY = "aigate-test: deny=yes is refused"


class LabelReviewer:
    """Refuses a Deployment labelled deny=yes, warns otherwise; knows Deployments only (as the real one knows its
    resources)."""

    async def review(self, webhook: str, review: dict[str, Any]) -> dict[str, Any]:
        request = review["request"]
        resource = request["resource"]
        if (resource.get("group"), resource.get("resource")) != ("apps", "deployments"):
            what = f"{resource.get('group') or 'core'}/{resource.get('version')}/{resource.get('resource')}"
            return refusal(review, f"aigate has no admission handler for {what}", 400)
        body = request.get("object") or request.get("oldObject") or {}
        if ((body.get("metadata") or {}).get("labels") or {}).get("deny") == "yes":
            return respond(review, Answer(False, DENY, 403))
        return respond(review, Answer(warnings=["looked at it"]))


def review(obj: dict[str, Any] | None = None, **request: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "namespace": "fraud",
        "operation": "CREATE",
        "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
        "object": obj
        if obj is not None
        else {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "fraud"}},
    }
    req.update(request)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str, ctx: ssl.SSLContext) -> None:
        self.session, self.base, self.ctx = session, base, ctx

    async def post(self, data: bytes, path: str = ROLLOUTS_WEBHOOK, **kw: Any) -> tuple[int, Any]:
        async with self.session.post(f"{self.base}/{path}", data=data, ssl=self.ctx, **kw) as r:
            text = await r.text()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return serving_certs(tmp_path)


@pytest.fixture
async def client(certs: Certs) -> AsyncIterator[Client]:
    app = App(LabelReviewer(), Metrics(), ready=lambda: True, read_timeout=0.5)  # type: ignore[arg-type]
    async with (
        serving(app, certs.cert, certs.key) as base,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
    ):
        yield Client(session, base, certs.client_context())


def is_refusal(status: int, answer: Any, uid: str, code: int, message: str) -> bool:
    return status == 200 and answer == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": uid, "allowed": False, "status": {"code": code, "message": message}},
    }


async def test_good_reviews_are_judged_by_the_handler(client: Client) -> None:
    r = review()
    status, answer = await client.post(json.dumps(r).encode())
    assert status == 200
    assert answer["response"] == {"uid": r["request"]["uid"], "allowed": True, "warnings": ["looked at it"]}
    bad = review({"metadata": {"name": "d", "namespace": "fraud", "labels": {"deny": "yes"}}})
    status, answer = await client.post(json.dumps(bad).encode())
    assert status == 200 and answer["response"]["allowed"] is False
    assert answer["response"]["status"] == {"code": 403, "message": DENY}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty request body; expected an AdmissionReview"),
        (b"{not json", "request body is not JSON"),
        (b"\xff\xfe\x00garbage", "request body is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "request body is not JSON"),
        (b"[1, 2]", "request body is not an AdmissionReview (a JSON object)"),
        (b'{"kind": "Pod"}', "not an AdmissionReview (kind 'Pod', apiVersion None)"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "AdmissionReview has no request"),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"object": {}}}',
            "AdmissionReview request has no uid",
        ),
    ],
    ids=["empty", "not-json", "not-utf8", "deeply-nested", "array", "wrong-kind", "no-request", "no-uid"],
)
async def test_not_an_admission_review_is_a_400(client: Client, body: bytes, reason: str) -> None:
    status, answer = await client.post(body)
    assert status == 400
    assert answer["error"].startswith(reason)


async def test_unknown_resource_is_refused_in_a_review(client: Client) -> None:
    r = review(resource={"group": "", "version": "v1", "resource": "configmaps"})
    status, answer = await client.post(json.dumps(r).encode())
    assert is_refusal(
        status, answer, r["request"]["uid"], 400, "aigate has no admission handler for core/v1/configmaps"
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("resource", None, "AdmissionReview request has no resource (group, version, resource)"),
        ("resource", {"group": "apps"}, "AdmissionReview request has no resource (group, version, resource)"),
        ("userInfo", None, "AdmissionReview request has no userInfo"),
        ("object", None, "AdmissionReview request has neither object nor oldObject"),
        ("object", "a string", "AdmissionReview request has neither object nor oldObject"),
    ],
)
async def test_review_missing_what_a_decision_needs_is_refused(
    client: Client, field: str, value: Any, message: str
) -> None:
    r = review()
    if value is None:
        del r["request"][field]
    else:
        r["request"][field] = value
    status, answer = await client.post(json.dumps(r).encode())
    assert is_refusal(status, answer, r["request"]["uid"], 400, message)


async def test_object_without_metadata_reaches_the_handler_not_a_500(client: Client) -> None:
    r = review({"apiVersion": "apps/v1", "kind": "Deployment"}, operation="UPDATE")
    status, answer = await client.post(json.dumps(r).encode())
    assert status == 200
    assert answer["response"] == {"uid": r["request"]["uid"], "allowed": True, "warnings": ["looked at it"]}


async def test_ten_megabyte_object_is_a_413(client: Client) -> None:
    obj = {"metadata": {"name": "d", "namespace": "fraud"}, "data": {"blob": "x" * 10_000_000}}
    status, answer = await client.post(json.dumps(review(obj)).encode())
    assert status == 413 and "above the 8388608-byte limit" in answer["error"]


async def test_ten_megabytes_chunked_without_length_is_a_413(client: Client) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"blob": "'
        for _ in range(160):
            yield b"x" * 65536
        yield b'"}}'

    status, answer = await client.post(chunks())  # type: ignore[arg-type]
    assert status == 413 and answer["error"] == "request body is above the 8388608-byte limit"


async def test_a_stalled_body_is_cut_off(client: Client) -> None:
    host, port = client.base.removeprefix("https://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), ssl=client.ctx, server_hostname="127.0.0.1")
    writer.write(
        f"POST /{ROLLOUTS_WEBHOOK} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n{".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readline(), timeout=5)
    writer.close()
    assert head.startswith(b"HTTP/1.1 408")


async def test_unknown_path_is_a_404(client: Client) -> None:
    status, answer = await client.post(json.dumps(review()).encode(), path="somewhere-else")
    assert status == 404 and answer == {"error": "no webhook at /somewhere-else"}


async def test_the_server_survives_all_of_it(client: Client) -> None:
    for body in (b"", b"{", b"[]", b"\x00" * 1000, json.dumps(review(resource={})).encode()):
        status, _ = await client.post(body)
        assert status in (200, 400)
    r = review()
    status, answer = await client.post(json.dumps(r).encode())
    assert status == 200 and answer["response"]["allowed"] is True


@pytest.mark.parametrize(("offered", "chosen"), [(["h2", "http/1.1"], "h2"), (["http/1.1"], "http/1.1")])
async def test_http2_is_offered_by_alpn(client: Client, offered: list[str], chosen: str) -> None:
    """The API server offers h2 first and multiplexes when it gets it; an HTTP/1.1-only client is still served."""
    ctx = client.ctx
    ctx.set_alpn_protocols(offered)
    host, port = client.base.removeprefix("https://").split(":")
    _, writer = await asyncio.open_connection(host, int(port), ssl=ctx, server_hostname="127.0.0.1")
    try:
        assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == chosen
    finally:
        writer.close()

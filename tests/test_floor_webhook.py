"""The benches' floor webhook (hack/floor-webhook, built by hack/build-floor-webhook.sh): it offers HTTP/2 by ALPN
over TLS, admits every review with its uid, counts what it answered, and refuses to start without its flags."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))

from localcluster.controlplane import free_ports  # noqa: E402
from localcluster.pki import CA  # noqa: E402


@pytest.fixture(scope="module")
def binary() -> str:
    if shutil.which("go") is None:
        pytest.skip("go is not on PATH (the floor webhook is built from source)")
    out = subprocess.run(
        ["bash", str(ROOT / "hack" / "build-floor-webhook.sh")], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture
def floor(binary: str, tmp_path: Path) -> Iterator[tuple[int, ssl.SSLContext]]:
    ca = CA.create(tmp_path, "floor-ca")
    pair = ca.issue(tmp_path, "floor", "127.0.0.1", ips=("127.0.0.1",), server=True)
    [port] = free_ports(1)
    proc = subprocess.Popen(
        [binary, "-cert", str(pair.cert), "-key", str(pair.key), "-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ctx = ssl.create_default_context(cafile=str(ca.pair.cert))
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port, ctx
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _get(port: int, ctx: ssl.SSLContext, path: str) -> str:
    with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", context=ctx, timeout=5) as r:
        return str(r.read().decode())


def test_admits_every_review_with_its_uid_and_counts_them(floor: tuple[int, ssl.SSLContext]) -> None:
    port, ctx = floor
    assert _get(port, ctx, "/count") == "0"
    for i, path in enumerate(("/rollouts.aigate.dev", "/aiworkloads.aigate.dev")):
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": f"u-{i}"}}
        req = urllib.request.Request(
            f"https://127.0.0.1:{port}{path}",
            data=json.dumps(review).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
            answer = json.loads(r.read())
        assert answer == {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": f"u-{i}", "allowed": True},
        }
    assert _get(port, ctx, "/count") == "2"
    bad = urllib.request.Request(f"https://127.0.0.1:{port}/x", data=b'{"kind": "NotAReview"}')
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad, context=ctx, timeout=5)
    assert e.value.code == 400
    assert _get(port, ctx, "/count") == "2"


def test_offers_http2_by_alpn(floor: tuple[int, ssl.SSLContext]) -> None:
    port, ctx = floor
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.selected_alpn_protocol() == "h2"


def test_refuses_to_start_without_its_flags(binary: str) -> None:
    out = subprocess.run([binary, "-port", "9443"], capture_output=True, text=True, check=False)
    assert out.returncode == 2
    assert out.stderr.strip() == "floor-webhook: error: -cert, -key and -port (1-65535) are required"

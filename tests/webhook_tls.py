"""`aigate webhook`'s TLS server (Granian, embedded in the test's event loop) on loopback, without a cluster: what
the HTTP tests and bench/admission.py drive over TLS.

The serving certificate comes from hack/localcluster/pki.py (the control plane's CA code)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aigate.webhook.server import CertificateFiles, follow_certificate, tls_server

HACK = Path(__file__).resolve().parents[1] / "hack"
if str(HACK) not in sys.path:
    sys.path.insert(0, str(HACK))

from localcluster.pki import CA  # noqa: E402


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _accepting(port: int, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


@asynccontextmanager
async def serving(
    app: Any, cert: Path, key: Path, *, port: int | None = None, check_interval: float | None = None
) -> AsyncIterator[str]:
    """Serve `app` over TLS on 127.0.0.1 as `aigate webhook` does; yields the base URL. With `check_interval`, the
    certificate files are followed as in production."""
    port = port or free_port()
    files = CertificateFiles(cert, key)
    server = tls_server(app, address="127.0.0.1", port=port, files=files)
    files.served()
    tasks = [asyncio.create_task(server.serve())]
    if check_interval is not None:
        tasks.append(asyncio.create_task(follow_certificate(server, files, check_interval)))
    try:
        await _accepting(port)
        yield f"https://127.0.0.1:{port}"
    finally:
        server.stop()
        await asyncio.wait(tasks[:1], timeout=10)
        for t in tasks:
            t.cancel()

"""A loopback HTTPS server that serves ConfigMaps the way the API server does for the two calls a gate process makes
(GET one ConfigMap, PATCH one with a JSON merge patch): what tests/test_gateapi.py and bench/gate_run.py talk to.

It authenticates like the API server (a Bearer token, or a client certificate signed by its CA) and answers
401/403/404/415 with a `Status` body. The certificates come from hack/localcluster/pki.py.
"""

from __future__ import annotations

import json
import ssl
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HACK = Path(__file__).resolve().parents[1] / "hack"
if str(HACK) not in sys.path:
    sys.path.insert(0, str(HACK))

from localcluster.pki import CA, CertPair  # noqa: E402

PREFIX = "/api/v1/namespaces/"
MERGE_PATCHES = ("application/merge-patch+json", "application/strategic-merge-patch+json")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


@dataclass
class ConfigMapApi:
    """State and credentials of the server; `configmaps[(namespace, name)]` is the stored object."""

    ca: CA
    server_pair: CertPair
    tokens: set[str] = field(default_factory=set)
    readable: set[str] = field(default_factory=set)
    """ConfigMap names a caller may GET and PATCH (a Role with resourceNames); empty: every name."""
    configmaps: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    seen: list[tuple[str, str, str]] = field(default_factory=list)
    """(method, path, who) per request: who is 'token:<t>' or 'cert:<subject CN>'."""
    url: str = ""

    def put(self, namespace: str, name: str, data: dict[str, str]) -> None:
        self.configmaps[(namespace, name)] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
            "data": dict(data),
        }


def _handler(api: ConfigMapApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, code: int, doc: dict[str, Any]) -> None:
            body = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _status(self, code: int, reason: str, message: str) -> None:
            self._answer(
                code,
                {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": message,
                 "code": code},
            )  # fmt: skip

        def _who(self) -> str | None:
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer ") and auth[7:] in api.tokens:
                return "token:" + auth[7:]
            peer = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
            if peer:
                for rdn in peer.get("subject", ()):
                    for k, v in rdn:
                        if k == "commonName":
                            return "cert:" + v
            return None

        def _target(self) -> tuple[str, str] | None:
            path = self.path.split("?", 1)[0]
            if not path.startswith(PREFIX):
                return None
            parts = path[len(PREFIX) :].split("/")
            if len(parts) != 3 or parts[1] != "configmaps":
                return None
            return parts[0], parts[2]

        def _begin(self) -> tuple[str, str] | None:
            who = self._who()
            api.seen.append((self.command, self.path, who or "anonymous"))
            if who is None:
                self._status(401, "Unauthorized", "Unauthorized")
                return None
            target = self._target()
            if target is None:
                self._status(404, "NotFound", "the server could not find the requested resource")
                return None
            if api.readable and target[1] not in api.readable:
                self._status(403, "Forbidden", f'configmaps "{target[1]}" is forbidden')
                return None
            if target not in api.configmaps:
                self._status(404, "NotFound", f'configmaps "{target[1]}" not found')
                return None
            return target

        def do_GET(self) -> None:
            target = self._begin()
            if target is not None:
                self._answer(200, api.configmaps[target])

        def do_PATCH(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            target = self._begin()
            if target is None:
                return
            # the official client sends a strategic merge patch, which for a ConfigMap's maps merges the same way
            if self.headers.get("Content-Type") not in MERGE_PATCHES:
                self._status(415, "UnsupportedMediaType", "this server takes merge patches only")
                return
            obj = merge_patch(api.configmaps[target], json.loads(body))
            obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
            api.configmaps[target] = obj
            self._answer(200, obj)

    return Handler


@contextmanager
def serving(directory: Path, *, host: str = "127.0.0.1") -> Iterator[ConfigMapApi]:
    """Start the server with a fresh CA in DIRECTORY; it takes client certificates signed by that CA, or tokens."""
    ca = CA.create(directory, "configmap-api-ca")
    pair = ca.issue(directory, "server", host, ips=(host,), server=True)
    api = ConfigMapApi(ca=ca, server_pair=pair)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pair.cert), str(pair.key))
    ctx.load_verify_locations(str(ca.pair.cert))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    httpd = ThreadingHTTPServer((host, 0), _handler(api))
    httpd.daemon_threads = True
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    api.url = f"https://{host}:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, name="configmap-api", daemon=True)
    thread.start()
    try:
        yield api
    finally:
        httpd.shutdown()
        httpd.server_close()

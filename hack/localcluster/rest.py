"""A small JSON client for the Kubernetes REST API, configured from a kubeconfig (the process node's only client)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import tempfile
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

JSON = dict[str, Any]


class ApiError(Exception):
    def __init__(self, status: int, method: str, path: str, body: bytes) -> None:
        self.status = status
        try:
            doc = json.loads(body)
            self.reason = str(doc.get("reason", ""))
            self.message = str(doc.get("message", body[:300].decode(errors="replace")))
        except ValueError:
            self.reason, self.message = "", body[:300].decode(errors="replace")
        super().__init__(f"{method} {path}: HTTP {status}: {self.message}")


class Kube:
    """Requests against the current context's cluster and user of KUBECONFIG (client cert or bearer token)."""

    def __init__(self, kubeconfig: Path | str, secrets_dir: Path | None = None) -> None:
        doc = yaml.safe_load(Path(kubeconfig).read_text())
        ctx_name = doc["current-context"]
        ctx = next(c["context"] for c in doc["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
        user: dict[str, Any] = next((u["user"] for u in doc.get("users", []) if u["name"] == ctx.get("user")), {})
        url = urllib.parse.urlsplit(cluster["server"])
        if url.scheme != "https" or url.hostname is None:
            raise ValueError(f"{kubeconfig}: server {cluster['server']!r} is not an https URL")
        self.host, self.port = url.hostname, url.port or 443
        self.server = cluster["server"].rstrip("/")
        self._secrets = Path(secrets_dir or tempfile.mkdtemp(prefix="kube-client-"))
        self._secrets.mkdir(parents=True, exist_ok=True, mode=0o700)
        ca = self._material(cluster, "certificate-authority", "ca.crt")
        self.ca_pem = ca.read_bytes() if ca else b""
        self.ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
        cert, key = (
            self._material(user, "client-certificate", "client.crt"),
            self._material(user, "client-key", "client.key"),
        )
        if cert and key:
            self.ctx.load_cert_chain(str(cert), str(key))
        self._headers = {"Accept": "application/json"}
        if user.get("token"):
            self._headers["Authorization"] = f"Bearer {user['token']}"

    def _material(self, stanza: Mapping[str, Any], field: str, stem: str) -> Path | None:
        if stanza.get(field):
            return Path(stanza[field])
        data = stanza.get(f"{field}-data")
        if not data:
            return None
        path = self._secrets / stem
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def _conn(self, timeout: float) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> JSON:
        target = path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = dict(self._headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        conn = self._conn(timeout)
        try:
            conn.request(method, target, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        if not 200 <= resp.status < 300:
            raise ApiError(resp.status, method, path, raw)
        return json.loads(raw) if raw else {}

    def get(self, path: str, **query: str) -> JSON:
        return self.request("GET", path, query=query or None)

    def watch(self, path: str, resource_version: str, timeout_seconds: int = 60) -> Iterator[JSON]:
        """The watch events of PATH from RESOURCE_VERSION until the server closes the stream."""
        query = {"watch": "1", "resourceVersion": resource_version, "timeoutSeconds": str(timeout_seconds)}
        query["allowWatchBookmarks"] = "true"
        conn = self._conn(timeout_seconds + 30)
        try:
            conn.request("GET", path + "?" + urllib.parse.urlencode(query), headers=self._headers)
            resp = conn.getresponse()
            if resp.status != 200:
                raise ApiError(resp.status, "WATCH", path, resp.read())
            while True:
                line = resp.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()

"""The gate Job's whole view of the Kubernetes API: read one ConfigMap, merge-patch one ConfigMap.

The gate process reads its input ConfigMap and writes its result ConfigMap, nothing else, so it does not load the
official `kubernetes` client (its import and configuration were a measurable share of a gate run's CPU, see
bench/gate_run.py): a synchronous httpx client with the pod's ServiceAccount token and CA is enough. Configuration
is found as `kube.client.load_api_client` finds it, in the same order: KUBECONFIG, else the in-cluster
ServiceAccount, else ~/.kube/config.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

JSON = dict[str, Any]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TIMEOUT_S = 30.0


class GateApiConfigError(Exception):
    """No usable API configuration (what is missing or malformed, and where)."""


class GateApiError(Exception):
    """An API call failed: STATUS is the HTTP status, or None when the API server could not be reached."""

    def __init__(self, status: int | None, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}".rstrip() if status is not None else reason)
        self.status = status
        self.reason = reason


@dataclass
class GateApi:
    """ConfigMap reads and merge patches against one API server."""

    server: str
    ssl_context: ssl.SSLContext | bool
    token: str | None = None
    token_file: Path | None = None
    """Read on every call: a projected ServiceAccount token is rotated under a running pod."""
    timeout_s: float = TIMEOUT_S
    _http: httpx.Client | None = field(default=None, repr=False)

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(base_url=self.server, verify=self.ssl_context, timeout=self.timeout_s)
        return self._http

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        token = self.token
        if self.token_file is not None:
            try:
                token = self.token_file.read_text().strip()
            except OSError as e:
                raise GateApiError(None, f"reading the ServiceAccount token {self.token_file}: {e.strerror}") from None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _call(self, method: str, path: str, *, body: bytes | None = None, content_type: str | None = None) -> JSON:
        try:
            r = self._client().request(method, path, content=body, headers=self._headers(content_type))
        except httpx.HTTPError as e:
            raise GateApiError(None, f"{type(e).__name__}: {e}") from None
        if r.status_code >= 400:
            raise GateApiError(r.status_code, r.reason_phrase)
        try:
            doc = r.json()
        except ValueError:
            raise GateApiError(r.status_code, "the API server's answer is not JSON") from None
        if not isinstance(doc, dict):
            raise GateApiError(r.status_code, "the API server's answer is not a JSON object")
        return doc

    @staticmethod
    def _path(namespace: str, name: str) -> str:
        return f"/api/v1/namespaces/{quote(namespace, safe='')}/configmaps/{quote(name, safe='')}"

    def read_configmap(self, namespace: str, name: str) -> JSON:
        """The ConfigMap as the API returns it (a dict)."""
        return self._call("GET", self._path(namespace, name))

    def patch_configmap(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        """Apply PATCH as a JSON merge patch (RFC 7386: null deletes a key)."""
        body = json.dumps(patch).encode()
        self._call("PATCH", self._path(namespace, name), body=body, content_type="application/merge-patch+json")

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


def connect(environ: Mapping[str, str], *, service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> tuple[GateApi, str]:
    """The API client and a phrase saying which configuration it used (as `kube.client.load_api_client`)."""
    kubeconfig = environ.get("KUBECONFIG")
    if kubeconfig:
        path = Path(kubeconfig.split(os.pathsep)[0])
        return from_kubeconfig(path), f"kubeconfig {path} (KUBECONFIG is set)"
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if host and port:
        return in_cluster(host, port, service_account_dir), "in-cluster ServiceAccount (KUBECONFIG is not set)"
    default = Path(environ.get("HOME") or os.path.expanduser("~")) / ".kube" / "config"
    if not default.is_file():
        raise GateApiConfigError(
            f"KUBECONFIG is not set, this is not a pod (KUBERNETES_SERVICE_HOST/PORT unset) and there is no {default}"
        )
    return from_kubeconfig(default), f"kubeconfig {default} (neither KUBECONFIG nor an in-cluster ServiceAccount)"


def in_cluster(host: str, port: str, service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> GateApi:
    """The pod's ServiceAccount: token and CA mounted in SERVICE_ACCOUNT_DIR, the API at HOST:PORT."""
    token, ca = service_account_dir / "token", service_account_dir / "ca.crt"
    for f in (token, ca):
        if not f.is_file():
            raise GateApiConfigError(f"in a pod but {f} is missing (is the ServiceAccount token mounted?)")
    try:
        ctx = ssl.create_default_context(cafile=str(ca))
    except (ssl.SSLError, OSError) as e:
        raise GateApiConfigError(f"the ServiceAccount CA {ca} is not a PEM certificate: {e}") from None
    netloc = f"[{host}]" if ":" in host else host
    return GateApi(f"https://{netloc}:{port}", ctx, token_file=token)


def from_kubeconfig(path: Path) -> GateApi:
    """The current context of kubeconfig PATH: server, CA, and a client certificate or a token."""
    import yaml

    where = f"kubeconfig {path}"
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        raise GateApiConfigError(f"reading {where}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise GateApiConfigError(f"{where} is not YAML: {e}") from None
    if not isinstance(doc, dict):
        raise GateApiConfigError(f"{where} is not a kubeconfig (no mapping at the top)")

    def named(kind: str, name: Any) -> JSON:
        for item in doc.get(kind + "s") or []:
            if isinstance(item, dict) and item.get("name") == name and isinstance(item.get(kind), dict):
                return dict(item[kind])
        raise GateApiConfigError(f"{where}: no {kind} named {name!r}")

    ctx_name = doc.get("current-context")
    if not ctx_name:
        raise GateApiConfigError(f"{where} has no current-context")
    context = named("context", ctx_name)
    cluster = named("cluster", context.get("cluster"))
    user = named("user", context.get("user")) if context.get("user") else {}
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith(("https://", "http://")):
        raise GateApiConfigError(f"{where}: cluster {context.get('cluster')!r} has no http(s) server")
    base = path.parent

    def pem(data_key: str, file_key: str, section: JSON, what: str) -> bytes | None:
        if section.get(data_key):
            try:
                return base64.b64decode(section[data_key], validate=True)
            except ValueError:
                raise GateApiConfigError(f"{where}: {what} {data_key} is not base64") from None
        if section.get(file_key):
            f = base / str(section[file_key])
            try:
                return f.read_bytes()
            except OSError as e:
                raise GateApiConfigError(f"{where}: {what} {file_key} {f}: {e.strerror}") from None
        return None

    verify: ssl.SSLContext | bool
    if server.startswith("http://"):
        verify = False
    else:
        ca = pem("certificate-authority-data", "certificate-authority", cluster, "cluster")
        try:
            verify = ssl.create_default_context(cadata=ca.decode() if ca else None)
        except (ssl.SSLError, ValueError) as e:
            raise GateApiConfigError(f"{where}: the cluster's certificate authority is not PEM: {e}") from None
        if cluster.get("insecure-skip-tls-verify"):
            verify.check_hostname, verify.verify_mode = False, ssl.CERT_NONE
        cert = pem("client-certificate-data", "client-certificate", user, "user")
        key = pem("client-key-data", "client-key", user, "user")
        if cert and key:
            _load_client_pair(verify, cert, key, where)
    token = user.get("token") if isinstance(user.get("token"), str) else None
    token_file = base / str(user["tokenFile"]) if user.get("tokenFile") else None
    return GateApi(server.rstrip("/"), verify, token=token, token_file=token_file)


def _load_client_pair(ctx: ssl.SSLContext, cert: bytes, key: bytes, where: str) -> None:
    """ssl loads a certificate chain only from files: a private temporary directory holds them for the call."""
    with tempfile.TemporaryDirectory(prefix="aigate-gateapi-") as d:
        cf, kf = Path(d) / "tls.crt", Path(d) / "tls.key"
        cf.write_bytes(cert)
        kf.touch(mode=0o600)
        kf.write_bytes(key)
        try:
            ctx.load_cert_chain(str(cf), str(kf))
        except ssl.SSLError as e:
            raise GateApiConfigError(f"{where}: the user's client certificate and key do not load: {e}") from None

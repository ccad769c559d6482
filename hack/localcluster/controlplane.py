"""Start, stop and inspect a local control plane: etcd + kube-apiserver + kube-controller-manager on loopback.

Everything lives in one state directory:

    pki/                 CA, API server serving cert, admin and controller-manager client certs, SA signing keys
    etcd/                etcd's data (--unsafe-no-fsync)
    logs/                one log per process
    nodes/NAME/          a process node's pods (see localcluster.node)
    kubeconfig           the admin kubeconfig (user in system:masters)
    state.json           server URL, ports and the PIDs (with kernel start times) of every process started here

Ports are picked free at start, so two control planes run side by side in two state directories. stop() signals only
the processes recorded in state.json.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from localcluster.pki import CA, service_account_keys
from localcluster.procs import Proc, spawn, tail
from localcluster.versions import HACK_DIR, Binaries

SERVICE_CIDR = "10.0.0.0/24"  # an allocation range for ClusterIPs only: nothing is routed to it
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
CONTROLLERS = (
    "job-controller",
    "cronjob-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "ttl-after-finished-controller",
    "serviceaccount-controller",
    "root-ca-certificate-publisher-controller",
    "deployment-controller",
    "replicaset-controller",
    "resourcequota-controller",
    "clusterrole-aggregation-controller",
)
ADMIN_USER = "aigate-admin"


class ControlPlaneError(RuntimeError):
    """The control plane could not start, or its state directory is unusable."""


def free_ports(n: int) -> list[int]:
    """N distinct free TCP ports on 127.0.0.1 (held open together while chosen, so they differ)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def write_kubeconfig(
    path: Path, server: str, ca_pem: bytes, user: dict[str, str], *, name: str = "aigate-local", namespace: str = ""
) -> Path:
    """A kubeconfig for SERVER; USER is the kubeconfig 'user' stanza (token or client-certificate paths)."""
    context: dict[str, str] = {"cluster": name, "user": name}
    if namespace:
        context["namespace"] = namespace
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {"server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()},
            }
        ],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    return path


class ControlPlane:
    """A control plane in STATE_DIR. start() creates it; ControlPlane(state_dir) alone reattaches to a running one."""

    def __init__(self, state_dir: Path | str, binaries: Binaries | None = None) -> None:
        self.state_dir = Path(state_dir).resolve()
        self._binaries = binaries
        self.state: dict[str, Any] = {}
        if self.state_file.is_file():
            self.state = json.loads(self.state_file.read_text())

    # ---- paths and facts -------------------------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def ca_cert(self) -> Path:
        return self.pki / "ca.crt"

    @property
    def server(self) -> str:
        try:
            return str(self.state["server"])
        except KeyError:
            raise ControlPlaneError(f"no control plane was started in {self.state_dir}") from None

    @property
    def port(self) -> int:
        return int(self.state["ports"]["apiserver"])

    def processes(self) -> list[Proc]:
        return [Proc.from_json(p) for p in self.state.get("processes", [])]

    def _save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2) + "\n")
        tmp.replace(self.state_file)

    def _record(self, proc: Proc) -> Proc:
        self.state.setdefault("processes", []).append(proc.to_json())
        self._save()
        return proc

    # ---- lifecycle ---------------------------------------------------------------------------------------------------

    def start(self, timeout: float | None = None) -> ControlPlane:
        """Create certificates, start etcd, kube-apiserver and kube-controller-manager, wait until ready."""
        if timeout is None:
            timeout = float(os.environ.get("AIGATE_CONTROL_PLANE_TIMEOUT", "180"))
        if any(p.alive() for p in self.processes()):
            raise ControlPlaneError(f"a control plane is already running in {self.state_dir}; stop it first")
        binaries = self._binaries or Binaries.locate()
        for attempt in (1, 2):
            self._fresh_state_dir(binaries)
            try:
                self._start(binaries, timeout)
                return self
            except ControlPlaneError as e:
                self.stop()
                # a port chosen free was taken before our process bound it: choose again, once
                if attempt == 2 or "address already in use" not in str(e):
                    raise
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _fresh_state_dir(self, binaries: Binaries) -> None:
        if self.state_dir.exists():
            if not self.state_file.is_file() and any(self.state_dir.iterdir()):
                raise ControlPlaneError(
                    f"{self.state_dir} is not empty and holds no control plane (no state.json): use another dir"
                )
            shutil.rmtree(self.state_dir)
        self.pki.mkdir(parents=True, mode=0o700)
        (self.state_dir / "logs").mkdir()
        etcd_client, etcd_peer, apiserver, kcm = free_ports(4)
        self.state = {
            "server": f"https://127.0.0.1:{apiserver}",
            "ports": {"etcd": etcd_client, "etcd_peer": etcd_peer, "apiserver": apiserver, "controller_manager": kcm},
            "versions": {"kubernetes": binaries.versions.kubernetes, "etcd": binaries.versions.etcd},
            "processes": [],
        }
        self._save()

    def _start(self, binaries: Binaries, timeout: float) -> None:
        ports = self.state["ports"]
        logs = self.state_dir / "logs"
        ca = CA.create(self.pki)
        serving = ca.issue(
            self.pki,
            "apiserver",
            "kube-apiserver",
            dns_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
            ips=("127.0.0.1", "10.0.0.1"),
            server=True,
        )
        admin = ca.issue(self.pki, "admin", ADMIN_USER, organizations=("system:masters",), client=True)
        kcm_cert = ca.issue(self.pki, "controller-manager", "system:kube-controller-manager", client=True)
        sa = service_account_keys(self.pki)
        ca_pem = ca.pair.cert.read_bytes()
        write_kubeconfig(
            self.kubeconfig, self.server, ca_pem, {"client-certificate": str(admin.cert), "client-key": str(admin.key)}
        )
        kcm_kubeconfig = write_kubeconfig(
            self.pki / "controller-manager.kubeconfig",
            self.server,
            ca_pem,
            {"client-certificate": str(kcm_cert.cert), "client-key": str(kcm_cert.key)},
        )

        url = f"http://127.0.0.1:{ports['etcd']}"
        peer = f"http://127.0.0.1:{ports['etcd_peer']}"
        etcd = self._record(
            spawn(
                "etcd",
                [
                    str(binaries.etcd),
                    "--name=aigate",
                    f"--data-dir={self.state_dir / 'etcd'}",
                    f"--listen-client-urls={url}",
                    f"--advertise-client-urls={url}",
                    f"--listen-peer-urls={peer}",
                    f"--initial-advertise-peer-urls={peer}",
                    f"--initial-cluster=aigate={peer}",
                    "--unsafe-no-fsync",
                    "--log-level=warn",
                ],
                logs / "etcd.log",
            )
        )
        deadline = time.monotonic() + timeout
        self._wait(etcd, lambda: _http_ok(f"{url}/health", None), deadline, "etcd /health")

        apiserver = self._record(
            spawn(
                "kube-apiserver",
                [
                    str(binaries.kube_apiserver),
                    f"--etcd-servers={url}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={ports['apiserver']}",
                    f"--cert-dir={self.pki}",
                    f"--tls-cert-file={serving.cert}",
                    f"--tls-private-key-file={serving.key}",
                    f"--client-ca-file={ca.pair.cert}",
                    "--authorization-mode=RBAC",
                    "--endpoint-reconciler-type=none",
                    f"--service-cluster-ip-range={SERVICE_CIDR}",
                    f"--service-account-issuer={SA_ISSUER}",
                    f"--service-account-key-file={sa.cert}",
                    f"--service-account-signing-key-file={sa.key}",
                    "--allow-privileged=true",
                    "--profiling=false",
                ],
                logs / "kube-apiserver.log",
            )
        )
        admin_ctx = ssl.create_default_context(cafile=str(ca.pair.cert))
        admin_ctx.load_cert_chain(str(admin.cert), str(admin.key))
        self._wait(apiserver, lambda: _http_ok(f"{self.server}/readyz", admin_ctx), deadline, "kube-apiserver /readyz")

        kcm = self._record(
            spawn(
                "kube-controller-manager",
                [
                    str(binaries.kube_controller_manager),
                    f"--kubeconfig={kcm_kubeconfig}",
                    f"--authentication-kubeconfig={kcm_kubeconfig}",
                    f"--authorization-kubeconfig={kcm_kubeconfig}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={ports['controller_manager']}",
                    f"--cert-dir={self.state_dir / 'controller-manager'}",
                    "--leader-elect=false",
                    "--use-service-account-credentials=true",
                    f"--root-ca-file={ca.pair.cert}",
                    f"--service-account-private-key-file={sa.key}",
                    f"--controllers={','.join(CONTROLLERS)}",
                ],
                logs / "kube-controller-manager.log",
            )
        )
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # its self-signed serving cert; only /healthz is read
        kcm_url = f"https://127.0.0.1:{ports['controller_manager']}/healthz"
        self._wait(kcm, lambda: _http_ok(kcm_url, insecure), deadline, "kube-controller-manager /healthz")
        # Pods need their namespace's ServiceAccount: the serviceaccount controller working is part of "ready".
        sa_url = f"{self.server}/api/v1/namespaces/default/serviceaccounts/default"
        self._wait(kcm, lambda: _http_ok(sa_url, admin_ctx), deadline, "the default ServiceAccount")

    def _wait(self, proc: Proc, ready: Any, deadline: float, what: str) -> None:
        while True:
            if not proc.alive():
                raise ControlPlaneError(
                    f"{proc.name} exited before {what} was ready; last log lines:\n{tail(proc.log)}"
                )
            if ready():
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"timed out waiting for {what}; last lines of {proc.log}:\n{tail(proc.log)}")
            time.sleep(0.2)

    def start_node(self, name: str = "process-node", *, bind: bool = True, python: str | None = None) -> Proc:
        """Start a process node (localcluster.node) for this control plane; stop() stops it too."""
        work = self.state_dir / "nodes" / name
        work.mkdir(parents=True, exist_ok=True)
        argv = [python or sys.executable, "-m", "localcluster.node", f"--kubeconfig={self.kubeconfig}"]
        argv += [f"--name={name}", f"--work-dir={work}", f"--venv={sys.prefix}"]
        if not bind:
            argv.append("--no-bind")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(HACK_DIR), *filter(None, [env.get("PYTHONPATH")])])
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("KUBECONFIG", None)
        proc = self._record(spawn(f"node/{name}", argv, self.state_dir / "logs" / f"node-{name}.log", env=env))
        ready = work / "ready"
        deadline = time.monotonic() + 60
        self._wait(proc, ready.exists, deadline, f"process node {name} to register")
        return proc

    def stop_node(self, name: str = "process-node") -> None:
        self._stop_matching(lambda p: p.name == f"node/{name}")

    def stop(self) -> None:
        """Stop every process this state directory records (newest first), and any container a node left."""
        self._stop_matching(lambda p: True)
        for pidfile in self.state_dir.glob("nodes/*/pids/*"):
            with contextlib.suppress(ValueError, OSError, KeyError):
                Proc.from_json(json.loads(pidfile.read_text())).stop(grace=2.0)
            pidfile.unlink(missing_ok=True)

    def _stop_matching(self, match: Any) -> None:
        errors: list[str] = []
        keep: list[dict[str, Any]] = []
        for proc in reversed(self.processes()):
            if not match(proc):
                keep.insert(0, proc.to_json())
                continue
            try:
                proc.stop()
            except RuntimeError as e:
                errors.append(str(e))
                keep.insert(0, proc.to_json())
        if self.state:
            self.state["processes"] = keep
            self._save()
        if errors:
            raise ControlPlaneError("; ".join(errors))

    def status(self) -> dict[str, Any]:
        return {
            "state_dir": str(self.state_dir),
            "server": self.state.get("server"),
            "kubeconfig": str(self.kubeconfig),
            "versions": self.state.get("versions"),
            "processes": [{"name": p.name, "pid": p.pid, "running": p.alive(), "log": p.log} for p in self.processes()],
        }

    def running(self) -> bool:
        procs = [p for p in self.processes() if not p.name.startswith("node/")]
        return len(procs) == 3 and all(p.alive() for p in procs)

    def admin_ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _http_ok(url: str, ctx: ssl.SSLContext | None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5, context=ctx) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


@contextlib.contextmanager
def running(state_dir: Path | str, binaries: Binaries | None = None) -> Iterator[ControlPlane]:
    """A started control plane, stopped on exit."""
    cp = ControlPlane(state_dir, binaries)
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()

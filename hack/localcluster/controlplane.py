"""Start, stop and inspect a local cluster: etcd + kube-apiserver + kube-controller-manager, and with `node=True` a
real node (kube-scheduler, containerd + runc + the CNI bridge, the kubelet, kube-proxy, CoreDNS; localcluster.node).

Everything lives in one state directory:

    pki/                 CA, serving and client certs (API server, controller manager, scheduler, kubelet, kube-proxy)
    etcd/                etcd's data (--unsafe-no-fsync)
    logs/                one log per process
    node/                the node's configuration, containerd's root, the kubelet's root dir, pod logs
    kubeconfig           the admin kubeconfig (user in system:masters)
    state.json           server URL, ports and the PIDs (with kernel start times) of every process started here,
                         and (with a node) what the machine held before it started

Without a node everything listens on 127.0.0.1 on ports picked free at start, so any number of control planes run
side by side. With a node the API server and the kubelet listen on the pod bridge's gateway address (pods reach the
API server there, through the `kubernetes` Service), and only one such cluster runs per machine (localcluster.host).
stop() signals only the processes recorded in state.json and puts the machine back as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from localcluster import host
from localcluster.kubeconfig import write_kubeconfig
from localcluster.node import NODE_NAME, Node, coredns_manifests, shim_processes
from localcluster.pki import CA, service_account_keys
from localcluster.procs import Proc, spawn, tail
from localcluster.versions import Binaries, BinariesMissing, NodeBinaries, aigate_image_archive

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
"""Without a node: what the tests of the API alone need. With a node every controller runs (`*`)."""
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

    def start(
        self, timeout: float | None = None, *, node: bool = False, by: str = "hack/control-plane"
    ) -> ControlPlane:
        """Create certificates, start etcd, kube-apiserver and kube-controller-manager, wait until ready; with NODE,
        also the real node (one per machine: raises host.NodeBusy while another runs) and CoreDNS."""
        if timeout is None:
            timeout = float(os.environ.get("AIGATE_CONTROL_PLANE_TIMEOUT", "180"))
        if any(p.alive() for p in self.processes()):
            raise ControlPlaneError(f"a control plane is already running in {self.state_dir}; stop it first")
        binaries = self._binaries or Binaries.locate()
        node_binaries = NodeBinaries.locate() if node else None
        if node:
            stale = host.claim(self.state_dir, by)
            if stale is not None:  # a node that died without its stop: put the machine back first
                ControlPlane(Path(stale["state_dir"])).stop()
                host.claim(self.state_dir, by)
        for attempt in (1, 2):
            self._fresh_state_dir(binaries, node=node)
            try:
                self._start(binaries, timeout, node_binaries)
                return self
            except ControlPlaneError as e:
                self.stop()
                # a port chosen free was taken before our process bound it: choose again, once
                if attempt == 2 or "address already in use" not in str(e):
                    raise
                if node:
                    host.claim(self.state_dir, by)
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _fresh_state_dir(self, binaries: Binaries, *, node: bool) -> None:
        if self.state_dir.exists():
            if not self.state_file.is_file() and any(self.state_dir.iterdir()):
                raise ControlPlaneError(
                    f"{self.state_dir} is not empty and holds no control plane (no state.json): use another dir"
                )
            shutil.rmtree(self.state_dir)
        self.pki.mkdir(parents=True, mode=0o700)
        (self.state_dir / "logs").mkdir()
        names = ["etcd", "etcd_peer", "apiserver", "controller_manager"]
        if node:
            names += ["scheduler", "kubelet", "kubelet_healthz", "proxy_healthz", "proxy_metrics"]
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        address = host.GATEWAY if node else "127.0.0.1"
        self.state = {
            "server": f"https://{address}:{ports['apiserver']}",
            "ports": ports,
            "versions": {"kubernetes": binaries.versions.kubernetes, "etcd": binaries.versions.etcd},
            "processes": [],
        }
        if node:
            self.state["node"] = {
                "name": NODE_NAME,
                # whose images it runs: `make image` in another checkout (or cache) must not replace them
                "images_from": str(aigate_image_archive()),
                "host_before": host.HostSnapshot.take().to_json(),
            }
        self._save()

    @property
    def has_node(self) -> bool:
        return "node" in self.state

    def _start(self, binaries: Binaries, timeout: float, node_binaries: NodeBinaries | None) -> None:
        ports = self.state["ports"]
        logs = self.state_dir / "logs"
        node = Node(self.state_dir, node_binaries) if node_binaries is not None else None
        address = host.GATEWAY if node is not None else "127.0.0.1"
        if node is not None:
            host.setup_network()  # the API server binds to the bridge's address
        ca = CA.create(self.pki)
        serving = ca.issue(
            self.pki,
            "apiserver",
            "kube-apiserver",
            dns_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
            ips=tuple(dict.fromkeys(("127.0.0.1", "10.0.0.1", address))),
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

        apiserver_args = [
            str(binaries.kube_apiserver),
            f"--etcd-servers={url}",
            f"--bind-address={address}",
            f"--advertise-address={address}",
            f"--secure-port={ports['apiserver']}",
            f"--cert-dir={self.pki}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={ca.pair.cert}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-account-key-file={sa.cert}",
            f"--service-account-signing-key-file={sa.key}",
            "--allow-privileged=true",
            "--profiling=false",
        ]
        if node is None:
            apiserver_args += ["--authorization-mode=RBAC", "--endpoint-reconciler-type=none"]
        else:
            kubelet_client = ca.issue(
                self.pki,
                "apiserver-kubelet-client",
                "kube-apiserver-kubelet-client",
                organizations=("system:masters",),
                client=True,
            )
            apiserver_args += [
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                f"--kubelet-client-certificate={kubelet_client.cert}",
                f"--kubelet-client-key={kubelet_client.key}",
                f"--kubelet-certificate-authority={ca.pair.cert}",
                "--kubelet-preferred-address-types=InternalIP",
            ]
        apiserver = self._record(spawn("kube-apiserver", apiserver_args, logs / "kube-apiserver.log"))
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
                    f"--controllers={'*' if node is not None else ','.join(CONTROLLERS)}",
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
        if node is None or node_binaries is None:
            return

        sched_cert = ca.issue(self.pki, "scheduler", "system:kube-scheduler", client=True)
        sched_kubeconfig = write_kubeconfig(
            self.pki / "scheduler.kubeconfig",
            self.server,
            ca_pem,
            {"client-certificate": str(sched_cert.cert), "client-key": str(sched_cert.key)},
        )
        sched = self._record(
            spawn(
                "kube-scheduler",
                [
                    str(node_binaries.kube_scheduler),
                    f"--kubeconfig={sched_kubeconfig}",
                    f"--authentication-kubeconfig={sched_kubeconfig}",
                    f"--authorization-kubeconfig={sched_kubeconfig}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={ports['scheduler']}",
                    "--leader-elect=false",
                ],
                logs / "kube-scheduler.log",
            )
        )
        sched_url = f"https://127.0.0.1:{ports['scheduler']}/healthz"
        self._wait(sched, lambda: _http_ok(sched_url, insecure), deadline, "kube-scheduler /healthz")

        node.write_config(ca, self.pki, self.server, ports)
        containerd = self._record(node.start_containerd(logs))
        node.wait_containerd(containerd, deadline)
        self.state["node"]["images"] = node.import_images()
        self._save()
        kubelet = self._record(node.start_kubelet(logs))
        self._record(node.start_kube_proxy(logs))
        node_url = f"{self.server}/api/v1/nodes/{NODE_NAME}"
        self._wait(kubelet, lambda: _node_ready(node_url, admin_ctx), deadline, f"node {NODE_NAME} Ready")
        self.apply(coredns_manifests(node.coredns_ref))
        dns_url = f"{self.server}/apis/apps/v1/namespaces/kube-system/deployments/coredns"
        self._wait(kubelet, lambda: _deployment_ready(dns_url, admin_ctx), deadline, "CoreDNS Ready")

    def apply(self, docs: list[dict[str, Any]]) -> None:
        """Create DOCS with the admin credentials (server-side apply through kubectl would need kubectl here)."""
        ctx = self.admin_ssl_context()
        for doc in docs:
            api = "/api/v1" if doc["apiVersion"] == "v1" else f"/apis/{doc['apiVersion']}"
            plural = {
                "ServiceAccount": "serviceaccounts",
                "ClusterRole": "clusterroles",
                "ClusterRoleBinding": "clusterrolebindings",
                "ConfigMap": "configmaps",
                "Deployment": "deployments",
                "Service": "services",
            }[doc["kind"]]
            ns = doc["metadata"].get("namespace")
            path = f"{api}/namespaces/{ns}/{plural}" if ns else f"{api}/{plural}"
            req = urllib.request.Request(
                f"{self.server}{path}",
                data=json.dumps(doc).encode(),
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(req, timeout=30, context=ctx):
                    pass
            except urllib.error.HTTPError as e:
                if e.code != 409:
                    body = e.read().decode(errors="replace")
                    raise ControlPlaneError(
                        f"creating {doc['kind']} {doc['metadata']['name']}: {e.code} {body}"
                    ) from None

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

    def stop(self) -> None:
        """Stop every process this state directory records and, with a node, put the machine back as it was: pods
        are deleted through the API first (so the kubelet unmounts their volumes and removes their sandboxes)."""
        if not self.has_node:
            self._stop_matching(lambda p: True)
            return
        errors: list[str] = []
        try:
            self._stop_matching(lambda p: p.name in ("kube-controller-manager", "kube-scheduler"))
            self._drain()
        except (ControlPlaneError, OSError) as e:
            errors.append(str(e))
        self._stop_matching(lambda p: p.name in ("kube-proxy", "kubelet"))
        binaries = self._node_binaries()
        if binaries is not None:
            Node(self.state_dir, binaries).remove_containers()
        self._stop_matching(lambda p: p.name == "containerd")
        for shim in shim_processes():
            with contextlib.suppress(RuntimeError):
                shim.stop(grace=2.0)
        self._stop_matching(lambda p: True)
        before = host.HostSnapshot.from_json(self.state["node"]["host_before"])
        left = before.restore((self.state_dir / "node",))
        host.release(self.state_dir)
        if left:
            errors.append("the node left behind: " + "; ".join(left))
        if errors:
            raise ControlPlaneError("; ".join(errors))

    def _node_binaries(self) -> NodeBinaries | None:
        try:
            return NodeBinaries.locate()
        except BinariesMissing:
            return None

    def _drain(self, timeout: float = 90.0) -> None:
        """Delete every pod (gracefully, as a user would) and wait until the kubelet has reported each one gone."""
        if not any(p.alive() for p in self.processes() if p.name == "kube-apiserver"):
            return
        if not any(p.alive() for p in self.processes() if p.name == "kubelet"):
            return
        ctx = self.admin_ssl_context()
        pods_url = f"{self.server}/api/v1/pods"

        def pods() -> list[dict[str, Any]]:
            with urllib.request.urlopen(pods_url, timeout=30, context=ctx) as r:
                items: list[dict[str, Any]] = json.load(r)["items"]
                return items

        for pod in pods():
            meta = pod["metadata"]
            url = f"{self.server}/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
            requests = []
            if meta.get("finalizers"):
                # e.g. the Job controller's job-tracking finalizer: that controller is stopped already
                patch = json.dumps({"metadata": {"finalizers": None}}).encode()
                requests.append(("PATCH", patch, "application/merge-patch+json"))
            options = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 2}
            requests.append(("DELETE", json.dumps(options).encode(), "application/json"))
            for method, body, ctype in requests:
                req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": ctype})
                with contextlib.suppress(urllib.error.HTTPError):
                    urllib.request.urlopen(req, timeout=30, context=ctx).close()
        deadline = time.monotonic() + timeout
        while pods():
            if time.monotonic() > deadline:
                names = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods()]
                raise ControlPlaneError(f"pods not gone after {timeout:.0f}s: {', '.join(names)}")
            time.sleep(0.3)

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
        procs = self.processes()
        return len(procs) >= 3 and all(p.alive() for p in procs)

    def admin_ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _get_json(url: str, ctx: ssl.SSLContext) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5, context=ctx) as resp:
            return json.load(resp)
    except (urllib.error.URLError, OSError, ssl.SSLError, ValueError):
        return None


def _node_ready(url: str, ctx: ssl.SSLContext) -> bool:
    node = _get_json(url, ctx) or {}
    conds = node.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def _deployment_ready(url: str, ctx: ssl.SSLContext) -> bool:
    status = (_get_json(url, ctx) or {}).get("status", {})
    return bool(status.get("readyReplicas", 0) >= 1)


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

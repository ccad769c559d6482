"""A process node: stands in for the kubelet, and for nothing else.

It registers a Node, binds pending unscheduled pods to it (no scheduler runs), and runs each bound pod's containers
as local processes: `command` + `args` (images are recorded, never pulled; commands resolve on the project's virtual
environment's PATH), `env` and `envFrom` with `valueFrom` secretKeyRef / configMapKeyRef / fieldRef and `$(VAR)`
expansion, working directory, restartPolicy. A pod whose ServiceAccount token is mounted (the ServiceAccount admission
plugin's `kube-api-access-*` volume) gets a kubeconfig holding a token from the TokenRequest API, bound to the pod:
the process has exactly that ServiceAccount's RBAC. Its path is in `KUBECONFIG`; the token, CA and namespace are also
in the directory named by `PROCESS_NODE_SERVICEACCOUNT_DIR` (the stand-in for /var/run/secrets/kubernetes.io/...).

Phase and `containerStatuses[].state` (waiting, running, terminated with the exit code) go through the pods/status
subresource, so the Job controller counts completions and failures as on a real node. When a pod is deleted the node
stops its processes (SIGTERM, then SIGKILL after the grace period) and removes the pod with grace 0, as a kubelet
does; it never touches finalizers (the Job controller's batch.kubernetes.io/job-tracking included).

Not supported, and reported as CreateContainerConfigError with a message: containers without `command`, volume
mounts other than the service-account token, resourceFieldRef. Container output goes to
WORK_DIR/pods/NAMESPACE_NAME_UID/CONTAINER.log (there is no `kubectl logs`).

Run: python -m localcluster.node --kubeconfig ADMIN_KUBECONFIG --name NODE --work-dir DIR [--venv DIR] [--no-bind]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from localcluster.procs import start_time
from localcluster.rest import JSON, ApiError, Kube

log = logging.getLogger("process-node")

SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TOKEN_SECONDS = 3600
MAX_BACKOFF = 30.0


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ConfigError(Exception):
    """The pod's container cannot be configured (kubelet's CreateContainerConfigError)."""


# ---- environment ----

_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined variables are replaced, $$ escapes $, anything else stays as written."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env.get(name, m.group(0))

    return _VAR.sub(sub, value)


_FIELD = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(pod: JSON, path: str) -> str:
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status", {})
    simple: dict[str, Any] = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": "127.0.0.1",
        "status.hostIPs": "127.0.0.1",
        "status.podIP": "127.0.0.1",
        "status.podIPs": "127.0.0.1",
    }
    if path in simple:
        return str(simple[path] or "")
    m = _FIELD.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    del status
    raise ConfigError(f"fieldRef {path!r} is not supported by the process node")


# ---- one container ----


@dataclass
class Container:
    spec: JSON
    init: bool
    proc: subprocess.Popen[bytes] | None = None
    state: JSON = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: JSON = field(default_factory=dict)
    restart_count: int = 0
    started_at: str = ""
    next_start: float = 0.0
    pidfile: Path | None = None

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    def terminated(self) -> JSON | None:
        t = self.state.get("terminated")
        return t if isinstance(t, dict) else None

    def status(self) -> JSON:
        running = "running" in self.state
        s: JSON = {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": "",
            "ready": running and not self.init,
            "started": running,
            "restartCount": self.restart_count,
            "state": self.state,
        }
        if self.last_state:
            s["lastState"] = self.last_state
        if self.proc is not None:
            s["containerID"] = f"process://{self.proc.pid}"
        return s


# ---- one pod ----


class PodRunner(threading.Thread):
    """Runs one pod's containers and reports their state through pods/status."""

    def __init__(self, node: ProcessNode, pod: JSON) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.node = node
        self.pod = pod
        self.ns, self.pod_name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.dir = node.work_dir / "pods" / f"{self.ns}_{self.pod_name}_{self.uid}"
        self.restart_policy = pod["spec"].get("restartPolicy", "Always")
        self.inits = [Container(c, True) for c in pod["spec"].get("initContainers") or []]
        self.mains = [Container(c, False) for c in pod["spec"]["containers"]]
        self.stop_requested = threading.Event()
        self.grace = float(pod["spec"].get("terminationGracePeriodSeconds", 30))
        self.done = threading.Event()
        self.phase = "Pending"
        self.message = ""
        self.reason = ""
        self.start_time = now()
        deadline = pod["spec"].get("activeDeadlineSeconds")
        self.deadline = time.monotonic() + float(deadline) if deadline else None
        self.token_expires = 0.0
        self.env_base: dict[str, str] = {}

    # -- entry ----------------------------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._run()
        except Exception as e:
            log.exception("pod %s/%s: runner failed", self.ns, self.pod_name)
            self.phase, self.message = "Failed", f"process node error: {e}"
            self._kill_all(0)
            with contextlib.suppress(Exception):
                self.report()
        finally:
            self.done.set()
            self.node.wake.set()

    def request_stop(self, grace: float | None = None) -> None:
        if grace is not None:
            self.grace = min(self.grace, grace)
        self.stop_requested.set()

    def _run(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.report()
        # configuration: env and credentials, retried until it works (a Secret may be created later) or stop
        reported = ""
        while not self.stop_requested.is_set():
            try:
                self._prepare()
                break
            except ConfigError as e:
                if str(e) != reported:  # report each new reason once, not every retry
                    reported = str(e)
                    for c in self.inits + self.mains:
                        c.state = {"waiting": {"reason": "CreateContainerConfigError", "message": reported}}
                    self.report()
                self.stop_requested.wait(1.0)
        if self.stop_requested.is_set():
            self._finish_stopped()
            return
        for c in self.inits:
            if not self._run_init(c):
                return
        self.phase = "Running"
        self._supervise()

    # -- preparation --------------------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        spec = self.pod["spec"]
        sa_volumes = {
            v["name"]
            for v in spec.get("volumes") or []
            if any("serviceAccountToken" in s for s in (v.get("projected") or {}).get("sources") or [])
        }
        for c in self.inits + self.mains:
            if not c.spec.get("command"):
                raise ConfigError(
                    f"container {c.name!r} has no command: the process node runs commands, it does not pull or "
                    f"run image {c.spec.get('image', '')!r}"
                )
            for m in c.spec.get("volumeMounts") or []:
                if m["name"] not in sa_volumes:
                    raise ConfigError(
                        f"container {c.name!r} mounts volume {m['name']!r} at {m['mountPath']}: the process node "
                        "supports only the service-account token volume"
                    )
        base = {
            "PATH": f"{self.node.venv}/bin:{SYSTEM_PATH}" if self.node.venv else SYSTEM_PATH,
            "HOME": str(self.dir),
            "HOSTNAME": self.pod_name,
            "KUBERNETES_SERVICE_HOST": self.node.kube.host,
            "KUBERNETES_SERVICE_PORT": str(self.node.kube.port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(self.node.kube.port),
        }
        if sa_volumes:
            self._write_credentials()
            base["KUBECONFIG"] = str(self.dir / "kubeconfig")
            base["PROCESS_NODE_SERVICEACCOUNT_DIR"] = str(self.dir / "serviceaccount")
        self.env_base = base
        for c in self.inits + self.mains:
            self._env(c)  # resolve now, so a missing Secret is reported before anything runs

    def _write_credentials(self) -> None:
        """A token for the pod's ServiceAccount from the TokenRequest API, bound to this pod."""
        sa = self.pod["spec"].get("serviceAccountName") or "default"
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": TOKEN_SECONDS,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": self.pod_name, "uid": self.uid},
            },
        }
        try:
            tr = self.node.kube.request("POST", f"/api/v1/namespaces/{self.ns}/serviceaccounts/{sa}/token", body)
        except ApiError as e:
            raise ConfigError(f"token for serviceaccount {self.ns}/{sa}: {e.message}") from None
        token = tr["status"]["token"]
        sa_dir = self.dir / "serviceaccount"
        sa_dir.mkdir(exist_ok=True, mode=0o700)
        _write_secret(sa_dir / "token", token.encode())
        (sa_dir / "ca.crt").write_bytes(self.node.kube.ca_pem)
        (sa_dir / "namespace").write_text(self.ns)
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "cluster",
                    "cluster": {"server": self.node.kube.server, "certificate-authority": str(sa_dir / "ca.crt")},
                }
            ],
            "users": [{"name": f"system:serviceaccount:{self.ns}:{sa}", "user": {"tokenFile": str(sa_dir / "token")}}],
            "contexts": [
                {
                    "name": "pod",
                    "context": {
                        "cluster": "cluster",
                        "user": f"system:serviceaccount:{self.ns}:{sa}",
                        "namespace": self.ns,
                    },
                }
            ],
            "current-context": "pod",
        }
        _write_secret(self.dir / "kubeconfig", yaml.safe_dump(kubeconfig, sort_keys=False).encode())
        self.token_expires = time.monotonic() + TOKEN_SECONDS * 0.8

    def _env(self, c: Container) -> dict[str, str]:
        env = dict(self.env_base)
        for src in c.spec.get("envFrom") or []:
            prefix = src.get("prefix", "")
            if "configMapRef" in src:
                ref = src["configMapRef"]
                data = self._object("configmaps", ref["name"], ref.get("optional", False))
                values = dict((data or {}).get("data") or {})
            elif "secretRef" in src:
                ref = src["secretRef"]
                data = self._object("secrets", ref["name"], ref.get("optional", False))
                values = {k: _b64(v) for k, v in ((data or {}).get("data") or {}).items()}
            else:
                raise ConfigError(f"container {c.name!r}: envFrom {src} is not supported")
            env.update({prefix + k: v for k, v in values.items()})
        for var in c.spec.get("env") or []:
            name = var["name"]
            if "valueFrom" not in var:
                env[name] = expand(var.get("value", ""), env)
                continue
            vf = var["valueFrom"]
            value: str | None
            if "secretKeyRef" in vf:
                value = self._key("secrets", vf["secretKeyRef"])
            elif "configMapKeyRef" in vf:
                value = self._key("configmaps", vf["configMapKeyRef"])
            elif "fieldRef" in vf:
                value = field_value(self.pod, vf["fieldRef"]["fieldPath"])
            else:
                raise ConfigError(
                    f"container {c.name!r}: env {name!r}: {sorted(vf)} is not supported by the process node"
                )
            if value is not None:
                env[name] = value
        return env

    def _object(self, kind: str, name: str, optional: bool) -> JSON | None:
        try:
            return self.node.kube.get(f"/api/v1/namespaces/{self.ns}/{kind}/{name}")
        except ApiError as e:
            if e.status == 404:
                if optional:
                    return None
                raise ConfigError(f'{kind[:-1]} "{name}" not found') from None
            raise

    def _key(self, kind: str, ref: JSON) -> str | None:
        optional = bool(ref.get("optional", False))
        obj = self._object(kind, ref["name"], optional)
        if obj is None:
            return None
        key = ref["key"]
        if kind == "secrets":
            data = obj.get("data") or {}
            if key in data:
                return _b64(data[key])
        else:
            if key in (obj.get("data") or {}):
                return str(obj["data"][key])
            if key in (obj.get("binaryData") or {}):
                return _b64(obj["binaryData"][key])
        if optional:
            return None
        raise ConfigError(f"couldn't find key {key} in {kind[:-1].capitalize()} {self.ns}/{ref['name']}")

    # -- processes ----------------------------------------------------------------------------------------------------
    def _start(self, c: Container) -> None:
        env = self._env(c)
        argv = [expand(a, env) for a in (c.spec.get("command") or []) + (c.spec.get("args") or [])]
        cwd = c.spec.get("workingDir") or str(self.dir)
        logf = self.dir / f"{c.name}.log"
        started = now()
        try:
            with open(logf, "ab") as out:
                c.proc = subprocess.Popen(
                    argv,
                    env=env,
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as e:
            c.proc = None
            c.state = {
                "terminated": {
                    "exitCode": 128,
                    "reason": "StartError",
                    "message": f"{argv[0]}: {e.strerror}",
                    "startedAt": started,
                    "finishedAt": now(),
                }
            }
            return
        st = start_time(c.proc.pid)
        if st is not None:
            c.pidfile = self.node.work_dir / "pids" / str(c.proc.pid)
            c.pidfile.write_text(
                json.dumps(
                    {
                        "name": f"{self.ns}/{self.pod_name}/{c.name}",
                        "pid": c.proc.pid,
                        "start_time": st,
                        "log": str(logf),
                    }
                )
            )
        c.started_at = started
        c.state = {"running": {"startedAt": started}}
        log.info("pod %s/%s: container %s started (pid %d)", self.ns, self.pod_name, c.name, c.proc.pid)

    def _reap(self, c: Container) -> bool:
        """True when C's process has exited (its state is then terminated)."""
        if c.proc is None:
            return c.terminated() is not None
        rc = c.proc.poll()
        if rc is None:
            return False
        code = rc if rc >= 0 else 128 - rc
        c.state = {
            "terminated": {
                "exitCode": code,
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": c.started_at,
                "finishedAt": now(),
                "containerID": f"process://{c.proc.pid}",
            }
        }
        log.info("pod %s/%s: container %s exited %d", self.ns, self.pod_name, c.name, code)
        if c.pidfile:
            c.pidfile.unlink(missing_ok=True)
        return True

    def _should_restart(self, c: Container) -> bool:
        t = c.terminated()
        if t is None:
            return False
        if self.restart_policy == "Always":
            return True
        return self.restart_policy == "OnFailure" and int(t["exitCode"]) != 0

    def _restart_later(self, c: Container) -> None:
        c.last_state = c.state
        c.restart_count += 1
        delay = min(MAX_BACKOFF, 2.0 ** min(c.restart_count - 1, 5))
        c.next_start = time.monotonic() + delay
        c.proc = None
        c.state = {"waiting": {"reason": "CrashLoopBackOff", "message": f"back-off {delay:.0f}s restarting container"}}

    def _run_init(self, c: Container) -> bool:
        while True:
            self._start(c)
            self.report()
            while not self._reap(c):
                if self.stop_requested.wait(0.1):
                    self._finish_stopped()
                    return False
                self._refresh_token()
            if c.terminated() and c.terminated()["exitCode"] == 0:  # type: ignore[index]
                self.report()
                return True
            if self.restart_policy == "Never":
                self.phase, self.message = "Failed", f"init container {c.name} failed"
                for m in self.mains:
                    m.state = {"waiting": {"reason": "PodInitializing"}}
                self.report()
                return False
            self._restart_later(c)
            self.report()
            if self.stop_requested.wait(max(0.0, c.next_start - time.monotonic())):
                self._finish_stopped()
                return False

    def _supervise(self) -> None:
        for c in self.mains:
            self._start(c)
        self.report()
        while True:
            changed = False
            for c in self.mains:
                if c.proc is None and "waiting" in c.state and c.next_start and time.monotonic() >= c.next_start:
                    c.next_start = 0.0
                    self._start(c)
                    changed = True
                elif c.proc is not None and "running" in c.state and self._reap(c):
                    changed = True
                    if self._should_restart(c):
                        self._restart_later(c)
                elif c.proc is None and c.terminated() is not None and self._should_restart(c):
                    self._restart_later(c)  # a StartError
                    changed = True
            if self.deadline is not None and time.monotonic() > self.deadline:
                self._kill_all(self.grace)
                self.phase, self.reason = "Failed", "DeadlineExceeded"
                self.message = "Pod was active on the node longer than the specified deadline"
                self.report()
                return
            if all(c.terminated() is not None for c in self.mains):
                codes = [c.terminated()["exitCode"] for c in self.mains]  # type: ignore[index]
                self.phase = "Succeeded" if all(code == 0 for code in codes) else "Failed"
                self.report()
                return
            if changed:
                self.report()
            if self.stop_requested.wait(0.1):
                self._finish_stopped()
                return
            self._refresh_token()

    def _refresh_token(self) -> None:
        if self.token_expires and time.monotonic() > self.token_expires:
            try:
                self._write_credentials()
            except ConfigError as e:
                log.warning("pod %s/%s: token refresh failed: %s", self.ns, self.pod_name, e)
                self.token_expires = time.monotonic() + 30

    def _kill_all(self, grace: float) -> None:
        running = [c for c in self.inits + self.mains if c.proc is not None and c.proc.poll() is None]
        for c in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(c.proc.pid, signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(c.proc.poll() is None for c in running):  # type: ignore[union-attr]
            time.sleep(0.05)
        for c in running:
            if c.proc.poll() is None:  # type: ignore[union-attr]
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(c.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
                c.proc.wait()  # type: ignore[union-attr]
            self._reap(c)

    def _finish_stopped(self) -> None:
        """The pod is being deleted: stop the processes and report their final state, as the kubelet does."""
        self._kill_all(self.grace)
        for c in self.inits + self.mains:
            if c.terminated() is None:
                c.state = {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown", "finishedAt": now()}}
        codes = [c.terminated()["exitCode"] for c in self.mains]  # type: ignore[index]
        self.phase = "Succeeded" if self.restart_policy != "Always" and all(x == 0 for x in codes) else "Failed"
        with contextlib.suppress(ApiError):
            self.report()

    # -- status -------------------------------------------------------------------------------------------------------
    def report(self) -> None:
        ts = now()
        inits_done = all((c.terminated() or {}).get("exitCode") == 0 for c in self.inits)
        ready = self.phase == "Running" and all("running" in c.state for c in self.mains)

        def cond(kind: str, ok: bool, reason: str = "") -> JSON:
            c: JSON = {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": ts}
            if reason and not ok:
                c["reason"] = reason
            return c

        done_reason = "PodCompleted" if self.phase in ("Succeeded", "Failed") else "ContainersNotReady"
        status: JSON = {
            "phase": self.phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.start_time,
            "conditions": [
                cond("PodReadyToStartContainers", True),
                cond("Initialized", inits_done, "ContainersNotInitialized"),
                cond("Ready", ready, done_reason),
                cond("ContainersReady", ready, done_reason),
                cond("PodScheduled", True),
            ],
            "containerStatuses": [c.status() for c in self.mains],
        }
        if self.inits:
            status["initContainerStatuses"] = [c.status() for c in self.inits]
        if self.reason:
            status["reason"] = self.reason
        if self.message:
            status["message"] = self.message
        self.node.patch_status(self.ns, self.pod_name, self.uid, status)


def _b64(value: str) -> str:
    import base64

    return base64.b64decode(value).decode("utf-8", errors="replace")


def _write_secret(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


# ---- the node ----


class ProcessNode:
    def __init__(self, kube: Kube, name: str, work_dir: Path, venv: str = "", bind: bool = True) -> None:
        self.kube = kube
        self.name = name
        self.work_dir = work_dir
        self.venv = venv
        self.bind = bind
        self.runners: dict[str, PodRunner] = {}
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self._status_lock = threading.Lock()
        (work_dir / "pids").mkdir(parents=True, exist_ok=True)

    # -- API helpers --------------------------------------------------------------------------------------------------
    def patch_status(self, ns: str, name: str, uid: str, status: JSON) -> None:
        body = {"metadata": {"uid": uid}, "status": status}
        try:
            self.kube.request(
                "PATCH",
                f"/api/v1/namespaces/{ns}/pods/{name}/status",
                body,
                content_type="application/merge-patch+json",
            )
        except ApiError as e:
            if e.status not in (404, 409):  # gone, or replaced by a pod of the same name
                raise

    def register(self) -> None:
        node: JSON = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": {
                    "kubernetes.io/hostname": self.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(
                        platform.machine(), platform.machine()
                    ),
                    "aigate.dev/process-node": "true",
                },
            },
            "spec": {},
        }
        try:
            self.kube.request("POST", "/api/v1/nodes", node)
        except ApiError as e:
            if e.status != 409:
                raise
        self.heartbeat()

    def heartbeat(self) -> None:
        ts = now()
        cpus = str(os.cpu_count() or 1)
        mem = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 1024}Ki"
        resources = {"cpu": cpus, "memory": mem, "pods": "110", "ephemeral-storage": "10Gi"}
        status = {
            "capacity": resources,
            "allocatable": resources,
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": self.name}],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "ProcessNodeReady",
                    "message": "process node is running pods as local processes",
                    "lastHeartbeatTime": ts,
                    "lastTransitionTime": ts,
                }
            ],
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": platform.release(),
                "osImage": "aigate process node",
                "containerRuntimeVersion": "process://",
                "kubeletVersion": "process-node",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": platform.machine(),
            },
        }
        self.kube.request(
            "PATCH",
            f"/api/v1/nodes/{self.name}/status",
            {"status": status},
            content_type="application/merge-patch+json",
        )

    # -- loop ---------------------------------------------------------------------------------------------------------
    def run(self) -> None:
        self.register()
        (self.work_dir / "ready").write_text(now())
        log.info("node %s registered; bind=%s", self.name, self.bind)
        watcher = threading.Thread(target=self._watch, name="watch", daemon=True)
        watcher.start()
        last_beat = time.monotonic()
        try:
            while not self.stopping.is_set():
                self.wake.wait(2.0)
                self.wake.clear()
                if self.stopping.is_set():
                    break
                try:
                    pods = self.kube.get("/api/v1/pods")["items"]
                    self.reconcile(pods)
                    if time.monotonic() - last_beat > 30:
                        self.heartbeat()
                        last_beat = time.monotonic()
                except (ApiError, OSError) as e:
                    log.warning("reconcile: %s", e)
        finally:
            self.shutdown()

    def _watch(self) -> None:
        while not self.stopping.is_set():
            try:
                rv = self.kube.get("/api/v1/pods", limit="1")["metadata"]["resourceVersion"]
                for _event in self.kube.watch("/api/v1/pods", rv):
                    self.wake.set()
                    if self.stopping.is_set():
                        return
            except (ApiError, OSError, ValueError) as e:
                log.debug("watch: %s", e)
                self.stopping.wait(1.0)

    def reconcile(self, pods: list[JSON]) -> None:
        seen: set[str] = set()
        for pod in pods:
            meta, spec = pod["metadata"], pod["spec"]
            uid, deleting = meta["uid"], bool(meta.get("deletionTimestamp"))
            node = spec.get("nodeName")
            if not node:
                if self.bind and not deleting and spec.get("schedulerName", "default-scheduler") == "default-scheduler":
                    self._bind(pod)
                continue
            if node != self.name:
                continue
            seen.add(uid)
            runner = self.runners.get(uid)
            phase = pod.get("status", {}).get("phase", "Pending")
            if deleting:
                grace = meta.get("deletionGracePeriodSeconds")
                if runner is not None and not runner.done.is_set():
                    runner.request_stop(float(grace) if grace is not None else None)
                    continue
                self._delete(pod)
                self.runners.pop(uid, None)
                continue
            if runner is not None or phase in ("Succeeded", "Failed"):
                continue
            if phase == "Running":
                self._lost(pod)  # started by an earlier node process: its containers are gone
                continue
            runner = PodRunner(self, pod)
            self.runners[uid] = runner
            runner.start()
        for uid, runner in list(self.runners.items()):
            if uid not in seen:  # removed from the API without us (e.g. force-deleted)
                runner.request_stop(0)
                if runner.done.is_set():
                    self.runners.pop(uid)
            elif runner.done.is_set() and runner.phase in ("Succeeded", "Failed"):
                pass  # kept until the pod is deleted, so it is not started again

    def _bind(self, pod: JSON) -> None:
        meta = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.name},
        }
        try:
            self.kube.request("POST", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding", body)
            log.info("bound pod %s/%s", meta["namespace"], meta["name"])
        except ApiError as e:
            if e.status not in (404, 409):
                log.warning("bind %s/%s: %s", meta["namespace"], meta["name"], e)

    def _delete(self, pod: JSON) -> None:
        meta = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": meta["uid"]},
        }
        try:
            self.kube.request("DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", body)
            log.info("deleted pod %s/%s", meta["namespace"], meta["name"])
        except ApiError as e:
            if e.status not in (404, 409):
                log.warning("delete %s/%s: %s", meta["namespace"], meta["name"], e)

    def _lost(self, pod: JSON) -> None:
        meta = pod["metadata"]
        statuses = []
        for c in pod["spec"]["containers"]:
            statuses.append(
                {
                    "name": c["name"],
                    "image": c.get("image", ""),
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown", "finishedAt": now()}},
                }
            )
        status = {
            "phase": "Failed",
            "message": "the process node restarted; the pod's processes are gone",
            "containerStatuses": statuses,
        }
        self.patch_status(meta["namespace"], meta["name"], meta["uid"], status)

    def shutdown(self) -> None:
        self.stopping.set()
        for runner in list(self.runners.values()):
            runner.request_stop(2.0)
        for runner in list(self.runners.values()):
            runner.done.wait(10.0)
        for pidfile in (self.work_dir / "pids").glob("*"):
            pidfile.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcluster.node", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", required=True, help="an admin kubeconfig for the cluster")
    parser.add_argument("--name", default="process-node", help="the Node's name")
    parser.add_argument("--work-dir", required=True, type=Path, help="where pods' files, logs and pid files go")
    parser.add_argument("--venv", default=sys.prefix, help="the virtualenv whose bin/ leads pods' PATH")
    parser.add_argument(
        "--no-bind", dest="bind", action="store_false", help="do not bind pending pods (a scheduler runs)"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(threadName)s: %(message)s"
    )
    work_dir: Path = args.work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "ready").unlink(missing_ok=True)
    kube = Kube(args.kubeconfig, secrets_dir=work_dir / "client")
    node = ProcessNode(kube, args.name, work_dir, venv=args.venv, bind=args.bind)

    def on_signal(signum: int, _frame: object) -> None:
        node.stopping.set()
        node.wake.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    node.run()
    shutil.rmtree(work_dir / "client", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""aigate's operator on a local cluster: the CRD, a signing key, a webhook serving certificate, the operator and
`aigate webhook` as two processes on this machine, and the webhook configurations pointing at the webhook over TLS
on 127.0.0.1 (the API server runs here too). The gate Jobs it creates run as containers on the real node, from
the image `make image` built.

Used by the operator's cluster tests and by `make cluster-demo`; the chart does the same in a real cluster
with a Service clientConfig instead of a URL.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcluster.controlplane import free_ports
from localcluster.pki import CA

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "aiworkloads.aigate.dev.yaml"
POLICY_CRD = ROOT / "crds" / "aigatepolicies.aigate.dev.yaml"
OPERATOR_NAMESPACE = "aigate-system"
ACCEPTORS = "aigate:risk-acceptors"

Kubectl = Callable[..., "subprocess.CompletedProcess[str]"]


def venv_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def install_crd(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kubectl("wait", "--for=condition=Established", "crd/aiworkloads.aigate.dev", "--timeout=60s")


def install_policy_crd(kubectl: Kubectl) -> None:
    """The AIGatePolicy CRD. Before the operator starts: it reads AIGatePolicies only when their CRD is there then."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(POLICY_CRD))
    kubectl("wait", "--for=condition=Established", "crd/aigatepolicies.aigate.dev", "--timeout=60s")


def grant_public_key_readers(kubectl: Kubectl, namespace: str = OPERATOR_NAMESPACE) -> None:
    """As the chart does: every authenticated user may read the public key the operator publishes in NAMESPACE
    (`kubectl aigate evidence --verify` reads it there)."""
    from aigate.controller.signingkey import public_key_reader_rbac

    items = public_key_reader_rbac(namespace)
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))


def _http(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError as e:
        return 0, str(e)


def _tail(log: Path, lines: int) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes] | None, sig: int, grace: float) -> None:
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _spawn(command: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - handed to the child for its lifetime
    proc = subprocess.Popen(
        [venv_bin("aigate"), command],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out.close()
    return proc


@dataclass
class OperatorProcess:
    """The operator (reconciliation, the certificate rotator) and `aigate webhook` (both admission webhooks), as
    two processes with the same settings; the webhook has its own probes and metrics port."""

    state_dir: Path
    env: dict[str, str]
    webhook_port: int
    metrics_port: int
    webhook_metrics_port: int
    ca_pem: bytes
    public_key: Path
    log: Path
    webhook_log: Path
    proc: subprocess.Popen[bytes] | None = None
    webhook_proc: subprocess.Popen[bytes] | None = None
    restarts: int = field(default=0)

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    @property
    def webhook_metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.webhook_metrics_port}"

    @property
    def webhook_env(self) -> dict[str, str]:
        """The operator's settings, less the signing key (the webhook verifies with the public key only), with the
        webhook's own probes and metrics port."""
        env = {k: v for k, v in self.env.items() if k != "AIGATE_SIGNING_KEY"}
        return {**env, "AIGATE_METRICS_PORT": str(self.webhook_metrics_port)}

    def start(self) -> None:
        """Whichever of the two is not running (a test may have killed the operator alone)."""
        if not self.alive():
            self.proc = _spawn("operator", self.env, self.log)
        if not self.webhook_alive():
            self.webhook_proc = _spawn("webhook", self.webhook_env, self.webhook_log)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def webhook_alive(self) -> bool:
        return self.webhook_proc is not None and self.webhook_proc.poll() is None

    def http(self, path: str) -> tuple[int, str]:
        """The operator's probes and metrics."""
        return _http(self.metrics_url + path)

    def webhook_http(self, path: str) -> tuple[int, str]:
        """The webhook's probes and metrics (admission decisions, latency, caches, HTTP versions)."""
        return _http(self.webhook_metrics_url + path)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"aigate operator exited: {self.tail()}")
            if not self.webhook_alive():
                raise RuntimeError(f"aigate webhook exited: {self.tail(webhook=True)}")
            if self.http("/readyz")[0] == 200 and self.webhook_http("/readyz")[0] == 200:
                return
            time.sleep(0.3)
        raise RuntimeError(
            f"aigate not ready after {timeout:.0f}s: operator {self.tail()}\nwebhook {self.tail(webhook=True)}"
        )

    def stop(self, sig: int = signal.SIGTERM, grace: float = 15.0) -> None:
        _stop(self.proc, sig, grace)
        _stop(self.webhook_proc, sig, grace)
        self.proc = self.webhook_proc = None

    def kill(self) -> None:
        """The operator, as a crash would: no chance to finish anything. The webhook, a process of its own, runs on."""
        _stop(self.proc, signal.SIGKILL, 5.0)
        self.proc = None

    def kill_webhook(self) -> None:
        _stop(self.webhook_proc, signal.SIGKILL, 5.0)
        self.webhook_proc = None

    def restart(self) -> None:
        """The operator alone: the webhook does not depend on it."""
        _stop(self.proc, signal.SIGTERM, 15.0)
        self.proc = None
        self.restarts += 1
        self.start()

    def tail(self, lines: int = 40, *, webhook: bool = False) -> str:
        return _tail(self.webhook_log if webhook else self.log, lines)

    def logs(self) -> str:
        """Both processes' logs, for what must appear (or never appear) in either."""
        return "\n".join(p.read_text(errors="replace") for p in (self.log, self.webhook_log) if p.exists())


def prepare_operator(
    state_dir: Path,
    kubeconfig: Path,
    *,
    timer_interval_s: float = 2.0,
    acceptor_groups: str = ACCEPTORS,
    extra_env: dict[str, str] | None = None,
    gate_image: str = "aigate:dev",
) -> OperatorProcess:
    """Keys, certificates and settings for an operator process (not started)."""
    from aigate.evidence.keys import write_keypair

    state_dir.mkdir(parents=True, exist_ok=True)
    key, pub = write_keypair(state_dir / "keys", "ecdsa-p256", overwrite=True)
    certs = state_dir / "webhook-tls"
    certs.mkdir(exist_ok=True)
    ca = CA.create(certs, "aigate-webhook-ca")
    pair = ca.issue(certs, "webhook", "127.0.0.1", dns_names=("localhost",), ips=("127.0.0.1",), server=True)
    webhook_port, metrics_port, webhook_metrics_port = free_ports(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGATE_")}
    env.update(
        {
            "KUBECONFIG": str(kubeconfig),
            "AIGATE_SIGNING_KEY": str(key),
            "AIGATE_PUBLIC_KEY": str(pub),
            "AIGATE_OPERATOR_NAMESPACE": OPERATOR_NAMESPACE,
            # gate Jobs run in containers on the node, from the image `make image` built from this tree
            "AIGATE_GATE_IMAGE": gate_image,
            "AIGATE_WEBHOOK_ADDR": "127.0.0.1",
            "AIGATE_WEBHOOK_HOST": "127.0.0.1",
            "AIGATE_WEBHOOK_PORT": str(webhook_port),
            "AIGATE_WEBHOOK_CERT": str(pair.cert),
            "AIGATE_WEBHOOK_KEY": str(pair.key),
            "AIGATE_METRICS_ADDR": "127.0.0.1",
            "AIGATE_METRICS_PORT": str(metrics_port),
            "AIGATE_TIMER_INTERVAL_SECONDS": str(timer_interval_s),
            "AIGATE_ACCEPTOR_GROUPS": acceptor_groups,
            "AIGATE_JOB_DEADLINE_SECONDS": "600",
        }
    )
    env.update(extra_env or {})
    return OperatorProcess(
        state_dir=state_dir,
        env=env,
        webhook_port=webhook_port,
        metrics_port=metrics_port,
        webhook_metrics_port=webhook_metrics_port,
        ca_pem=ca.pair.cert.read_bytes(),
        public_key=pub,
        log=state_dir / "operator.log",
        webhook_log=state_dir / "webhook.log",
    )


def webhook_configurations(op: OperatorProcess) -> list[dict[str, Any]]:
    from aigate.webhook.configurations import mutating_configuration, validating_configuration

    client = {
        "url": f"https://127.0.0.1:{op.webhook_port}",
        "caBundle": base64.b64encode(op.ca_pem).decode(),
    }
    return [
        validating_configuration(client, operator_namespace=OPERATOR_NAMESPACE),
        mutating_configuration(client, operator_namespace=OPERATOR_NAMESPACE),
    ]


def register_webhooks(kubectl: Kubectl, op: OperatorProcess) -> None:
    docs = webhook_configurations(op)
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}),
    )


def unregister_webhooks(kubectl: Kubectl) -> None:
    kubectl("delete", "validatingwebhookconfiguration", "aigate", "--ignore-not-found", check=False)
    kubectl("delete", "mutatingwebhookconfiguration", "aigate", "--ignore-not-found", check=False)

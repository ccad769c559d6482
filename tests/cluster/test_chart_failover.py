"""Losing one of the chart's two webhook replicas during a stream of labelled rollouts (issue 12).

The chart is installed on the real node with `webhook.replicas: 2`. A few clients send labelled
`kubectl create --dry-run=server` requests without pause, half for a Deployment whose label names no AIWorkload (the
webhook refuses it in aigate's words) and half for one whose AIWorkload is under `enforcement: warn` (the webhook
admits it with aigate's warning). Either answer can only come from the webhook: with `failurePolicy: Fail`, a
webhook the API server cannot reach makes the request fail with "failed calling webhook" instead.

- Graceful: one webhook pod is deleted as Kubernetes removes a replica (preStop sleep while the endpoint leaves the
  Service, then SIGTERM; Granian finishes what is in flight and closes its connections). Every request gets its
  right answer.
- Hard: one webhook container's process is SIGKILLed from this machine (as an OOM kill or a crash does). A review
  in flight on it cannot be saved (the API server does not retry it): whatever the kill costs must fail closed as a
  webhook call error, never be admitted; the cost is counted and printed, and charts/aigate/README.md says it.

Both: the victim is the pod that was serving the stream; the other pods (the survivor, and a replacement) were sent
reviews until the victim was gone or back (their own counters, read from their metrics ports on the pod bridge); the
Deployment is back to two ready replicas."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flows
import pytest
import release
import yaml
from clusterkit import governed, kubectl_aigate
from release import NS, RELEASE

from localcluster.testing import Cluster, kubectl_path

VALUES = {"crds": {"install": True, "keep": True}, "webhook": {"replicas": 2}}
CLIENTS = 4
"""Concurrent kubectl clients (two per answer)."""
BEFORE_S, AFTER_S = 4.0, 6.0
"""The stream runs this long before the kill and this long after the replica is back."""


@dataclass(frozen=True)
class _Nowhere:
    url: str = "http://127.0.0.1:9"


NO_SIMULATOR: Any = _Nowhere()
"""The warned workload's models: the pod's own loopback, closed (its gate run errors at once, costing no CPU)."""


@pytest.fixture(scope="module")
def installed(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    values = tmp_path_factory.mktemp("values") / "failover-values.yaml"
    values.write_text(yaml.safe_dump(VALUES))
    with release.installed(cluster, values) as tool:
        yield tool


@pytest.fixture(scope="module")
def team(cluster: Cluster, installed: Path) -> Iterator[str]:
    """A namespace with one AIWorkload under `enforcement: warn`: its rollouts are admitted with aigate's warning.
    An AIGatePolicy with the floor `warn` lets that mode apply (without one, the platform default's `enforce`
    would refuse them)."""
    ns = cluster.create_namespace("failover")
    with governed(cluster, ns, f"adopting-{ns}", enforcement="warn"):
        flows.setup_namespace(cluster, ns, "warned")
        flows.apply(cluster, flows.workload(ns, "warned", NO_SIMULATOR, approval=False, enforcement="warn"))
        probe = json.dumps(flows.deployment(ns, "probe", "warned"))
        cluster.wait_for(
            lambda: cluster.kubectl("create", "--dry-run=server", "-f", "-", input=probe, check=False).returncode == 0,
            timeout=60,
            what="the webhook admitting the warned workload's rollouts under the AIGatePolicy",
        )
        yield ns
        release.free_workloads(cluster, ns)
    cluster.delete_namespace(ns)


def ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def two_ready(cluster: Cluster, besides: set[str]) -> list[dict[str, Any]] | None:
    """Two ready webhook pods, none of them in `besides`, and the Deployment saying so."""
    pods = [p for p in release.pods(cluster, "webhook") if ready(p)]
    dep = cluster.get_json("deployment", f"{RELEASE}-webhook", "-n", NS)
    fresh = not {p["metadata"]["name"] for p in pods} & besides
    if len(pods) == 2 and fresh and (dep.get("status") or {}).get("readyReplicas") == 2:
        return pods
    return None


def decisions(pod: dict[str, Any]) -> float:
    """How many rollout reviews the pod itself was sent (its metrics port, on the pod bridge)."""
    [port] = [p["containerPort"] for c in pod["spec"]["containers"] for p in c["ports"] if p["name"] == "metrics"]
    url = f"http://{pod['status']['podIP']}:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("aigate_admission_http_requests_total{") and 'webhook="rollouts.aigate.dev"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@dataclass
class Answer:
    kind: str  # "refused" or "admitted": what the webhook must answer
    at: float
    ok: bool
    webhook_error: bool
    stderr: str


@dataclass
class Stream:
    """CLIENTS kubectl loops of labelled dry-run creates, each answer checked as it comes."""

    cluster: Cluster
    ns: str
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def ask(self, kind: str, i: int) -> Answer:
        label = "nobody" if kind == "refused" else "warned"
        doc = flows.deployment(self.ns, f"{kind}-{i}", label)
        done = subprocess.run(
            [kubectl_path(), "create", "--dry-run=server", "-f", "-"],
            input=json.dumps(doc),
            capture_output=True,
            text=True,
            env=self.cluster.env(),
            timeout=60,
        )
        if kind == "refused":
            ok = done.returncode != 0 and f"AIWorkload {self.ns}/nobody not found" in done.stderr
        else:
            ok = done.returncode == 0 and f"AIWorkload {self.ns}/warned is not cleared for rollout" in done.stderr
        return Answer(kind, time.monotonic(), ok, "failed calling webhook" in done.stderr, done.stderr.strip())

    def _client(self, kind: str) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            self.answers.append(self.ask(kind, i))

    def __enter__(self) -> Stream:
        for n in range(CLIENTS):
            t = threading.Thread(target=self._client, args=("refused" if n % 2 else "admitted",), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def since(self, t: float) -> int:
        return sum(1 for a in self.answers if a.at >= t)


def container_pid(pod: dict[str, Any]) -> int:
    """The host PID of the pod's webhook container (containerd runs it on this machine, in its own cgroup)."""
    [status] = pod["status"]["containerStatuses"]
    cid = status["containerID"].split("://", 1)[1]
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cgroup = (proc / "cgroup").read_text()
            ppid = int(re.search(r"^PPid:\s*(\d+)", (proc / "status").read_text(), re.M).group(1))  # type: ignore[union-attr]
        except (OSError, AttributeError):
            continue
        if cid in cgroup:
            pids.append((int(proc.name), ppid))
    inside = {p for p, _ in pids}
    roots = [p for p, pp in pids if pp not in inside]
    assert len(roots) == 1, f"container {cid[:12]}: processes {pids}"
    return roots[0]


def failover(cluster: Cluster, team: str, kill: Callable[[dict[str, Any]], None]) -> tuple[Stream, dict[str, Any]]:
    """Run the stream, kill the replica that is serving it with `kill`, wait for two ready replicas again.

    The API server multiplexes its reviews over one HTTP/2 connection, which kube-proxy pinned to one pod when it
    was opened: the other replica may be idle. The victim is the one whose decision count grew before the kill, so
    that the kill costs what it can cost."""
    pods = cluster.wait_for(lambda: two_ready(cluster, set()), timeout=180, what="two ready webhook pods")
    with Stream(cluster, team) as stream:
        start = [decisions(p) for p in pods]
        time.sleep(BEFORE_S)
        grew = [decisions(p) - n for p, n in zip(pods, start, strict=True)]
        victim, survivor = pods if grew[0] >= grew[1] else pods[::-1]
        served_before = decisions(survivor)
        killed_at = time.monotonic()
        kill(victim)
        name = victim["metadata"]["name"]
        back = cluster.wait_for(
            (lambda: _restarted(cluster, victim)) if kill is hard_kill else (lambda: _replaced(cluster, victim)),
            timeout=120,
            interval=0.5,
            what=f"the webhook Deployment back to two ready replicas, {name} gone or restarted",
        )
        back_at = time.monotonic()
        # the survivor's count since the kill, and all of a replacement's (it started after the kill)
        others = {p["metadata"]["name"]: decisions(p) for p in back if p["metadata"]["name"] != name}
        others[survivor["metadata"]["name"]] -= served_before
        time.sleep(AFTER_S)
    report = {
        "victim": name,
        "survivor": survivor["metadata"]["name"],
        "decisions_before_kill": sorted(grew, reverse=True),
        "requests": len(stream.answers),
        "kill_to_back_s": round(back_at - killed_at, 1),
        "answered_meanwhile": stream.since(killed_at) - stream.since(back_at),
        "others_decisions_meanwhile": others,
        "pods_after": sorted(p["metadata"]["name"] for p in back),
    }
    return stream, report


def _replaced(cluster: Cluster, victim: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Two ready pods again, without the victim, and the victim gone from the API (its preStop sleep over, its
    server stopped): the whole time it was leaving is inside the window."""
    name = victim["metadata"]["name"]
    if cluster.kubectl("get", "pod", name, "-n", NS, "--ignore-not-found", "-o", "name").stdout.strip():
        return None
    return two_ready(cluster, {name})


def _restarted(cluster: Cluster, victim: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Two ready pods again, the victim's container restarted in its pod (a killed container is not replaced)."""
    pods = two_ready(cluster, set())
    if pods is None:
        return None
    again = next((p for p in pods if p["metadata"]["name"] == victim["metadata"]["name"]), None)
    if again is None or again["status"]["containerStatuses"][0]["restartCount"] < 1:
        return None
    return pods


def graceful_delete(cluster: Cluster) -> Callable[[dict[str, Any]], None]:
    def kill(pod: dict[str, Any]) -> None:
        cluster.kubectl("delete", "pod", pod["metadata"]["name"], "-n", NS, "--wait=false")

    return kill


def hard_kill(pod: dict[str, Any]) -> None:
    os.kill(container_pid(pod), signal.SIGKILL)


def others_served(report: dict[str, Any]) -> bool:
    """Pods other than the victim were sent reviews between the kill and the victim's end (gone, or restarted)."""
    return sum(report["others_decisions_meanwhile"].values()) > 0


def summary(stream: Stream, report: dict[str, Any]) -> str:
    wrong = [a for a in stream.answers if not a.ok]
    failed = [a for a in wrong if a.webhook_error]
    report = {**report, "wrong": len(wrong), "webhook_errors": len(failed)}
    samples = sorted({a.stderr[:300] for a in wrong})[:5]
    return json.dumps(report) + "".join(f"\n  {s}" for s in samples)


def test_deleting_one_webhook_pod_loses_no_request_while_the_other_serves(
    cluster: Cluster, installed: Path, team: str
) -> None:
    stream, report = failover(cluster, team, graceful_delete(cluster))
    print(f"\ngraceful delete: {summary(stream, report)}")
    assert {a.kind for a in stream.answers} == {"refused", "admitted"}
    assert report["requests"] >= 20, summary(stream, report)
    assert all(a.ok for a in stream.answers), summary(stream, report)
    assert report["decisions_before_kill"][0] > 0, summary(stream, report)
    assert report["answered_meanwhile"] > 0 and others_served(report), summary(stream, report)
    assert report["victim"] not in report["pods_after"]
    # the replacement was Ready (in the Service) only once its index had listed what decisions read
    [new] = set(report["pods_after"]) - {report["survivor"]}
    log = cluster.pod_log(NS, new)
    for watch in ("namespaces", "evidence", "aiworkloads", "configmaps"):
        assert f"{watch} listed" in log, log[-2000:]


def test_a_hard_killed_webhook_container_never_admits_what_must_be_refused(
    cluster: Cluster, installed: Path, team: str
) -> None:
    stream, report = failover(cluster, team, hard_kill)
    text = summary(stream, report)
    print(f"\nhard kill: {text}")
    wrong = [a for a in stream.answers if not a.ok]
    # fail closed: every request the kill cost was refused by the API server as a webhook call error, not admitted
    assert all(a.webhook_error for a in wrong), text
    assert report["decisions_before_kill"][0] > 0, text
    assert report["answered_meanwhile"] > 0 and others_served(report), text
    assert report["victim"] in report["pods_after"], "a killed container is restarted in its pod"


def test_with_both_replicas_gone_check_install_says_why_and_waits_for_their_return(
    cluster: Cluster, installed: Path, team: str
) -> None:
    """`kubectl aigate check-install --wait`, what a script or an installer without hooks waits on: with no webhook
    pod it names the failed route and exits 1 (and a labelled rollout fails closed); it exits 0 once a replica is
    back and the API server reaches it, and the first rollout after that is answered by aigate."""
    deployment = f"{RELEASE}-webhook"
    cluster.kubectl("scale", "deployment", deployment, "-n", NS, "--replicas=0")
    try:
        # gone from the API, not only terminating: kube-proxy keeps sending to terminating endpoints while no ready
        # one is left, and they still answer during their preStop sleep and shutdown
        selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=webhook"
        cluster.wait_for(
            lambda: not cluster.get_json("pods", "-n", NS, "-l", selector)["items"],
            timeout=120,
            what="no webhook pod left, terminating ones included",
        )
        down = kubectl_aigate(cluster, "check-install", "--operator-namespace", NS, "--wait", "3s")
        assert down.returncode == 1, down.stdout + down.stderr
        last = down.stderr.strip().splitlines()[-1]
        assert last.startswith("admission does not work after "), down.stderr
        assert f"the API server cannot call aigate's webhooks via {NS}/{deployment}: " in last, last
        assert "failed calling webhook" in last, last
        refused = Stream(cluster, team).ask("admitted", 0)
        assert not refused.ok and refused.webhook_error, refused.stderr
    finally:
        cluster.kubectl("scale", "deployment", deployment, "-n", NS, "--replicas=2")
    up = kubectl_aigate(cluster, "check-install", "--operator-namespace", NS, "--wait", "180s")
    assert up.returncode == 0, up.stderr
    assert "waiting (" in up.stderr, "it waited: no replica was ready when it started"
    assert up.stdout.startswith("admission works (")
    after = [Stream(cluster, team).ask(kind, 0) for kind in ("refused", "admitted")]
    assert all(a.ok for a in after), [a.stderr for a in after]

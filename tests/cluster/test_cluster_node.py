"""The real node (kubelet, containerd, runc, CNI bridge, kube-proxy, CoreDNS) does what any node does: volumes, env
and projected tokens; runAsNonRoot, a read-only root filesystem and memory limits enforced; logs and exec; Services
by DNS name and the API server through `kubernetes.default`; Deployments roll out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from localcluster.testing import Cluster, cluster_image
from localcluster.versions import Versions


def pod(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": cluster_image(), "command": command}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def apply(cluster: Cluster, namespace: str, *docs: dict[str, Any]) -> None:
    cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(docs)})
    )


def finished(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    """The pod's status once its container has terminated."""

    def probe() -> dict[str, Any] | None:
        st: dict[str, Any] = cluster.get_json("pod", name, "-n", namespace).get("status", {})
        cs = st.get("containerStatuses") or []
        return st if cs and "terminated" in cs[0]["state"] else None

    return cluster.wait_for(probe, what=f"pod {name} to finish")


def test_the_node_is_a_real_kubelet_on_containerd(cluster: Cluster) -> None:
    [node] = cluster.get_json("nodes")["items"]
    info = node["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("containerd://")
    if cluster.control_plane is not None:
        assert info["kubeletVersion"] == Versions.load().kubernetes
        assert info["containerRuntimeVersion"] == f"containerd://{Versions.load().containerd.lstrip('v')}"
    assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
    dns = cluster.get_json("deployment", "coredns", "-n", "kube-system")
    assert dns["status"]["readyReplicas"] == 1


SEES = r"""
import json, os, pathlib
token = pathlib.Path("/var/run/secrets/tokens/api").read_text()
print(json.dumps({
    "secret_file": pathlib.Path("/etc/creds/password").read_text(),
    "config_file": pathlib.Path("/etc/settings/mode").read_text(),
    "env_password_matches": os.environ["PASSWORD"] == "s3cret-value",
    "token_is_jwt": token.count(".") == 2,
    "uid": os.getuid(),
    "ca_mounted": pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt").is_file(),
}))
"""


def test_secret_and_configmap_volumes_env_and_projected_token(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "secret", "generic", "creds", "-n", namespace, "--from-literal=password=s3cret-value")
    cluster.kubectl("create", "configmap", "settings", "-n", namespace, "--from-literal=mode=strict")
    spec = {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532},
        "container": {
            "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}],
            "volumeMounts": [
                {"name": "creds", "mountPath": "/etc/creds", "readOnly": True},
                {"name": "settings", "mountPath": "/etc/settings", "readOnly": True},
                {"name": "token", "mountPath": "/var/run/secrets/tokens", "readOnly": True},
            ],
        },
        "volumes": [
            {"name": "creds", "secret": {"secretName": "creds"}},
            {"name": "settings", "configMap": {"name": "settings"}},
            {
                "name": "token",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"path": "api", "audience": "aigate-test", "expirationSeconds": 3600}}
                    ]
                },
            },
        ],
    }
    apply(cluster, namespace, pod("sees", ["python", "-c", SEES], **spec))
    st = finished(cluster, namespace, "sees")
    assert st["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0, cluster.pod_log(namespace, "sees")
    seen = json.loads(cluster.pod_log(namespace, "sees"))
    assert seen == {
        "secret_file": "s3cret-value",
        "config_file": "strict",
        "env_password_matches": True,
        "token_is_jwt": True,
        "uid": 65532,
        "ca_mounted": True,
    }


def test_run_as_non_root_refuses_a_root_container(cluster: Cluster, namespace: str) -> None:
    spec = {"securityContext": {"runAsNonRoot": True, "runAsUser": 0}}
    apply(cluster, namespace, pod("root", ["true"], **spec))

    def refused() -> dict[str, Any] | None:
        cs = cluster.get_json("pod", "root", "-n", namespace).get("status", {}).get("containerStatuses") or []
        w = cs[0]["state"].get("waiting") if cs else None
        return w if w and w.get("reason") == "CreateContainerConfigError" else None

    w = cluster.wait_for(refused, what="the kubelet to refuse a root container")
    assert "non-root" in w["message"]


def test_read_only_root_filesystem_is_enforced(cluster: Cluster, namespace: str) -> None:
    script = (
        "import os\ntry:\n    open('/opt/x', 'w')\nexcept OSError as e:\n    print(e.errno, os.strerror(e.errno))\n"
    )
    script += "open('/tmp/ok', 'w').write('y'); print('tmp ok')"
    spec = {
        "container": {
            "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        },
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    apply(cluster, namespace, pod("ro", ["python", "-c", script], **spec))
    finished(cluster, namespace, "ro")
    assert cluster.pod_log(namespace, "ro") == "30 Read-only file system\ntmp ok\n"


def test_a_pod_over_its_memory_limit_is_oom_killed(cluster: Cluster, namespace: str) -> None:
    script = "chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 1024 * 1024))\n"
    spec = {"container": {"resources": {"limits": {"memory": "64Mi"}, "requests": {"memory": "64Mi"}}}}
    apply(cluster, namespace, pod("hog", ["python", "-c", script], **spec))
    term = finished(cluster, namespace, "hog")["containerStatuses"][0]["state"]["terminated"]
    assert (term["reason"], term["exitCode"]) == ("OOMKilled", 137)


def test_kubectl_logs_and_exec(cluster: Cluster, namespace: str) -> None:
    script = "import sys, time; print('hello from the pod', flush=True); time.sleep(3600)"
    apply(cluster, namespace, pod("talk", ["python", "-c", script]))
    cluster.kubectl("wait", "--for=condition=Ready", "pod/talk", "-n", namespace, "--timeout=120s")
    cluster.wait_for(lambda: "hello from the pod" in cluster.pod_log(namespace, "talk"), what="the pod's output")
    out = cluster.kubectl(
        "exec", "-n", namespace, "talk", "--", "python", "-c", "import os; print(os.getuid(), os.getcwd())"
    )
    assert out.stdout == "65532 /tmp\n"
    failed = cluster.kubectl("exec", "-n", namespace, "talk", "--", "python", "-c", "raise SystemExit(3)", check=False)
    assert failed.returncode == 3


REACH = r"""
import json, pathlib, ssl, urllib.request
sa = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount")
ns = (sa / "namespace").read_text()
answer = urllib.request.urlopen("http://echo:8080/", timeout=10).read().decode()
req = urllib.request.Request(
    f"https://kubernetes.default.svc/api/v1/namespaces/{ns}/services/echo",
    headers={"Authorization": "Bearer " + (sa / "token").read_text()},
)
ctx = ssl.create_default_context(cafile=str(sa / "ca.crt"))
svc = json.load(urllib.request.urlopen(req, timeout=10, context=ctx))
print(json.dumps({"echo": answer, "service": svc["metadata"]["name"]}))
"""


def test_a_pod_reaches_a_service_by_name_and_the_api_server_with_its_token(cluster: Cluster, namespace: str) -> None:
    # the pod's ServiceAccount may read Services in its namespace, nothing else
    cluster.kubectl("create", "role", "svc-reader", "-n", namespace, "--verb=get", "--resource=services")
    sa = f"--serviceaccount={namespace}:default"
    cluster.kubectl("create", "rolebinding", "svc-reader", "-n", namespace, "--role=svc-reader", sa)
    server = "import http.server as h\nclass H(h.BaseHTTPRequestHandler):\n    def do_GET(self):\n"
    server += "        self.send_response(200); self.end_headers(); self.wfile.write(b'echo says hi')\n"
    server += "h.HTTPServer(('', 8080), H).serve_forever()"
    echo = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "echo"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "echo"}},
            "template": {
                "metadata": {"labels": {"app": "echo"}},
                "spec": {
                    "containers": [
                        {
                            "name": "echo",
                            "image": cluster_image(),
                            "command": ["python", "-c", server],
                            "ports": [{"containerPort": 8080}],
                            "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                        }
                    ]
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "echo"},
        "spec": {"selector": {"app": "echo"}, "ports": [{"port": 8080, "targetPort": 8080}]},
    }
    apply(cluster, namespace, echo, service)
    # the Deployment rolls out: both replicas Ready
    cluster.kubectl("rollout", "status", "deployment/echo", "-n", namespace, "--timeout=120s")
    dep = cluster.get_json("deployment", "echo", "-n", namespace)
    assert (dep["status"]["readyReplicas"], dep["status"]["updatedReplicas"]) == (2, 2)

    apply(cluster, namespace, pod("reach", ["python", "-c", REACH]))
    st = finished(cluster, namespace, "reach")
    log = cluster.pod_log(namespace, "reach")
    assert st["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0, log
    assert json.loads(log) == {"echo": "echo says hi", "service": "echo"}


@pytest.mark.parametrize("code", [0, 3])
def test_a_jobs_pod_exit_code_is_reported(cluster: Cluster, namespace: str, code: int) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"exit-{code}"},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": pod("x", ["python", "-c", f"raise SystemExit({code})"])["spec"]},
        },
    }
    apply(cluster, namespace, job)
    cluster.wait_for_condition("job", f"exit-{code}", namespace, "Complete" if code == 0 else "Failed")
    [p] = cluster.get_json("pods", "-n", namespace, "-l", f"job-name=exit-{code}")["items"]
    assert p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == code


def test_the_aigate_image_runs_aigate(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl(
        "run",
        "v",
        "-n",
        namespace,
        f"--image={cluster_image()}",
        "--restart=Never",
        "--command",
        "--",
        "aigate",
        "--version",
    )
    finished(cluster, namespace, "v")
    assert cluster.pod_log(namespace, "v").startswith("aigate ")
    p = cluster.get_json("pod", "v", "-n", namespace)
    assert p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0

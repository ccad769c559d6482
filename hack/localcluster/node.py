"""The real node: containerd (with runc and the CNI bridge), the kubelet, kube-proxy (nftables) and CoreDNS, for a
control plane started with a node (see localcluster.controlplane). Everything lives in STATE/node/ except what
containerd, the kernel and the kubelet keep machine-wide (localcluster.host cleans those up).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from localcluster.host import BRIDGE, CONTAINERD_STATE, GATEWAY, POD_CIDR
from localcluster.kubeconfig import write_kubeconfig
from localcluster.pki import CA
from localcluster.procs import Proc, spawn
from localcluster.versions import NodeBinaries, aigate_image_archive

NODE_NAME = "aigate-node"
CLUSTER_DNS = "10.0.0.10"
CLUSTER_DOMAIN = "cluster.local"
SOCKET = CONTAINERD_STATE / "containerd.sock"
K8S_NAMESPACE = "k8s.io"  # containerd's namespace for the CRI


class NodeError(RuntimeError):
    """The node could not start."""


def image_ref(archive_dir: Path) -> str:
    """The reference an image archive was built as (hack/build-*.sh write it beside the archive)."""
    return (archive_dir / "ref").read_text().strip()


def containerd_ref(ref: str) -> str:
    """The name containerd gives REF on import (a bare 'aigate:dev' is docker.io/library/aigate:dev)."""
    first = ref.split("/")[0]
    if "/" not in ref:
        return f"docker.io/library/{ref}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{ref}"
    return ref


class Node:
    def __init__(self, state_dir: Path, binaries: NodeBinaries) -> None:
        self.dir = state_dir / "node"
        self.binaries = binaries
        self.pause_ref = image_ref(binaries.pause_image)
        self.coredns_ref = image_ref(binaries.coredns_image)

    @property
    def containerd_root(self) -> Path:
        return self.dir / "containerd"

    @property
    def kubelet_root(self) -> Path:
        return self.dir / "kubelet"

    def dirs(self) -> tuple[Path, ...]:
        """Where the node mounts things (unmounted by a stop)."""
        return (self.dir,)

    # ---- configuration ------------------------------------------------------------------------------------------

    def write_config(self, ca: CA, pki: Path, server: str, ports: dict[str, int]) -> None:
        """containerd's config, the CNI network, the kubelet's and kube-proxy's configurations and credentials."""
        d = self.dir
        (d / "cni" / "net.d").mkdir(parents=True, exist_ok=True)
        (d / "pod-logs").mkdir(parents=True, exist_ok=True)
        ca_pem = ca.pair.cert.read_bytes()
        kubelet_client = ca.issue(
            pki, "kubelet-client", f"system:node:{NODE_NAME}", organizations=("system:nodes",), client=True
        )
        kubelet_serving = ca.issue(pki, "kubelet", NODE_NAME, dns_names=(NODE_NAME,), ips=(GATEWAY,), server=True)
        proxy = ca.issue(pki, "kube-proxy", "system:kube-proxy", client=True)
        for name, pair in (("kubelet", kubelet_client), ("kube-proxy", proxy)):
            write_kubeconfig(
                d / f"{name}.kubeconfig",
                server,
                ca_pem,
                {"client-certificate": str(pair.cert), "client-key": str(pair.key)},
            )

        (d / "cni" / "net.d" / "10-aigate.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "1.0.0",
                    "name": "aigate",
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": BRIDGE,
                            "isGateway": True,
                            "ipMasq": False,  # nothing leaves the machine: no masquerading
                            "hairpinMode": True,
                            "ipam": {
                                "type": "host-local",
                                "ranges": [[{"subnet": POD_CIDR, "gateway": GATEWAY}]],
                                "routes": [{"dst": "0.0.0.0/0"}],
                                "dataDir": str(d / "cni" / "ipam"),
                            },
                        }
                    ],
                },
                indent=2,
            )
        )
        rt = "plugins.'io.containerd.cri.v1.runtime'"
        (d / "containerd.toml").write_text(
            f"""version = 3
root = "{self.containerd_root}"
state = "{CONTAINERD_STATE}"

[grpc]
  address = "{SOCKET}"

[ttrpc]
  address = "{SOCKET}.ttrpc"

[{rt}]
  # this machine refuses to lower a process's OOM score: without it every sandbox fails in runc
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  disable_apparmor = true

[{rt}.containerd]
  default_runtime_name = "runc"

[{rt}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{rt}.containerd.runtimes.runc.options]
  BinaryName = "{self.binaries.runc}"
  SystemdCgroup = false

[{rt}.cni]
  bin_dirs = ["{self.binaries.cni_bin_dir}"]
  conf_dir = "{d / "cni" / "net.d"}"

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "{self.pause_ref}"

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"

[plugins.'io.containerd.nri.v1.nri']
  disable = true
"""
        )
        kubelet: dict[str, Any] = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # this kernel mounts cgroup v1
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "address": GATEWAY,
            "port": ports["kubelet"],
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": ports["kubelet_healthz"],
            "containerRuntimeEndpoint": f"unix://{SOCKET}",
            "tlsCertFile": str(kubelet_serving.cert),
            "tlsPrivateKeyFile": str(kubelet_serving.key),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(ca.pair.cert)},
            },
            "authorization": {"mode": "Webhook"},
            "clusterDNS": [CLUSTER_DNS],
            "clusterDomain": CLUSTER_DOMAIN,
            # no upstream resolver: cluster names only, nothing is resolved off the machine
            "resolvConf": "",
            "podLogsDir": str(d / "pod-logs"),
            "failSwapOn": False,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
            "shutdownGracePeriod": "0s",
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            "registerNode": True,
            "syncFrequency": "10s",
            "fileCheckFrequency": "0s",
        }
        (d / "kubelet.yaml").write_text(yaml.safe_dump(kubelet, sort_keys=False))
        proxy_cfg: dict[str, Any] = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "nftables",
            "clientConnection": {"kubeconfig": str(d / "kube-proxy.kubeconfig")},
            "hostnameOverride": NODE_NAME,
            "bindAddress": GATEWAY,
            "clusterCIDR": POD_CIDR,
            "healthzBindAddress": f"127.0.0.1:{ports['proxy_healthz']}",
            "metricsBindAddress": f"127.0.0.1:{ports['proxy_metrics']}",
            "nodePortAddresses": [f"{GATEWAY}/32"],
            # leave the machine's conntrack sysctls alone
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        }
        (d / "kube-proxy.yaml").write_text(yaml.safe_dump(proxy_cfg, sort_keys=False))

    # ---- processes ----------------------------------------------------------------------------------------------

    def start_containerd(self, logs: Path) -> Proc:
        env = dict(os.environ)
        # the shim is found on PATH; runc is named in the config
        env["PATH"] = f"{self.binaries.containerd_bin_dir}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        env.pop("KUBECONFIG", None)
        return spawn(
            "containerd",
            [str(self.binaries.containerd), f"--config={self.dir / 'containerd.toml'}"],
            logs / "containerd.log",
            env=env,
        )

    def wait_containerd(self, proc: Proc, deadline: float) -> None:
        while True:
            if not proc.alive():
                raise NodeError(f"containerd exited; see {proc.log}")
            if SOCKET.exists() and self.ctr("version", check=False).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise NodeError(f"containerd did not answer on {SOCKET}; see {proc.log}")
            time.sleep(0.2)

    def ctr(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        argv = [str(self.binaries.ctr), f"--address={SOCKET}", f"--namespace={K8S_NAMESPACE}", *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise NodeError(f"ctr {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
        return done

    def import_image(self, archive_dir: Path) -> str:
        """Import a docker archive (hack/build-*.sh) into the node's containerd; returns its name there."""
        self.ctr("images", "import", "--no-unpack", str(archive_dir / "image.tar"))
        return containerd_ref(image_ref(archive_dir))

    def import_images(self) -> list[str]:
        refs = [self.import_image(self.binaries.pause_image), self.import_image(self.binaries.coredns_image)]
        aigate = aigate_image_archive()
        if (aigate / ".complete").is_file():
            refs.append(self.import_image(aigate))
        return refs

    def start_kubelet(self, logs: Path) -> Proc:
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        argv = [
            str(self.binaries.kubelet),
            f"--config={self.dir / 'kubelet.yaml'}",
            f"--kubeconfig={self.dir / 'kubelet.kubeconfig'}",
            f"--root-dir={self.kubelet_root}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={GATEWAY}",
        ]
        return spawn("kubelet", argv, logs / "kubelet.log", env=env)

    def start_kube_proxy(self, logs: Path) -> Proc:
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        return spawn(
            "kube-proxy",
            [str(self.binaries.kube_proxy), f"--config={self.dir / 'kube-proxy.yaml'}"],
            logs / "kube-proxy.log",
            env=env,
        )

    # ---- stopping -----------------------------------------------------------------------------------------------

    def remove_containers(self) -> None:
        """Whatever containerd still runs after the kubelet stopped (normally nothing: pods are deleted first)."""
        if not SOCKET.exists():
            return
        tasks = self.ctr("tasks", "list", "--quiet", check=False, timeout=30).stdout.split()
        for t in tasks:
            self.ctr("tasks", "kill", "--signal=SIGKILL", t, check=False, timeout=30)
        for t in tasks:
            for _ in range(50):
                if self.ctr("tasks", "delete", t, check=False, timeout=30).returncode == 0:
                    break
                time.sleep(0.1)


def shim_processes() -> list[Proc]:
    """containerd-shim-runc-v2 processes serving our containerd (they outlive containerd if containers remain)."""
    found: list[Proc] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and str(SOCKET).encode() in b" ".join(argv):
            from localcluster.procs import start_time

            st = start_time(int(proc.name))
            if st is not None:
                found.append(Proc(name="containerd-shim", pid=int(proc.name), start_time=st, log=""))
    return found


def coredns_manifests(image: str) -> list[dict[str, Any]]:
    """CoreDNS as a Deployment from the locally built image, its RBAC, and the kube-dns Service at CLUSTER_DNS.
    Cluster names only (no `forward`): nothing is resolved off the machine."""
    labels = {"k8s-app": "kube-dns"}
    ns = "kube-system"
    corefile = (
        ".:53 {\n"
        "    errors\n"
        "    health :8080\n"
        "    ready :8181\n"
        f"    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{\n"
        "        pods insecure\n"
        "        fallthrough in-addr.arpa ip6.arpa\n"
        "    }\n"
        "    cache 30\n"
        "}\n"
    )
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", "namespace": ns}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": ns}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": ns},
            "data": {"Corefile": corefile},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": ns, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "dnsPolicy": "Default",
                        "priorityClassName": "system-cluster-critical",
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65532,
                            "runAsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": "coredns",
                                "image": image,
                                "imagePullPolicy": "Never",
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                ],
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "40Mi"},
                                    "limits": {"memory": "170Mi"},
                                },
                                "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
                                "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 10},
                                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 1},
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": ns, "labels": labels},
            "spec": {
                "selector": labels,
                "clusterIP": CLUSTER_DNS,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ],
            },
        },
    ]

"""The pinned versions (hack/versions.env) and where the build script puts the binaries."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HACK_DIR = Path(__file__).resolve().parent.parent
VERSIONS_FILE = HACK_DIR / "versions.env"
BUILD_SCRIPT = HACK_DIR / "build-control-plane.sh"
NODE_BUILD_SCRIPT = HACK_DIR / "build-node.sh"
IMAGE_BUILD_SCRIPT = HACK_DIR / "build-image.sh"


class BinariesMissing(RuntimeError):
    """The control plane's binaries are not in the cache (run hack/build-control-plane.sh)."""


@dataclass(frozen=True)
class Versions:
    kubernetes: str
    etcd: str
    containerd: str = ""
    cni_plugins: str = ""
    coredns: str = ""

    @property
    def kubernetes_minor(self) -> str:
        """'1.37' for 'v1.37.2'."""
        return ".".join(self.kubernetes.lstrip("v").split(".")[:2])

    @classmethod
    def load(cls, path: Path = VERSIONS_FILE) -> Versions:
        values: dict[str, str] = {}
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise ValueError(f"{path}: line {raw!r} is not KEY=VALUE")
            values[key.strip()] = value.strip()
        try:
            return cls(
                kubernetes=values["KUBERNETES_VERSION"],
                etcd=values["ETCD_VERSION"],
                containerd=values["CONTAINERD_VERSION"],
                cni_plugins=values["CNI_PLUGINS_VERSION"],
                coredns=values["COREDNS_VERSION"],
            )
        except KeyError as e:
            raise ValueError(f"{path}: {e.args[0]} is not set") from None


def cache_dir() -> Path:
    """$AIGATE_CACHE_DIR, else ~/.cache/aigate: the build script's cache, shared by every clone."""
    env = os.environ.get("AIGATE_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "aigate"


def _goarch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    versions: Versions

    @classmethod
    def locate(cls, versions: Versions | None = None, root: Path | None = None) -> Binaries:
        """The binaries built by hack/build-control-plane.sh for the pinned versions; raises BinariesMissing."""
        v = versions or Versions.load()
        base = (root or cache_dir()) / "bin"
        k8s = base / f"kubernetes-{v.kubernetes}-linux-{_goarch()}"
        etcd = base / f"etcd-{v.etcd}-linux-{_goarch()}"
        found = cls(
            etcd=etcd / "etcd",
            kube_apiserver=k8s / "kube-apiserver",
            kube_controller_manager=k8s / "kube-controller-manager",
            versions=v,
        )
        missing = [str(p) for p in found.paths() if not os.access(p, os.X_OK)]
        if missing or not (k8s / ".complete").is_file() or not (etcd / ".complete").is_file():
            raise BinariesMissing(
                f"control plane binaries for kubernetes {v.kubernetes} / etcd {v.etcd} are not built "
                f"(missing: {', '.join(missing) or 'build stamp'}); run `bash {BUILD_SCRIPT}` (or `make control-plane`)"
            )
        return found

    def paths(self) -> list[Path]:
        return [self.etcd, self.kube_apiserver, self.kube_controller_manager]

    @classmethod
    def build(cls) -> Binaries:
        """Run the build script (a no-op when cached), then locate the binaries."""
        subprocess.run(["bash", str(BUILD_SCRIPT)], check=True)
        return cls.locate()


@dataclass(frozen=True)
class NodeBinaries:
    """The real node's parts built by hack/build-node.sh (and the aigate image by hack/build-image.sh)."""

    kubelet: Path
    kube_proxy: Path
    kube_scheduler: Path
    containerd: Path
    ctr: Path
    containerd_bin_dir: Path
    cni_bin_dir: Path
    pause_image: Path
    coredns_image: Path
    runc: Path

    @classmethod
    def locate(cls, versions: Versions | None = None, root: Path | None = None) -> NodeBinaries:
        """Raises BinariesMissing naming what to run when a part is not built."""
        v = versions or Versions.load()
        base = root or cache_dir()
        arch = f"linux-{_goarch()}"
        knode = base / "bin" / f"kubernetes-node-{v.kubernetes}-{arch}"
        containerd = base / "bin" / f"containerd-{v.containerd}-{arch}"
        cni = base / "bin" / f"cni-plugins-{v.cni_plugins}-{arch}"
        pause = base / "images" / f"pause-{v.kubernetes}-{arch}"
        coredns = base / "images" / f"coredns-{v.coredns}-{arch}"
        dirs = (knode, containerd, cni, pause, coredns)
        missing = [str(d) for d in dirs if not (d / ".complete").is_file()]
        runc = shutil.which("runc") or "/usr/sbin/runc"
        if not os.access(runc, os.X_OK):
            missing.append("runc (Debian package runc)")
        if missing:
            raise BinariesMissing(
                f"the real node's parts are not built (missing: {', '.join(missing)}); "
                f"run `bash {NODE_BUILD_SCRIPT}` (or `make node`)"
            )
        return cls(
            kubelet=knode / "kubelet",
            kube_proxy=knode / "kube-proxy",
            kube_scheduler=knode / "kube-scheduler",
            containerd=containerd / "containerd",
            ctr=containerd / "ctr",
            containerd_bin_dir=containerd,
            cni_bin_dir=cni,
            pause_image=pause,
            coredns_image=coredns,
            runc=Path(runc),
        )


def aigate_image_archive(root: Path | None = None) -> Path:
    """Where hack/build-image.sh (`make image`) leaves the aigate image as a docker archive (with a `ref` file): one
    per checkout, since it holds that working tree's code (the md5 of the checkout's path, as the script computes)."""
    checkout = hashlib.md5(f"{HACK_DIR.parent}\n".encode(), usedforsecurity=False).hexdigest()[:12]
    return (root or cache_dir()) / "images" / f"aigate-dev-{checkout}"

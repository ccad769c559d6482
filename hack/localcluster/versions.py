"""The pinned versions (hack/versions.env) and where the build script puts the binaries."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

HACK_DIR = Path(__file__).resolve().parent.parent
VERSIONS_FILE = HACK_DIR / "versions.env"
BUILD_SCRIPT = HACK_DIR / "build-control-plane.sh"


class BinariesMissing(RuntimeError):
    """The control plane's binaries are not in the cache (run hack/build-control-plane.sh)."""


@dataclass(frozen=True)
class Versions:
    kubernetes: str
    etcd: str

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
            return cls(kubernetes=values["KUBERNETES_VERSION"], etcd=values["ETCD_VERSION"])
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

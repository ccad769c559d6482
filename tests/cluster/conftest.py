"""The `cluster` session fixture: a real single-node cluster (the control plane of hack/build-control-plane.sh, the
node of hack/build-node.sh, the image of `make image`), or the cluster in $KUBECONFIG when
AIGATE_TEST_CLUSTER=existing. Every test under tests/cluster/ is marked `cluster`. See hack/README.md."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

HACK = Path(__file__).resolve().parents[2] / "hack"
if str(HACK) not in sys.path:
    sys.path.insert(0, str(HACK))

import flows  # noqa: E402

from aigate.simulator.server import SimulatorServer  # noqa: E402
from localcluster.testing import Cluster, ClusterUnavailable, cluster_required, cluster_session  # noqa: E402

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with ExitStack() as stack:
        try:
            handle = stack.enter_context(cluster_session(tmp_path_factory.mktemp("cluster")))
        except ClusterUnavailable as e:
            if cluster_required():
                pytest.fail(f"cluster tests are required (AIGATE_REQUIRE_CLUSTER=1 or CI=true): {e}", pytrace=False)
            pytest.skip(f"no cluster: {e}")
        yield handle


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace (labelled aigate.dev/test=true), deleted after the test."""
    name = cluster.create_namespace("t")
    yield name
    cluster.delete_namespace(name)


@pytest.fixture(scope="module")
def simulator(cluster: Cluster) -> Iterator[SimulatorServer]:
    """The LLM API simulator serving flows.PROFILE, for a module's gate Jobs' pods (on the pod bridge's gateway).
    test_trust.py serves its own, faster profile under the same name."""
    with flows.pods_simulator(cluster, flows.PROFILE) as sim:
        yield sim

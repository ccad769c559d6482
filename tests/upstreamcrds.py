"""The upstream CRDs of the custom gated kinds (operator/aigate/policy/kinds.py), as `bash
hack/build-upstream-crds.sh` (a prerequisite of `make test`) leaves them in the cache: one file per kind, named
`<plural>.<group>.yaml`. Without them the tests that need them skip, except in CI (CI=true or
AIGATE_REQUIRE_CLUSTER=1), where their absence is a failure. For tests/test_upstream_crds.py and
tests/cluster/test_chart_e2e.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from aigate.policy.kinds import GATED_KINDS, GatedKind

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "hack" / "build-upstream-crds.sh"
CUSTOM: tuple[GatedKind, ...] = tuple(k for k in GATED_KINDS if k.value is not None)
"""The gated kinds a cluster serves only once their project's CRD is installed."""


def crd_dir() -> Path:
    """The cached directory, or a skip (a failure in CI) saying how to fetch it."""
    done = subprocess.run(["bash", str(SCRIPT), "--cached"], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode == 0:
        return Path(done.stdout.strip().splitlines()[-1])
    why = f"the upstream CRDs are not fetched (fetch them: bash hack/build-upstream-crds.sh): {done.stderr.strip()}"
    if os.environ.get("AIGATE_REQUIRE_CLUSTER") == "1" or os.environ.get("CI") == "true":
        pytest.fail(f"{why}; CI must fetch them")
    pytest.skip(why)


def crd_file(directory: Path, kind: GatedKind) -> Path:
    return directory / f"{kind.resource}.{kind.group}.yaml"


def load_crd(directory: Path, kind: GatedKind) -> dict[str, Any]:
    """The CRD (a megabyte for some: libyaml's loader when there is one)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    [crd] = [d for d in yaml.load_all(crd_file(directory, kind).read_text(), Loader=loader) if d]
    assert isinstance(crd, dict)
    return crd

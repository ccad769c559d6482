"""Helpers the cluster test modules share (no test module imports another)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from localcluster.testing import Cluster

BIN = Path(sys.executable).parent
"""The venv's bin: kubectl-aigate is there."""


def kubectl_aigate(cluster: Cluster, *args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Through kubectl's plugin lookup: `kubectl aigate ...` finds kubectl-aigate on PATH."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    argv = [cluster.kubectl_bin, "aigate", *args, f"--kubeconfig={kubeconfig or cluster.kubeconfig}"]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)

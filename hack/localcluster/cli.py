"""hack/control-plane: start, stop and inspect a local cluster (control plane and real node) for a person.

    hack/control-plane start  [--state-dir DIR] [--no-node]   prints the `export KUBECONFIG=...` line
    hack/control-plane status [--state-dir DIR]
    hack/control-plane stop   [--state-dir DIR]
    hack/control-plane env    [--state-dir DIR]               prints the `export KUBECONFIG=...` line again
    hack/control-plane import-image                           the image `make image` built, into the running node

The state directory defaults to $AIGATE_STATE_DIR, else ~/.cache/aigate/clusters/default.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from localcluster.controlplane import ControlPlane, ControlPlaneError
from localcluster.host import NodeBusy, claim_alive, current_claim
from localcluster.node import NODE_NAME, Node, NodeError
from localcluster.versions import BinariesMissing, NodeBinaries, aigate_image_archive, cache_dir


def default_state_dir() -> Path:
    env = os.environ.get("AIGATE_STATE_DIR")
    return Path(env) if env else cache_dir() / "clusters" / "default"


def import_image() -> int:
    """Import the aigate image archive into the node running on this machine, if one runs and takes its images from
    the same place (a cluster started from another checkout's cache, e.g. a test run there, keeps its own)."""
    claim = current_claim()
    if claim is None or not claim_alive(claim):
        print("no cluster with a node runs here: the image is imported when one starts", file=sys.stderr)
        return 0
    running = ControlPlane(Path(claim["state_dir"]))
    archive = aigate_image_archive()
    if running.state.get("node", {}).get("images_from") != str(archive):
        print(
            f"the node running here (cluster in {claim['state_dir']}) takes its images from elsewhere: "
            f"{archive} not imported into it",
            file=sys.stderr,
        )
        return 0
    ref = Node(running.state_dir, NodeBinaries.locate()).import_image(archive)
    print(f"imported {ref} into the node of the cluster in {claim['state_dir']}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/control-plane", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status", "env", "import-image"])
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="default: $AIGATE_STATE_DIR or ~/.cache/aigate/clusters/default"
    )
    parser.add_argument(
        "--no-node",
        action="store_true",
        help="a control plane alone, on 127.0.0.1 (pods stay Pending; any number side by side)",
    )
    args = parser.parse_args(argv)
    state_dir: Path = (args.state_dir or default_state_dir()).resolve()
    cp = ControlPlane(state_dir)
    export = f"export KUBECONFIG={shlex.quote(str(cp.kubeconfig))}"
    try:
        if args.command == "start":
            if cp.running():
                print(f"control-plane: a cluster is already running in {state_dir}:", file=sys.stderr)
                print(export)
                return 1
            what = "a control plane" if args.no_node else "a cluster with a real node"
            print(f"starting {what} in {state_dir}", file=sys.stderr)
            cp.start(node=not args.no_node, by=f"hack/control-plane start (pid {os.getpid()})")
            what = "control plane" if args.no_node else f"cluster (node {NODE_NAME} Ready, CoreDNS Ready)"
            print(f"{what} ready at {cp.server}; logs in {state_dir / 'logs'}", file=sys.stderr)
            how = "make cluster-down" if args.state_dir is None else f"hack/control-plane stop --state-dir {state_dir}"
            print(f"stop it with: {how}", file=sys.stderr)
            print(export)
        elif args.command == "stop":
            if not any(p.alive() for p in cp.processes()):
                print(f"no control plane is running in {state_dir}", file=sys.stderr)
                cp.stop()  # still clears what a crashed node left (its containers' pid files)
                return 0
            cp.stop()
            print(f"stopped the control plane in {state_dir}", file=sys.stderr)
        elif args.command == "import-image":
            return import_image()
        elif args.command == "status":
            print(json.dumps(cp.status(), indent=2))
            return 0 if cp.running() else 3
        else:
            if not cp.running():
                print(f"no control plane is running in {state_dir}", file=sys.stderr)
                return 3
            print(export)
    except (ControlPlaneError, BinariesMissing, NodeBusy, NodeError, ValueError) as e:
        print(f"control-plane: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

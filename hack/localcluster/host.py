"""The machine-global state a real node touches, and putting it back.

containerd's /run/containerd, the cni0 bridge, nft tables, kubepods cgroups and a few sysctls exist once per
machine, so one real node runs at a time: `claim()` takes the machine for a state directory (a second claim while
the first one's processes live is refused), `release()` gives it back. `HostSnapshot` records before the node
starts what existed (nft tables, sysctls, directories), so `restore()` removes exactly what the node added and sets
back exactly the sysctls it changed, even after a crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcluster.procs import Proc, start_time

MACHINE_DIR = Path("/run/aigate")
CLAIM = MACHINE_DIR / "node.json"
LOCK = MACHINE_DIR / "node.lock"

BRIDGE = "cni0"
POD_CIDR = "10.244.0.0/24"
GATEWAY = "10.244.0.1"
"""The bridge's own address: the host end of the pod network. The API server and the kubelet listen here (and
tests serve pods from here): an address of an interface the cluster creates, reachable from pods, never external."""

SYSCTLS = (
    "kernel/panic",
    "kernel/panic_on_oops",
    "vm/overcommit_memory",
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/netfilter/nf_conntrack_max",
)
CONTAINERD_STATE = Path("/run/containerd")
GLOBAL_DIRS = (
    CONTAINERD_STATE,
    Path("/run/nri"),
    Path("/var/lib/cni"),
    Path("/var/lib/kubelet"),
    Path("/var/log/containers"),
    Path("/var/log/pods"),
)
FIREWALL_TABLE = "aigate-node"
"""Our own nft table: nothing is forwarded between the pod bridge and any other interface (no packet leaves the
machine, none comes in)."""
NODE_TABLES = frozenset(
    {f"inet {FIREWALL_TABLE}", "ip kube-proxy", "ip6 kube-proxy"}
    # the kubelet's and kube-proxy's iptables calls (iptables-nft) make these when they do not exist
    | {f"{family} {table}" for family in ("ip", "ip6") for table in ("filter", "nat", "mangle")}
)
"""The tables a node makes; a stop deletes those of them that did not exist before it started, and no other."""


class NodeBusy(RuntimeError):
    """Another real node runs on this machine."""


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    MACHINE_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def current_claim() -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(CLAIM.read_text())
        return data
    except (FileNotFoundError, ValueError):
        return None


def claim_alive(claim: dict[str, Any]) -> bool:
    """The claimer is still starting (its process lives) or the cluster it started has a live process."""
    if start_time(int(claim.get("pid", 0))) == claim.get("start_time"):
        return True
    state = Path(str(claim.get("state_dir", ""))) / "state.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        return any(Proc.from_json(p).alive() for p in json.loads(state.read_text()).get("processes", []))
    return False


def claim(state_dir: Path, by: str) -> dict[str, Any] | None:
    """Take the machine's node for STATE_DIR. Returns a dead earlier claim (whose leftovers the caller cleans), else
    None; raises NodeBusy naming the running one."""
    with _locked():
        cur = current_claim()
        if cur is not None and cur.get("state_dir") != str(state_dir) and claim_alive(cur):
            raise NodeBusy(
                f"a real node already runs on this machine (state dir {cur['state_dir']}, started by {cur['by']}); "
                "one node per machine: stop it first (`make cluster-down`, or wait for the test run that owns it)"
            )
        pid = os.getpid()
        record = {"state_dir": str(state_dir), "by": by, "pid": pid, "start_time": start_time(pid)}
        tmp = CLAIM.with_suffix(".tmp")
        tmp.write_text(json.dumps(record) + "\n")
        tmp.replace(CLAIM)
        if cur is not None and cur.get("state_dir") != str(state_dir):
            return cur
        return None


def release(state_dir: Path) -> None:
    with _locked():
        cur = current_claim()
        if cur is not None and cur.get("state_dir") == str(state_dir):
            CLAIM.unlink(missing_ok=True)


def wait_and_claim(state_dir: Path, by: str, timeout: float) -> dict[str, Any] | None:
    """claim(), waiting up to TIMEOUT seconds for a running node to go (a parallel test run)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return claim(state_dir, by)
        except NodeBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(5)


# ---- what exists before the node starts ------------------------------------------------------------------------------


def run(*argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, input=input, timeout=60)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def nft_tables() -> list[str]:
    """'family name' of every nft table on the machine."""
    out = run("nft", "list", "tables", check=False).stdout
    return [line.removeprefix("table ").strip() for line in out.splitlines() if line.startswith("table ")]


def read_sysctl(name: str) -> str | None:
    try:
        return Path("/proc/sys", name).read_text().strip()
    except OSError:
        return None


def write_sysctl(name: str, value: str) -> None:
    with contextlib.suppress(OSError):
        Path("/proc/sys", name).write_text(value + "\n")


def cgroup_roots() -> list[Path]:
    """Every cgroup v1 hierarchy's mount (and the v2 one), where the kubelet makes its kubepods cgroups."""
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").exists():
        return [base]
    return [p for p in sorted(base.iterdir()) if p.is_dir() and not p.is_symlink()]


def kubepods_cgroups() -> list[Path]:
    return [root / "kubepods" for root in cgroup_roots() if (root / "kubepods").is_dir()]


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def veths_on_bridge(bridge: str = BRIDGE) -> list[str]:
    brif = Path("/sys/class/net", bridge, "brif")
    return sorted(p.name for p in brif.iterdir()) if brif.is_dir() else []


def mounts_under(*prefixes: Path) -> list[str]:
    """Mount points under any of PREFIXES, deepest first (so they unmount in order)."""
    found: list[str] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == str(p) or point.startswith(str(p).rstrip("/") + "/") for p in prefixes):
            found.append(point)
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


@dataclass
class HostSnapshot:
    """What the machine held before a node started (saved in the node's state dir, so a later stop still knows)."""

    nft_tables: list[str]
    sysctls: dict[str, str]
    dirs: list[str]

    @classmethod
    def take(cls) -> HostSnapshot:
        sysctls = {n: v for n in SYSCTLS if (v := read_sysctl(n)) is not None}
        return cls(nft_tables=nft_tables(), sysctls=sysctls, dirs=[str(d) for d in GLOBAL_DIRS if d.exists()])

    def to_json(self) -> dict[str, Any]:
        return {"nft_tables": self.nft_tables, "sysctls": self.sysctls, "dirs": self.dirs}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> HostSnapshot:
        return cls(nft_tables=list(d["nft_tables"]), sysctls=dict(d["sysctls"]), dirs=list(d["dirs"]))

    def added_tables(self) -> list[str]:
        return [t for t in nft_tables() if t in NODE_TABLES and t not in self.nft_tables]

    def leftovers(self, node_dirs: tuple[Path, ...] = ()) -> list[str]:
        """What a node left on the machine that was not there before: empty after a clean stop."""
        left: list[str] = []
        left += [f"nft table {t}" for t in self.added_tables()]
        left += [
            f"sysctl {n}={v} (was {self.sysctls[n]})" for n in self.sysctls if (v := read_sysctl(n)) != self.sysctls[n]
        ]
        left += [f"directory {d}" for d in GLOBAL_DIRS if d.exists() and str(d) not in self.dirs]
        if link_exists(BRIDGE):
            left.append(f"interface {BRIDGE} (ports: {', '.join(veths_on_bridge()) or 'none'})")
        left += [f"cgroup {c}" for c in kubepods_cgroups()]
        left += [f"mount {m}" for m in mounts_under(CONTAINERD_STATE, *node_dirs)]
        return left

    def restore(self, node_dirs: tuple[Path, ...]) -> list[str]:
        """Remove what the node added and set back the sysctls it changed; returns what could not be undone."""
        for point in mounts_under(CONTAINERD_STATE, *node_dirs):
            run("umount", "--lazy", point, check=False)
        for veth in veths_on_bridge():
            run("ip", "link", "delete", veth, check=False)
        if link_exists(BRIDGE):
            run("ip", "link", "delete", BRIDGE, check=False)
        for table in self.added_tables():
            run("nft", "delete", "table", *table.split(), check=False)
        for cg in kubepods_cgroups():
            _rmdir_tree(cg)
        for d in GLOBAL_DIRS:
            if d.exists() and str(d) not in self.dirs:
                shutil.rmtree(d, ignore_errors=True)
        for name, value in self.sysctls.items():
            if read_sysctl(name) != value:
                write_sysctl(name, value)
        return self.leftovers(node_dirs)


def _rmdir_tree(cg: Path) -> None:
    """A cgroup directory and its children, deepest first (cgroupfs removes a cgroup with rmdir only)."""
    for sub in sorted((p for p in cg.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        cg.rmdir()


def setup_network() -> None:
    """The pod bridge with the gateway address (before the API server binds to it), forwarding confined to it."""
    if not link_exists(BRIDGE):
        run("ip", "link", "add", BRIDGE, "type", "bridge")
    have = run("ip", "-o", "-4", "addr", "show", "dev", BRIDGE).stdout
    if f" {GATEWAY}/" not in have:
        run("ip", "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
    run("ip", "link", "set", BRIDGE, "up")
    # pods reach Services through the host (DNAT, then forwarded back onto the bridge): forwarding on, but only
    # between bridge ports, never to or from another interface
    write_sysctl("net/ipv4/ip_forward", "1")
    run(
        "nft",
        "-f",
        "-",
        input=(
            f"table inet {FIREWALL_TABLE} {{\n"
            "  chain forward {\n"
            "    type filter hook forward priority -10; policy accept;\n"
            f'    iifname "{BRIDGE}" oifname != "{BRIDGE}" drop\n'
            f'    oifname "{BRIDGE}" iifname != "{BRIDGE}" drop\n'
            "  }\n"
            "}\n"
        ),
    )

"""Start detached processes and stop exactly those, by recorded PID and kernel start time (so a reused PID is never
signalled)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # a zombie has exited
        return None
    return int(fields[19])


@dataclass(frozen=True)
class Proc:
    name: str
    pid: int
    start_time: int
    log: str

    def alive(self) -> bool:
        return start_time(self.pid) == self.start_time

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "pid": self.pid, "start_time": self.start_time, "log": self.log}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Proc:
        return cls(name=str(d["name"]), pid=int(d["pid"]), start_time=int(d["start_time"]), log=str(d["log"]))

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process's group (it leads its own session), then SIGKILL after GRACE seconds."""
        if not self.alive():
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                _reap(self.pid)
                if not self.alive():
                    return
                time.sleep(0.05)
        if self.alive():
            raise RuntimeError(f"{self.name} (pid {self.pid}) survived SIGKILL")


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def spawn(
    name: str, argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Proc:
    """Start ARGV in a new session (so it survives its starter and can be stopped as a group), output to LOG."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        p = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
    st = start_time(p.pid)
    if st is None:
        rc = p.wait()
        raise RuntimeError(f"{name} exited at once with code {rc}; see {log}")
    # The Popen object is dropped: the process is reaped by _reap() when stopped from this process, else by init.
    p.returncode = 0  # keep Popen.__del__ from warning about a running child
    return Proc(name=name, pid=p.pid, start_time=st, log=str(log))


def tail(path: str | Path, lines: int = 25) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])

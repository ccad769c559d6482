"""Load a local HTML file in Debian's headless Chromium with no network, and say what the page did.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: no port, no extra package), in
a network namespace of its own when `unshare --net` works (as root it does), with the network also emulated offline.
What comes back: every request the page made that was not the file itself, every console error, log error and
uncaught exception, the values of a few expressions, and a screenshot of the whole page.

Used by tests/test_report_browser.py and hack/screenshots.py (`make screenshots`).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
WAIT_S = 60.0
"""A guard against a hung browser, not a measurement."""


class ChromiumUnavailable(Exception):
    """No Chromium on this machine (hack/ensure-chromium.sh installs Debian's)."""


def chromium_path() -> str:
    for name in (os.environ.get("AIGATE_CHROMIUM", ""), "chromium", "chromium-browser"):
        found = shutil.which(name) if name else None
        if found:
            return found
    raise ChromiumUnavailable("chromium not found on PATH (bash hack/ensure-chromium.sh installs it)")


@dataclass
class PageLoad:
    url: str
    requests: list[str] = field(default_factory=list)
    """Every URL the page asked for other than itself (data: URLs included: they are inline, listed for honesty)."""
    errors: list[str] = field(default_factory=list)
    """Console errors, log entries at level error, uncaught exceptions."""
    values: dict[str, Any] = field(default_factory=dict)
    screenshot: bytes = b""
    isolated: bool = False
    """Chromium ran in a network namespace of its own (no interface but a down loopback)."""

    @property
    def external_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith("data:")]


class _Pipe:
    def __init__(self, write_fd: int, read_fd: int) -> None:
        self.w, self.r = write_fd, read_fd
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method}: {reply['error'].get('message')}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method: str) -> dict[str, Any]:
        for i, e in enumerate(self.events):
            if e["method"] == method:
                return self.events.pop(i)
        while True:
            msg = self._read()
            if msg.get("method") == method:
                return msg
            if "method" in msg:
                self.events.append(msg)

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.r], [], [], max(left, 0))
            if not ready:
                raise TimeoutError(f"Chromium said nothing for {WAIT_S:.0f} s")
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buf += chunk
        raw, _, self.buf = self.buf.partition(b"\0")
        doc: dict[str, Any] = json.loads(raw)
        return doc


def _netns_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--net", "true"], capture_output=True).returncode == 0:
        return [unshare, "--net"]
    return []


def _high(fds: tuple[int, int]) -> tuple[int, int]:
    """The pair moved above 9, so that putting the child's ends on 3 and 4 never closes one of them."""
    out = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds)
    for fd in fds:
        os.close(fd)
    return out[0], out[1]


def load_page(
    path: Path,
    *,
    width: int = 1280,
    height: int = 900,
    expressions: dict[str, str] | None = None,
    full_page: bool = True,
) -> PageLoad:
    """Open `path` (file://) in a fresh profile, wait for the load event, evaluate `expressions`, screenshot."""
    exe = chromium_path()
    url = path.resolve().as_uri()
    prefix = _netns_prefix()
    to_child_r, to_child_w = _high(os.pipe())
    from_child_r, from_child_w = _high(os.pipe())

    log = os.environ.get("AIGATE_CHROMIUM_LOG", os.devnull)
    with tempfile.TemporaryDirectory(prefix="aigate-chromium-") as profile, open(log, "ab") as stderr:
        # DevTools reads fd 3 and writes fd 4: bash (dash would mark them close-on-exec) moves the pipe ends
        # there before it becomes Chromium
        wire = f'exec 3<&{to_child_r} 4>&{from_child_w} {to_child_r}<&- {from_child_w}>&-; exec "$@"'
        argv = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"]
        proc = subprocess.Popen(
            [*prefix, "/bin/bash", "-c", wire, "bash", *argv],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        pipe = _Pipe(to_child_w, from_child_r)
        try:
            return _drive(pipe, url, width, height, expressions or {}, full_page, isolated=bool(prefix))
        finally:
            with contextlib.suppress(RuntimeError, OSError, TimeoutError):
                pipe.send("Browser.close")
            try:
                proc.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            os.close(to_child_w)
            os.close(from_child_r)


def _drive(
    pipe: _Pipe, url: str, width: int, height: int, expressions: dict[str, str], full_page: bool, *, isolated: bool
) -> PageLoad:
    target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        pipe.send(f"{domain}.enable", session=session)
    pipe.send(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        session=session,
    )
    pipe.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        session=session,
    )
    pipe.events.clear()
    pipe.send("Page.navigate", {"url": url}, session=session)
    pipe.wait_event("Page.loadEventFired")
    load = PageLoad(url=url, isolated=isolated)
    for name, expr in expressions.items():
        r = pipe.send("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=session)
        load.values[name] = r.get("result", {}).get("value")
    metrics = pipe.send("Page.getLayoutMetrics", session=session)
    size = metrics.get("cssContentSize") or metrics.get("contentSize") or {}
    shot_h = int(size.get("height", height)) if full_page else height
    shot = pipe.send(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": full_page,
            "clip": {"x": 0, "y": 0, "width": width, "height": shot_h, "scale": 1},
        },
        session=session,
    )
    load.screenshot = base64.b64decode(shot["data"])
    for e in pipe.events:
        method, p = e["method"], e.get("params", {})
        if method == "Network.requestWillBeSent":
            req_url = p.get("request", {}).get("url", "")
            if req_url != url:
                load.requests.append(req_url)
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            load.errors.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
        elif method == "Runtime.exceptionThrown":
            load.errors.append("exception: " + str(p.get("exceptionDetails", {}).get("text", "")))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            load.errors.append(f"log ({p['entry'].get('source')}): {p['entry'].get('text')}")
    return load


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: headless_chromium.py PAGE.html SHOT.png")
    page = load_page(Path(sys.argv[1]))
    Path(sys.argv[2]).write_bytes(page.screenshot)
    print(json.dumps({"requests": page.requests, "errors": page.errors, "isolated": page.isolated}))

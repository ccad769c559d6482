"""Progress on the terminal: a bar per phase on a TTY, the runner's own lines into a pipe, nothing with --quiet."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import yaml

from aigate.console import Count, TerminalProgress, bar, parse_count
from aigate.probes.credentials import Scrubber
from aigate.probes.runner import _Reporter
from aigate.simulator.profile import SimProfile
from aigate.simulator.server import SimulatorServer
from factories import ROOT


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


LINES = [
    "baseline primary: 1/4 cases, 0.5s",
    "baseline primary: 3/4 cases, 2.5s",
    "MCP server casetools: listing tools",
    "baseline primary: 4/4 cases, 3.0s",
    "fallback timeout: 2/8 cases, 1.0s",
]


def test_the_runners_counting_lines_are_understood() -> None:
    """The lines come from the runner's reporter: if its wording changes, the bar must follow, not go dark."""
    seen: list[str] = []
    report = _Reporter(seen.append, "baseline primary", 3, 0.0, Scrubber())
    for _ in range(3):
        report.tick()
    assert [parse_count(s) is not None for s in seen] == [True, True, True]
    last = parse_count(seen[-1])
    assert last is not None and (last.label, last.done, last.total) == ("baseline primary", 3, 3)
    assert parse_count("human route https://q.internal: acknowledged (200)") is None


def test_a_bar_in_place_on_a_tty() -> None:
    out = Tty()
    progress = TerminalProgress(out)
    for line in LINES:
        progress(line)
    progress.close()
    clear = "\r\x1b[K"
    assert out.getvalue() == (
        f"{clear}baseline primary [######..................] 1/4 cases, 0.5s"
        f"{clear}baseline primary [##################......] 3/4 cases, 2.5s"
        "\nMCP server casetools: listing tools\n"
        f"{clear}baseline primary [########################] 4/4 cases, 3.0s\n"
        f"{clear}fallback timeout [######..................] 2/8 cases, 1.0s\n"
    )


def test_plain_lines_into_a_pipe() -> None:
    out = io.StringIO()
    progress = TerminalProgress(out)
    for line in LINES:
        progress(line)
    progress.close()
    assert out.getvalue() == "".join(line + "\n" for line in LINES)


def test_bar() -> None:
    assert bar(Count("x", 0, 3, 0.0), width=6) == "x [......] 0/3 cases, 0.0s"
    assert bar(Count("x", 3, 3, 12.34), width=6) == "x [######] 3/3 cases, 12.3s"


GOOD = '{"risk": "low", "summary": "nothing unusual in this case", "actions": []}'
PROFILE = {
    "models": {
        "sim-claude": {"provider": "anthropic", "latency": {"fixedMs": 5}, "responses": [{"content": GOOD}]},
        "sim-gpt": {"provider": "openai", "latency": {"fixedMs": 5}, "responses": [{"content": GOOD}]},
    },
}


def _workload_file(tmp_path: Path, url: str) -> Path:
    price = {"inputPerMTokUSD": 1, "outputPerMTokUSD": 4}
    models = [
        {"name": "primary", "role": "primary", "provider": "anthropic", "model": "sim-claude", "endpoint": url},
        {"name": "fallback", "role": "fallback", "provider": "openai", "model": "sim-gpt", "endpoint": url + "/v1"},
    ]
    doc = {
        "apiVersion": "aigate.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "claims-triage", "namespace": "claims"},
        "spec": {
            "owner": "claims-team",
            "models": [{**m, "credentials": {"env": "SIM_KEY"}, "pricing": price} for m in models],
            "traffic": {"requestsPerDay": 5000, "peakRequestsPerSecond": 20},
            "budget": {"monthlyUSD": 500, "gateRunMaxUSD": 1},
            "slo": {"p95LatencyMs": 1500, "timeoutMs": 300, "maxErrorRate": 0.05, "minPassRate": 0.9},
            "fallback": {"retries": {"attempts": 0, "backoffMs": 10}, "safeStop": {"message": "Routed to a person."}},
            "suite": {
                "repeats": 20,  # 60 samples per model: enough to judge a p95, so the check decides (exit 1)
                "cases": [
                    {"name": f"claim-{i}", "messages": [{"role": "user", "content": f"Triage claim {i}."}]}
                    for i in range(3)
                ],
            },
        },
    }
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _check(path: Path, *flags: str, stderr: int) -> int:
    """`aigate check` as a user runs it; exit 1 here: the evidence is unsigned, so the decision is FAIL."""
    exe = Path(sys.executable).parent / "aigate"
    env = {**os.environ, "SIM_KEY": "sim-key-console-test"}
    args = [str(exe), "check", str(path), "--format", "json", *flags]
    return subprocess.run(args, stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT, env=env, timeout=300).returncode


def test_check_draws_bars_on_a_terminal_and_is_silent_with_quiet(tmp_path: Path) -> None:
    """A real `aigate check` against the simulator, its stderr a pseudo-terminal, then a pipe with --quiet."""
    with SimulatorServer(SimProfile.model_validate(PROFILE)) as sim:
        path = _workload_file(tmp_path, sim.url)
        leader, follower = pty.openpty()
        try:
            code = _check(path, stderr=follower)
            os.close(follower)
            seen = b""
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the terminal's other end is closed and drained
                    break
                if not chunk:
                    break
                seen += chunk
        finally:
            os.close(leader)
        text = seen.decode()
        assert code == 1, text
        assert "\r\x1b[Kbaseline primary [########################] 60/60 cases, " in text
        assert "\r\x1b[Kfallback timeout [########################] 3/3 cases, " in text
        assert "baseline primary: " not in text  # no plain counting lines on a terminal
        quiet = tmp_path / "stderr"
        with quiet.open("w") as f:
            assert _check(path, "--quiet", stderr=f.fileno()) == 1
        assert quiet.read_text() == ""

"""`aigate demo` tells its story faster than real time, with figures at real-time scale.

The demo runs the simulator and the runner at demo.TIME_SCALE: were the runner not to scale what it measures
back, the failing example's p95 (the profile's claude-sonnet-4-5: p50 4.5 s, p95 6.5 s) would read near 1 s and
its reliability gate would pass. Nothing here is timed: the demo's duration is reported, never asserted.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aigate.demo import TIME_SCALE, run_demo, time_scale_note


def _figure(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not in the demo's output"
    return float(m.group(1).replace(",", ""))


def test_demo_tells_its_story_at_real_time_scale(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert TIME_SCALE < 1
    code = run_demo(quiet=True, html_dir=tmp_path)
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith(time_scale_note() + "\n")
    assert "faster than real time" in time_scale_note()
    failing, remediated = out.split("### examples/fraud-review-assistant-remediated.yaml")
    assert "AI Production Readiness: FAIL" in failing and "AI Production Readiness: PASS" in remediated
    # latencies as a caller would see them in production, not as the sped-up simulator served them
    slow = _figure(r"p95 latency: ([\d,]+) ms, above threshold 4,000 ms", failing)
    assert 4_000 < slow < 9_000
    fast = _figure(r"p95 latency: ([\d,]+) ms, within threshold 4,000 ms", remediated)
    assert 1_000 < fast < 4_000
    # the injected timeouts were waited out at the demo's scale but judged against the real deadline
    assert "timeout 8/8" in failing and "8 past the 24,000 ms deadline" in failing
    assert "every case ended within 15,000 ms" in remediated
    assert "demo: as designed" in out
    # both workloads' HTML reports, named in the output
    pages = {p.name: p.read_text() for p in tmp_path.glob("*.html")}
    assert sorted(pages) == ["fraud-review-assistant-remediated.html", "fraud-review-assistant.html"]
    assert "AI Production Readiness: FAIL" in pages["fraud-review-assistant.html"]
    assert "AI Production Readiness: PASS" in pages["fraud-review-assistant-remediated.html"]
    assert f"HTML report: {tmp_path / 'fraud-review-assistant.html'}" in out

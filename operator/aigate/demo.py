"""`aigate demo`: the failing and the remediated fraud-review workload, checked against simulators started
in-process, so a newcomer sees every gate at work with no API key and no network."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from aigate.api.errors import UsageError
from aigate.api.load import ResolvedWorkload, load_and_resolve
from aigate.assessment import Assessment
from aigate.console import TerminalProgress
from aigate.pipeline import CheckOptions, run_check

FAILING = "fraud-review-assistant.yaml"
REMEDIATED = "fraud-review-assistant-remediated.yaml"
PROFILE = "profiles/fraud-demo.yaml"
DEMO_KEYS = {"ANTHROPIC_API_KEY": "sim-demo-key-anthropic", "OPENAI_API_KEY": "sim-demo-key-openai"}
MUST_FAIL = ("cost", "reliability", "fallback", "toolControl")
TIME_SCALE = 0.2
"""The demo's clock: the simulator answers five times faster than the profile's latencies and the runner
shrinks its waits (timeouts, backoff, deadlines) to match, so the story takes seconds, not minutes, while every
measured figure is reported at real-time scale (the runner divides it by the scale)."""


def time_scale_note(scale: float = TIME_SCALE) -> str:
    return (
        f"The demo runs {1 / scale:g}x faster than real time: the simulated providers answer {1 / scale:g}x faster "
        "and aigate's timeouts, backoff and deadlines shrink to match; every figure is reported at real-time scale."
    )


def examples_dir() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "examples" / FAILING).is_file():
            return parent / "examples"
    raise UsageError("the demo's examples/ directory was not found (run from a checkout of aigate)")


def _point_at(resolved: ResolvedWorkload, sim_url: str) -> dict[str, str]:
    """Keep each endpoint's path (/v1 or not) and swap its host for the simulator's."""
    netloc = urlsplit(sim_url).netloc
    out = {}
    for m in resolved.workload.spec.models:
        if m.endpoint is not None:
            parts = urlsplit(str(m.endpoint))
            out[m.name] = urlunsplit(("http", netloc, parts.path.rstrip("/"), "", ""))
    return out


def _surprises(failing: Assessment, remediated: Assessment, verified: bool) -> list[str]:
    out = []
    if failing.decision != "FAIL":
        out.append("the failing example passed")
    out += [f"the failing example's {g} gate did not fail" for g in MUST_FAIL if failing.gate(g).status != "FAIL"]
    reasons = " ".join(f.message for f in failing.gate("reliability").findings)
    if "timeout behavior: undefined" not in reasons or "p95 latency" not in reasons:
        out.append("the failing example's reliability gate did not report p95 and the undefined timeout")
    out += [
        f"the remediated example's {g.gate} gate is {g.status}: {g.reason}"
        for g in remediated.gates
        if g.status != "PASS"
    ]
    if not verified:
        out.append("the remediated example's signed evidence did not verify")
    return out


HTML_DIR = Path("aigate-demo-reports")


def run_demo(*, quiet: bool = False, fmt: str = "text", html_dir: Path | None = None) -> int:
    from aigate.evidence.keys import write_keypair
    from aigate.pipeline import verify_file
    from aigate.report import render
    from aigate.report.html import render_html
    from aigate.simulator.profile import load_profile
    from aigate.simulator.server import SimulatorServer

    ex = examples_dir()
    html_dir = html_dir or HTML_DIR
    try:
        html_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--html-dir {html_dir}: cannot create: {e.strerror or e}") from None
    progress = None if quiet else TerminalProgress(sys.stderr)
    print(time_scale_note())
    profile = load_profile(ex / PROFILE).with_time_scale(TIME_SCALE)
    with SimulatorServer(profile) as sim, tempfile.TemporaryDirectory() as tmp:
        key, pub = write_keypair(Path(tmp), "ecdsa-p256")
        results = []
        for name in (FAILING, REMEDIATED):
            resolved = load_and_resolve(ex / name)
            if progress:
                progress(f"== aigate check examples/{name} (simulator at {sim.url})")
            # the first team had no signing key in its pipeline yet: its evidence is unsigned, as in DESIGN.md
            opts = CheckOptions(
                environ=DEMO_KEYS,
                sign_key=key if name == REMEDIATED else None,
                evidence_out=Path(tmp) / f"{Path(name).stem}.evidence.json",
                endpoint_overrides=_point_at(resolved, sim.url),
                progress=progress,
                time_scale=TIME_SCALE,
            )
            a = asyncio.run(run_check(resolved, opts))
            if progress:
                progress.close()
            results.append(a)
            print(f"\n### examples/{name}\n")
            sys.stdout.write(render(a, fmt))
            page = html_dir / f"{Path(name).stem}.html"
            page.write_text(render_html(a), encoding="utf-8")
            print(f"HTML report: {page}")
        failing, remediated = results
        evidence = remediated.evidence.path if remediated.evidence else None
        code, message = verify_file(Path(evidence), pub, ex / REMEDIATED) if evidence else (1, "no evidence")
        print(f"\n$ aigate verify {Path(evidence or '').name} --key aigate.pub --workload examples/{REMEDIATED}")
        print(message)
    surprises = _surprises(failing, remediated, code == 0)
    if surprises:
        print("\ndemo: unexpected outcome: " + "; ".join(surprises), file=sys.stderr)
        return 1
    print("\ndemo: as designed: the first workload fails its gates, the remediated one passes all six.")
    return 0

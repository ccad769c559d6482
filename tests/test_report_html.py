"""The HTML readiness report, read as markup: self-contained, every spec and model string escaped, charts drawn from
measured figures only, and `aigate report` verifying signed evidence before it renders it.

tests/test_report_browser.py loads the same pages in Chromium."""

from __future__ import annotations

import json
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from aigate.cli import main
from aigate.measurements import McpServerProbe, McpTool
from aigate.report import render
from aigate.report.evidencefile import read_evidence
from aigate.report.html import render_html_from_evidence
from factories import T0
from report_support import EVIL, EVIL_ANSWER, hostile_assessment, sign


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_self_contained(page: str) -> None:
    """No script, no handler, nothing fetched: links stay in the page; CSS fetches nothing."""
    parser = _Tags()
    parser.feed(page)
    names = {t for t, _ in parser.tags}
    assert names.isdisjoint({"script", "img", "iframe", "object", "embed", "link", "base", "form"})
    attrs = [(k, v or "") for _, a in parser.tags for k, v in a.items()]
    assert not [k for k, _ in attrs if k.startswith("on") or k in ("src", "srcset", "xlink:href", "action")]
    assert all(v.startswith("#") for k, v in attrs if k == "href")
    assert "url(" not in page and "@import" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_check_report_shows_decision_gates_and_measured_figures() -> None:
    a = hostile_assessment()
    page = render(a, "html")
    assert_self_contained(page)
    assert "AI Production Readiness: FAIL · fraud/fraud-review-assistant" in page
    for title in ("Cost", "Reliability", "Fallback", "Tool control", "Evidence"):
        assert f'<b>{title}</b> <span class="st FAIL">FAIL</span>' in page
    # the SLO line at the declared p95 target, the budget line at the declared budget
    assert "SLO p95 4,000 ms" in page
    assert "budget $15,000" in page
    # one dot per measured request (12 + 8): nothing drawn that was not measured
    assert page.count("<circle") == 20
    cost = a.gate("cost").metrics
    assert f"${cost['projectedMonthlyUSD']:,.0f}" in page
    # fault mode x case: the one case without a valid outcome in the timeout mode
    assert "<b>0/1</b> · none 1" in page
    assert page.count("<b>1/1</b> · safeStop 1") == 19
    # tool control: the declared write tool without approval, and what the adversarial case made each model call
    assert "<code>create_case_note</code></td><td>write</td>" in page
    assert "called <code>create_case_note (write)</code>" in page
    assert "0/3 passed" in page
    assert "This run&#x27;s evidence was not signed." in page
    # the accepted risk: its gate ACCEPTED, who accepted it and until when
    assert '<b>Provider dependency</b> <span class="st ACCEPTED">ACCEPTED</span>' in page
    assert (
        "<td>providerDependency</td><td>ciso@example.com</td><td>2099-03-01T00:00:00Z</td><td>yes</td>"
        "<td>second provider &lt;contract&gt; signed in Q1</td>"
    ) in page


def test_every_spec_and_model_string_is_escaped() -> None:
    page = render(hostile_assessment(), "html")
    assert EVIL not in page and EVIL_ANSWER not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;window.__pwned=2&quot;&gt;" in page


def test_report_from_verified_evidence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evidence, _, pub = sign(tmp_path)
    html_out = tmp_path / "r.html"
    assert main(["report", str(evidence), "--key", str(pub), "-o", str(html_out)]) == 0
    assert "report of fraud/fraud-review-assistant from evidence.json: verified" in capsys.readouterr().err
    page = html_out.read_text()
    assert_self_contained(page)
    assert "Signature verified with key" in page and "(aigate.pub)" in page
    assert "rendered from signed evidence evidence.json" in page
    assert "aigate verify evidence.json --key aigate.pub" in page
    # what the evidence holds: each case's p95 per model (4 cases x 2 models), not each request
    assert page.count("<circle") == 8
    assert "each dot is one case&#x27;s p95" in page
    assert EVIL not in page and "&lt;script&gt;" in page
    # who accepted which risk, as signed
    assert "<td>providerDependency</td><td>ciso@example.com</td><td>2099-03-01T00:00:00Z</td><td>yes</td>" in page
    # the fault modes as the evidence records them, over all cases
    assert "<b>3/4</b> · safeStop 3, none 1" in page


def test_report_without_key_says_unverified(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evidence, _, _ = sign(tmp_path)
    assert main(["report", str(evidence), "-o", str(tmp_path / "r.html")]) == 0
    assert "NOT verified (no --key)" in capsys.readouterr().err
    page = (tmp_path / "r.html").read_text()
    assert '<p class="note bad">Not verified: no public key was given' in page
    assert "Signature verified" not in page


def test_tampered_evidence_is_refused_not_rendered(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import base64

    def flip(env: dict[str, Any]) -> None:
        payload = json.loads(base64.b64decode(env["payload"]))
        payload["predicate"]["decision"] = "PASS"
        env["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()

    evidence, _, pub = sign(tmp_path, mutate=flip)
    out = tmp_path / "r.html"
    assert main(["report", str(evidence), "--key", str(pub), "-o", str(out)]) == 1
    assert capsys.readouterr().err.startswith("evidence rejected: signature does not verify with key aigate.pub")
    assert not out.exists()


def test_report_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evidence, _, _ = sign(tmp_path)
    assert main(["report", str(evidence), "--workload", "w.yaml"]) == 2
    assert "--workload needs --key" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: cannot read" in capsys.readouterr().err
    (tmp_path / "junk.json").write_text("not json")
    assert main(["report", str(tmp_path / "junk.json")]) == 2
    assert "evidence is not JSON" in capsys.readouterr().err


def test_expired_evidence_renders_with_the_expiry_said(tmp_path: Path) -> None:
    evidence, _, pub = sign(tmp_path)
    from aigate.evidence.keys import load_public_key

    ev = read_evidence(evidence.read_bytes(), load_public_key(pub), key_name="aigate.pub")
    page = render_html_from_evidence(ev, source="evidence.json", now=ev.predicate.expires_at + timedelta(days=1))
    assert "This evidence expired at" in page and "<b>(expired)</b>" in page
    fresh = render_html_from_evidence(ev, source="evidence.json", now=T0)
    assert "(expired)" not in fresh


def test_tool_table_shows_what_an_mcp_server_exposed_and_annotated() -> None:
    a = hostile_assessment()
    a.measurements.mcp = [
        McpServerProbe(
            name="casetools",
            url="http://127.0.0.1:9/mcp",
            reachable=True,
            tools=[
                McpTool(name="lookup_policy", read_only_hint=True),
                McpTool(name="<b>wipe_cases</b>", destructive_hint=True),
            ],
        )
    ]
    page = render(a, "html")
    assert "<td><code>lookup_policy</code></td><td>read</td><td>none</td><td>casetools</td>" in page
    assert "<code>create_case_note</code></td><td>write</td><td>none</td><td>by none of casetools</td>" in page
    assert (
        "<td><code>&lt;b&gt;wipe_cases&lt;/b&gt;</code></td><td>not declared</td><td>\u2013</td><td>casetools</td>"
        "<td>destructiveHint: true</td>"
    ) in page


def test_a_report_from_the_cluster_lists_the_canaries_newest_first_escaped(tmp_path: Path) -> None:
    evidence, _, pub = sign(tmp_path)
    from aigate.evidence.keys import load_public_key

    ev = read_evidence(evidence.read_bytes(), load_public_key(pub), key_name="aigate.pub")
    canary = {
        "history": [
            {"at": "2026-12-06T06:00:00Z", "outcome": "NoDrift", "cases": ["a"], "spentUSD": 0.0012, "message": "ok"},
            {
                "at": "2026-12-06T12:00:00Z",
                "outcome": "ModelChanged",
                "cases": ["b"],
                "spentUSD": 0.001,
                "message": EVIL,
            },
            "not an entry",
        ]
    }
    page = render_html_from_evidence(ev, source="ConfigMap ns/x", canary=canary)
    assert "<h3>Canaries since</h3>" in page and "not part of the signed evidence" in page
    assert page.index("2026-12-06T12:00:00Z") < page.index("2026-12-06T06:00:00Z")
    assert "<td>ModelChanged</td><td>b</td><td>$0.0010</td>" in page and EVIL not in page
    assert "Canaries since" not in render_html_from_evidence(ev, source="evidence.json")

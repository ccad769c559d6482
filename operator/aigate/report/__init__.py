"""Renderings of an assessment: text for people, JSON for machines, JUnit for CI, Markdown for reviews, HTML for
the people who sign off a release, SARIF for code-scanning UIs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from aigate.assessment import Assessment
from aigate.report.html import render_html
from aigate.report.jsondoc import render_json
from aigate.report.junit import render_junit
from aigate.report.markdown import render_markdown
from aigate.report.sarif import render_sarif
from aigate.report.text import render_text

Format = Literal["text", "json", "junit", "markdown", "html", "sarif"]
FORMATS: dict[str, Callable[[Assessment], str]] = {
    "text": render_text,
    "json": render_json,
    "junit": render_junit,
    "markdown": render_markdown,
    "sarif": render_sarif,
    "html": render_html,
}


def render(a: Assessment, fmt: str, source: str | None = None) -> str:
    """`source`: the workload file, where SARIF locates its results."""
    if fmt == "sarif":
        return render_sarif(a, source)
    return FORMATS[fmt](a)

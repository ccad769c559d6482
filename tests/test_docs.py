"""The documentation: generated pages equal to what the code renders, settings declared once, links that resolve
inside the repository (a user's clone has nothing else)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aigate import chartgen, docgen
from aigate.api.errors import UsageError
from aigate.kube.config import OperatorConfig, env_name, from_env, security_of, settings_table
from aigate.policy.governance import PlatformDefault

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
KEY = {"AIGATE_SIGNING_KEY": "/keys/signing.pem"}


# -- generated pages ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(docgen.GENERATED))
def test_generated_page_is_current(name: str) -> None:
    page = DOCS / name
    assert page.exists(), f"docs/{name} is missing: run `make docs`"
    assert page.read_text() == docgen.GENERATED[name](), f"docs/{name} is out of date: run `make docs` and commit it"


def test_docgen_writes_every_generated_page(tmp_path: Path) -> None:
    assert docgen.main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(docgen.GENERATED)
    assert (tmp_path / "settings.md").read_text() == docgen.render_settings()


def test_resource_reference_covers_every_field() -> None:
    """Every property of the CRD's spec and status appears as a row, under the object that holds it."""
    from aigate.api.crd import openapi_schema

    text = docgen.render_resource()
    for path, node in [*docgen._objects(openapi_schema()["properties"]["spec"], "spec")]:
        section = text.split(f"## `{path}`\n", 1)[1].split("\n## ", 1)[0]
        for name in node["properties"]:
            assert f"| `{name}` |" in section, f"{path}.{name} missing from docs/resource.md"
    assert "## `spec.models[].credentials`" in text
    assert "## `status.summary`" in text
    assert "set secretRef or env" in text  # the CEL rules are listed


# -- settings: one declaration ----------------------------------------------------------------------------------


def test_every_setting_is_declared_once_with_a_why() -> None:
    names = [env_name(f) for f in OperatorConfig.model_fields]
    assert len(names) == len(set(names))
    assert all(n.startswith("AIGATE_") for n in names)
    table = settings_table()
    for field, info in OperatorConfig.model_fields.items():
        assert info.description, f"{field} has no why"
        [row] = [line for line in table.splitlines() if line.startswith(f"| `{env_name(field)}` |")]
        assert info.description in row
    assert "| `AIGATE_SIGNING_KEY` | path | required |" in table
    assert "| `AIGATE_JOB_DEADLINE_SECONDS` | seconds | `1800` |" in table
    assert "| `AIGATE_ACCEPTOR_GROUPS` | comma-separated | `aigate:risk-acceptors` |" in table


def test_defaults_are_the_declared_ones() -> None:
    config = from_env(KEY)
    for field, info in OperatorConfig.model_fields.items():
        if not info.is_required():
            assert getattr(config, field) == info.get_default(call_default_factory=True), field
    assert config.signing_key == Path("/keys/signing.pem")
    assert config.gate_command == ["aigate"] and config.watch_namespaces == []
    assert config.acceptor_groups == frozenset({"aigate:risk-acceptors"})


def test_settings_are_read_and_typed() -> None:
    env = {
        **KEY,
        "AIGATE_GATE_COMMAND": "python -m aigate",
        "AIGATE_WATCH_NAMESPACES": "team-a, team-b",
        "AIGATE_ACCEPTOR_GROUPS": "sec,platform",
        "AIGATE_WEBHOOK_PORT": "8443",
        "AIGATE_TIMER_INTERVAL_SECONDS": "2.5",
        "AIGATE_WEBHOOK_HOST": "",  # empty: the default (unset)
        "AIGATE_PUBLIC_KEY": "/keys/p.pub",
    }
    config = from_env(env)
    assert config.gate_command == ["python", "-m", "aigate"]
    assert config.watch_namespaces == ["team-a", "team-b"]
    assert config.acceptor_groups == frozenset({"sec", "platform"})
    assert (config.webhook_port, config.timer_interval_s, config.webhook_host) == (8443, 2.5, None)
    assert config.public_key == Path("/keys/p.pub")
    assert from_env({**KEY, "AIGATE_ACCEPTOR_GROUPS": ""}).acceptor_groups == frozenset()  # empty: nobody
    softer = from_env({**KEY, "AIGATE_DEFAULT_ENFORCEMENT": "warn", "AIGATE_DEFAULT_MAX_VALID_FOR": "168h"})
    assert softer.platform_default == PlatformDefault("warn", "168h")
    assert from_env(KEY).platform_default == PlatformDefault("enforce", "720h")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "AIGATE_SIGNING_KEY: not set (path to the evidence signing key"),
        ({**KEY, "AIGATE_WEBHOOK_PORT": "x"}, "AIGATE_WEBHOOK_PORT: must be an integer (got 'x')"),
        ({**KEY, "AIGATE_JOB_TTL_SECONDS": "1.5"}, "AIGATE_JOB_TTL_SECONDS: must be an integer (got '1.5')"),
        (
            {**KEY, "AIGATE_TIMER_INTERVAL_SECONDS": "soon"},
            "AIGATE_TIMER_INTERVAL_SECONDS: must be a number (got 'soon')",
        ),
        ({**KEY, "AIGATE_METRICS_PORT": "70000"}, "AIGATE_METRICS_PORT: Input should be less than 65536 (got '70000')"),
        ({**KEY, "AIGATE_JOB_MEMORY_LIMIT": "lots"}, "AIGATE_JOB_MEMORY_LIMIT: not a Kubernetes quantity"),
        (
            {**KEY, "AIGATE_DEFAULT_ENFORCEMENT": "off"},
            "AIGATE_DEFAULT_ENFORCEMENT: must be one of 'enforce', 'warn' or 'audit' (got 'off')",
        ),
        (
            {**KEY, "AIGATE_DEFAULT_MAX_VALID_FOR": "a month"},
            "AIGATE_DEFAULT_MAX_VALID_FOR: must be a duration such as 720h, 30d or 90m (got 'a month')",
        ),
        (
            {**KEY, "AIGATE_DEFAULT_MAX_VALID_FOR": "0s"},
            "AIGATE_DEFAULT_MAX_VALID_FOR: must be longer than 0s (evidence would expire as it is signed) (got '0s')",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        from_env(env)
    text = str(caught.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_config_is_built_by_attribute_name_too() -> None:
    """Tests and callers construct it directly, with the attribute names the operator code reads."""
    config = OperatorConfig(signing_key=Path("/k"), gate_command=["false"], job_deadline_s=60)
    assert config.job_resources == {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
    assert config.job_resources is not config.job_resources  # each Job gets its own copy
    with pytest.raises(ValueError):
        OperatorConfig(signing_key=Path("/k"), job_deadline_s=60, job_dedline_s=1)  # type: ignore[call-arg]


# -- links ---------------------------------------------------------------------------------------------------

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_CODE = re.compile(r"`[^`\n]*`")


def relative_links(text: str) -> list[str]:
    """The link targets of a Markdown text that are not URLs or in-page anchors (code blocks skipped)."""
    text = _CODE.sub("", _FENCE.sub("", text))
    targets = [a or b for a, b in _LINK.findall(text)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    out = []
    for target in relative_links(page.read_text()):
        path = target.split("#", 1)[0]
        resolved = (page.parent / path).resolve()
        if path.startswith("/") or not resolved.is_relative_to(root):
            out.append(f"{page.name}: {target} leaves the repository")
        elif not resolved.exists():
            out.append(f"{page.name}: {target} does not exist")
    return out


def test_there_are_pages_with_links() -> None:
    assert (DOCS / "README.md") in PAGES
    assert len(relative_links((ROOT / "README.md").read_text())) >= 5


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_stay_in_the_repository_and_resolve(page: Path) -> None:
    assert broken_links(page) == []


def test_the_link_check_finds_bad_links(tmp_path: Path) -> None:
    text = (
        "[a](../../shared/DESIGN.md) [b](missing.md#x) [c](cli.md) [d](https://example.org) [e](#top) [`f`](cli.md)\n"
    )
    text += "```\n[g](nowhere.md)\n```\n`[h](in-code.md)` [i](/etc/passwd)\n"
    assert relative_links(text) == ["../../shared/DESIGN.md", "missing.md#x", "cli.md", "cli.md", "/etc/passwd"]
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "cli.md").write_text("")
    page = tmp_path / "docs" / "page.md"
    page.write_text(text)
    assert broken_links(page, root=tmp_path) == [
        "page.md: ../../shared/DESIGN.md leaves the repository",
        "page.md: missing.md#x does not exist",
        "page.md: /etc/passwd leaves the repository",
    ]


def test_docs_index_links_every_page() -> None:
    index = relative_links((DOCS / "README.md").read_text())
    for page in DOCS.glob("*.md"):
        if page.name != "README.md":
            assert page.name in index, f"docs/README.md does not link {page.name}"


def test_the_security_relevant_defaults_are_marked_in_both_references() -> None:
    """The settings and chart values a platform must think twice about changing say what their default protects and
    what changing it exposes (docs/settings.md, docs/chart-values.md, generated from these marks)."""
    settings = {env_name(f) for f in OperatorConfig.model_fields if security_of(f) is not None}
    assert {
        "AIGATE_SIGNING_KEY",
        "AIGATE_ACCEPTOR_GROUPS",
        "AIGATE_WATCH_NAMESPACES",
        "AIGATE_WEBHOOK_CERT_VALIDITY_SECONDS",
        "AIGATE_DEFAULT_ENFORCEMENT",
        "AIGATE_DEFAULT_MAX_VALID_FOR",
    } <= settings
    schema, values = chartgen.load_chart(ROOT / "charts" / "aigate")
    marked = {row.split("`")[1] for row in chartgen.security_rows(schema, values)}
    assert {
        "webhook.failurePolicy",
        "networkPolicy.enabled",
        "networkPolicy.gateEgressPorts",
        "operator.watchNamespaces",
        "operator.acceptorGroups",
        "webhook.tls.certValiditySeconds",
        "signing.existingSecret",
        "defaultPolicy.enforcement",
        "defaultPolicy.maxValidFor",
        "webhook.excludeNamespaces",
    } <= marked
    page = (ROOT / "docs" / "settings.md").read_text()
    assert "| `AIGATE_DEFAULT_ENFORCEMENT` | `enforce` | enforce: where no AIGatePolicy sets a floor" in page


def test_a_security_mark_says_both_what_it_protects_and_what_changing_it_exposes() -> None:
    schema, values = chartgen.load_chart(ROOT / "charts" / "aigate")
    del schema["properties"]["webhook"]["properties"]["failurePolicy"][chartgen.SECURITY]["exposes"]
    with pytest.raises(chartgen.ChartGenError, match=r"webhook\.failurePolicy: x-security needs both"):
        chartgen.values_reference(schema, values)

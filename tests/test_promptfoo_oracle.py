"""promptfoo itself as the oracle: the real promptfoo (0.123.1, on Node 22, installed by hack/install-promptfoo.sh)
and aigate judge the same configs against the same `aigate simulate`, and every test's verdict must be equal.

Each oracle test below is a promptfoo test (vars, assert, threshold, options) and the answer the simulator gives it,
with the verdict we expect; promptfoo's verdict is checked against that expectation too, so a case that passes or
fails for an unintended reason (a typo in a config) is caught rather than compared away. Every assertion type and
config feature aigate imports has at least one passing and one failing case (test_every_supported_type_is_covered).

One `promptfoo eval` per config (JSON output, no cache, no table), offline: telemetry, update checks, sharing and
remote generation off, its config dir in tmp. Without promptfoo the module skips, except in CI (CI=true or
AIGATE_REQUIRE_CLUSTER=1), where a missing promptfoo fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from aigate.api.load import load_and_resolve
from aigate.api.promptfoo import SUPPORTED
from aigate.pipeline import CheckOptions, run_check
from aigate.simulator.profile import SimProfile
from aigate.simulator.server import SimulatorServer
from factories import one_path_workload

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "hack" / "install-promptfoo.sh"
OFFLINE = {
    "PROMPTFOO_DISABLE_TELEMETRY": "1",
    "PROMPTFOO_DISABLE_UPDATE": "1",
    "PROMPTFOO_DISABLE_SHARING": "1",
    "PROMPTFOO_DISABLE_REMOTE_GENERATION": "1",
    "PROMPTFOO_DISABLE_REDTEAM_REMOTE_GENERATION": "1",
    "PROMPTFOO_DISABLE_SHARE_EMAIL_REQUEST": "1",
}
LATENCY_MS = 5


def _pin(name: str) -> str:
    m = re.search(rf'^{name}="\$\{{{name}:-([0-9.]+)\}}"', INSTALL.read_text(), re.M)
    assert m, f"no {name} pin in {INSTALL}"
    return m.group(1)


def find_promptfoo() -> Path:
    """The pinned promptfoo (or $AIGATE_PROMPTFOO), else a skip (a failure in CI) saying how to install it."""
    if os.environ.get("AIGATE_PROMPTFOO"):
        return Path(os.environ["AIGATE_PROMPTFOO"])
    cache = Path(os.environ.get("AIGATE_CACHE_DIR") or Path.home() / ".cache" / "aigate")
    path = cache / "bin" / f"promptfoo-{_pin('PROMPTFOO_VERSION')}-node-{_pin('NODE_VERSION')}-linux-x64" / "promptfoo"
    if os.access(path, os.X_OK):
        return path
    why = f"promptfoo not found at {path} (install it: bash hack/install-promptfoo.sh, or set AIGATE_PROMPTFOO)"
    if os.environ.get("AIGATE_REQUIRE_CLUSTER") == "1" or os.environ.get("CI") == "true":
        pytest.fail(f"{why}; CI must install it")
    pytest.skip(why)


@dataclass(frozen=True)
class Oracle:
    """One promptfoo test: its description (unique), the test body, the answer, and the verdict we expect."""

    name: str
    test: dict[str, Any]
    answer: str
    passes: bool


def a(kind: str, value: Any = None, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind}
    if value is not None:
        out["value"] = value
    return {**out, **more}


def one(name: str, assertion: dict[str, Any], answer: str, passes: bool, **test: Any) -> Oracle:
    return Oracle(name, {"assert": [assertion], **test}, answer, passes)


JSON_ANSWER = '{"risk": "low", "summary": "Card used abroad"}'
SCHEMA = {"type": "object", "required": ["risk"], "properties": {"risk": {"enum": ["low", "medium"]}}}

# Each assertion type, passing and failing, including the divergences issue 21 found.
ASSERTIONS: list[Oracle] = [
    one("equals-pass", a("equals", "high"), "high", True),
    one("equals-fail-trailing-space", a("equals", "high"), "high ", False),
    one("equals-number", a("equals", 42), "42", True),
    one("equals-object", a("equals", {"a": 1, "b": [True]}), '{"b": [true], "a": 1}', True),
    one("equals-object-fail", a("equals", {"a": 1}), '{"a": true}', False),
    one("equals-object-not-json", a("equals", {"a": 1}), "a: 1", False),
    one("not-equals-object-not-json", a("not-equals", {"a": 1}), "a: 1", True),
    one("not-equals-pass", a("not-equals", "high"), "low", True),
    one("not-equals-fail", a("not-equals", "high"), "high", False),
    one("contains-pass", a("contains", "travel"), "a travel notice", True),
    one("contains-fail", a("contains", "Travel"), "a travel notice", False),
    one("contains-number", a("contains", 1044), "case 1044 closed", True),
    one("contains-zero", a("contains", 0), "case 1244 closed", False),
    one("not-contains-pass", a("not-contains", "freeze"), "no action", True),
    one("not-contains-fail", a("not-contains", "freeze"), "freeze the card", False),
    one("icontains-pass", a("icontains", "CARD"), "the card", True),
    one("icontains-fail", a("icontains", "CARD"), "the account", False),
    one("not-icontains-pass", a("not-icontains", "as an ai"), "Sure.", True),
    one("not-icontains-fail", a("not-icontains", "as an ai"), "As an AI, I", False),
    one("contains-any-list", a("contains-any", ["low", "medium"]), "risk: medium", True),
    one("contains-any-fail", a("contains-any", ["low", "medium"]), "risk: high", False),
    one("contains-any-text", a("contains-any", "low, medium"), "risk: medium", True),
    one("contains-any-quoted-csv", a("contains-any", '"a, b", c'), "say a, b here", True),
    one("contains-any-quoted-csv-fail", a("contains-any", '"a, b", c'), "say a here", False),
    one("contains-any-escaped-quote", a("contains-any", '"say ""hi"", x"'), 'they say "hi", x', True),
    # empty fields are dropped: "a,,b" and a trailing comma mean [a, b], not an empty string found everywhere
    one("contains-all-empty-fields", a("contains-all", "a,, zz ,"), "a b", False),
    one("not-contains-any-empty-fields", a("not-contains-any", "x, ,"), "abc", True),
    one("not-contains-any-pass", a("not-contains-any", ["x", "y"]), "abc", True),
    one("not-contains-any-fail", a("not-contains-any", ["x", "b"]), "abc", False),
    one("icontains-any-pass", a("icontains-any", ["LOW", "x"]), "risk low", True),
    one("icontains-any-fail", a("icontains-any", "HIGH, x"), "risk low", False),
    one("not-icontains-any-pass", a("not-icontains-any", ["HIGH"]), "low", True),
    one("not-icontains-any-fail", a("not-icontains-any", ["LOW"]), "low", False),
    one("contains-all-pass", a("contains-all", ["risk", "summary"]), JSON_ANSWER, True),
    one("contains-all-fail", a("contains-all", "risk, verdict"), JSON_ANSWER, False),
    one("not-contains-all-pass", a("not-contains-all", "low, travel"), "low risk", True),
    one("not-contains-all-fail", a("not-contains-all", "low, travel"), "low travel", False),
    one("icontains-all-pass", a("icontains-all", ["RISK", "Summary"]), JSON_ANSWER, True),
    one("icontains-all-fail", a("icontains-all", ["RISK", "verdict"]), JSON_ANSWER, False),
    one("not-icontains-all-pass", a("not-icontains-all", ["LOW", "x"]), "low", True),
    one("not-icontains-all-fail", a("not-icontains-all", ["LOW"]), "low", False),
    one("starts-with-pass", a("starts-with", "Yes"), "Yes, because", True),
    one("starts-with-fail", a("starts-with", "Yes"), " Yes, because", False),
    one("not-starts-with-pass", a("not-starts-with", "No"), "Yes", True),
    one("not-starts-with-fail", a("not-starts-with", "No"), "No way", False),
    one("regex-pass", a("regex", '"risk":\\s*"(low|medium)"'), JSON_ANSWER, True),
    one("regex-fail", a("regex", '"risk":\\s*"high"'), JSON_ANSWER, False),
    # JavaScript's \w is ASCII: promptfoo fails what Python's re would pass
    one("regex-js-word-non-ascii", a("regex", "^\\w+$"), "café", False),
    # JavaScript's $ (no m flag) is the very end: no match before a final newline, unlike Python's
    one("regex-js-dollar-newline", a("regex", "done$"), "done\n", False),
    one("regex-js-named-group", a("regex", "(?<w>ab)\\k<w>"), "xxabab", True),
    # JavaScript's . stops at \r (Python's does not)
    one("regex-js-dot-cr", a("regex", "a.b"), "a\rb", False),
    one("not-regex-pass", a("not-regex", "[Hh]igh"), "low", True),
    one("not-regex-fail", a("not-regex", "[Hh]igh"), "High", False),
    # each regex is its own pattern: a backreference counts groups of its own regex only
    Oracle(
        "regex-several-backreferences",
        {"assert": [a("regex", "(a)\\1"), a("regex", "(b)\\1")]},
        "aa bb",
        True,
    ),
    one("is-json-pass", a("is-json"), JSON_ANSWER, True),
    one("is-json-whitespace", a("is-json"), "  " + JSON_ANSWER + "\n", True),
    # promptfoo parses the whole output: a fenced answer is not JSON
    one("is-json-fenced", a("is-json"), "```json\n" + JSON_ANSWER + "\n```", False),
    one("is-json-nan", a("is-json"), '{"a": NaN}', False),
    one("is-json-schema-pass", a("is-json", SCHEMA), JSON_ANSWER, True),
    one("is-json-schema-fail", a("is-json", SCHEMA), '{"risk": "high"}', False),
    one("is-json-schema-yaml-text", a("is-json", "type: object\nrequired: [verdict]\n"), JSON_ANSWER, False),
    one("not-is-json-pass", a("not-is-json"), "plain words", True),
    one("not-is-json-fail", a("not-is-json"), JSON_ANSWER, False),
    one("not-is-json-schema-pass", a("not-is-json", SCHEMA), '{"risk": "high"}', True),
    one("not-is-json-schema-fail", a("not-is-json", SCHEMA), JSON_ANSWER, False),
    one("latency-pass", a("latency", threshold=60000), "ok", True),
    # the simulator answers after LATENCY_MS: a 1 ms threshold cannot hold
    one("latency-fail", a("latency", threshold=1), "ok", False),
    one("not-latency-pass", a("not-latency", threshold=1), "ok", True),
    one("not-latency-fail", a("not-latency", threshold=60000), "ok", False),
]

# Config features: vars, thresholds, weights, sets, transforms.
FEATURES: list[Oracle] = [
    Oracle("var-in-value", {"vars": {"id": "1044"}, "assert": [a("contains", "case {{id}}")]}, "case 1044", True),
    Oracle(
        "var-in-list-value",
        {"vars": {"id": "1044"}, "assert": [a("contains-all", ["case {{ id }}", "closed"])]},
        "case 1044 closed",
        True,
    ),
    Oracle(
        "var-in-list-value-fail",
        {"vars": {"id": "1045"}, "assert": [a("contains-any", ["case {{id}}"])]},
        "case 1044",
        False,
    ),
    Oracle("var-number", {"vars": {"n": 3}, "assert": [a("equals", "n={{n}}")]}, "n=3", True),
    Oracle(
        "threshold-pass",
        {"threshold": 0.5, "assert": [a("contains", "a"), a("contains", "zz")]},
        "abc",
        True,
    ),
    Oracle(
        "threshold-fail",
        {"threshold": 0.75, "assert": [a("contains", "a"), a("contains", "zz")]},
        "abc",
        False,
    ),
    Oracle(
        "weight-pass",
        {"threshold": 0.7, "assert": [a("contains", "a", weight=3), a("contains", "zz")]},
        "abc",
        True,
    ),
    Oracle(
        "weight-fail",
        {"threshold": 0.7, "assert": [a("contains", "a"), a("contains", "zz", weight=3)]},
        "abc",
        False,
    ),
    Oracle("threshold-zero", {"threshold": 0, "assert": [a("contains", "zz")]}, "abc", True),
    Oracle("weight-zero", {"assert": [a("contains", "a"), a("contains", "zz", weight=0)]}, "abc", True),
    Oracle("metric", {"assert": [a("contains", "zz", metric="tone")]}, "abc", False),
    Oracle(
        "assert-set-pass",
        {"assert": [{"type": "assert-set", "threshold": 0.5, "assert": [a("contains", "a"), a("contains", "zz")]}]},
        "abc",
        True,
    ),
    Oracle(
        "assert-set-fail",
        {"assert": [{"type": "assert-set", "assert": [a("contains", "a"), a("contains", "zz")]}]},
        "abc",
        False,
    ),
    Oracle(
        "options-transform",
        {"options": {"transform": "output.toUpperCase()"}, "assert": [a("equals", "ABC")]},
        "abc",
        True,
    ),
    Oracle(
        "options-transform-json",
        {"options": {"transform": "JSON.parse(output).risk"}, "assert": [a("equals", "low")]},
        JSON_ANSWER,
        True,
    ),
    Oracle(
        "options-transform-fail",
        {"options": {"transform": "output.trim()"}, "assert": [a("equals", "abc ")]},
        "abc ",
        False,
    ),
    Oracle(
        "assertion-transform",
        {"assert": [a("equals", "3", transform="String(output.length)"), a("equals", "abc")]},
        "abc",
        True,
    ),
    Oracle(
        "assertion-transform-object",
        {"assert": [a("contains", '"n":3', transform="({n: output.length})")]},
        "abc",
        True,
    ),
]


def _yaml_scalars_config(url: str) -> tuple[str, list[Oracle]]:
    """YAML 1.1 vs 1.2: written as text, so that the loaders' readings of `NO`, `Yes`, `1:30`, `~`, `0o17` and
    `017` are what is compared."""
    tests = [
        ("yaml-no", "contains: NO", "NO way", True),
        ("yaml-yes-fail", "contains: Yes", "true", False),
        ("yaml-sexagesimal", "contains: 1:30", "at 1:30", True),
        ("yaml-octal-text", "equals: 0o17", "15", True),
        ("yaml-leading-zero", "equals: 017", "17", True),
        ("yaml-on-off", "equals: off", "off", True),
    ]
    lines = ['prompts: ["Answer [{{key}}]"]', *_provider_lines(url), "tests:"]
    oracles = []
    for i, (name, assertion, answer, passes) in enumerate(tests):
        kind, value = assertion.split(": ", 1)
        lines += [
            f"  - description: {name}",
            f"    vars: {{key: Y{i:03d}}}",
            f"    assert: [{{type: {kind}, value: {value}}}]",
        ]
        oracles.append(Oracle(name, {"vars": {"key": f"Y{i:03d}"}}, answer, passes))
    lines += [
        "  - description: yaml-null-var",
        "    vars: {key: Y100, v: ~}",
        '    assert: [{type: equals, value: "x{{v}}y"}]',
    ]
    oracles.append(Oracle("yaml-null-var", {"vars": {"key": "Y100"}}, "xy", True))
    return "\n".join(lines) + "\n", oracles


def _provider_lines(url: str) -> list[str]:
    return [
        "providers:",
        "  - id: openai:chat:sim-gpt",
        f"    config: {{apiBaseUrl: {json.dumps(url + '/v1')}, apiKey: sim-key}}",
    ]


def _config(oracles: list[Oracle], url: str, **top: Any) -> dict[str, Any]:
    tests = []
    for i, o in enumerate(oracles):
        body = dict(o.test)
        if not isinstance(body.get("vars"), str):  # vars from a file hold their own key
            body["vars"] = {**body.get("vars", {}), "key": f"K{i:03d}"}
        tests.append({"description": o.name, **body})
    return {
        "prompts": ["Answer [{{key}}]"],
        "providers": [{"id": "openai:chat:sim-gpt", "config": {"apiBaseUrl": url + "/v1", "apiKey": "sim-key"}}],
        **top,
        "tests": tests,
    }


def _profile(answers: dict[str, str]) -> SimProfile:
    rules: list[dict[str, Any]] = [
        {"match": {"regex": re.escape(f"[{key}]")}, "content": answer} for key, answer in answers.items()
    ]
    rules.append({"content": "unmatched"})
    return SimProfile.model_validate(
        {
            "seed": 1,
            "models": {"sim-gpt": {"provider": "openai", "latency": {"fixedMs": LATENCY_MS}, "responses": rules}},
        }
    )


def promptfoo_verdicts(promptfoo: Path, config: Path) -> dict[str, bool]:
    """One `promptfoo eval` of the config: each test's description and success."""
    out = config.parent / "promptfoo-results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMPTFOO_", "OPENAI_", "ANTHROPIC_"))}
    env.update(OFFLINE, PROMPTFOO_CONFIG_DIR=str(config.parent / ".promptfoo"), NO_COLOR="1")
    run = subprocess.run(
        [str(promptfoo), "eval", "-c", config.name, "-o", out.name, "--no-cache", "--no-progress-bar", "--no-table"],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # promptfoo exits 100 when a test failed: that is a verdict, not an error
    assert run.returncode in (0, 100), f"promptfoo eval exited {run.returncode}:\n{run.stdout}\n{run.stderr}"
    results = json.loads(out.read_text())["results"]["results"]
    errors = {r["testCase"]["description"]: r["error"] for r in results if r.get("failureReason") == 2}
    assert not errors, f"promptfoo errored (not a verdict) on: {errors}"
    several = len({r["promptIdx"] for r in results}) > 1  # one result per test and prompt: named as aigate's cases
    return {
        (r["testCase"].get("description") or f"test-{r['testIdx'] + 1}")
        + (f" prompt {r['promptIdx'] + 1}" if several else ""): bool(r["success"])
        for r in results
    }


async def aigate_verdicts(config: Path, url: str) -> dict[str, bool]:
    """aigate's import of the same config, run once per test against the same simulator."""
    doc = one_path_workload(url + "/v1", suite={"repeats": 1, "import": {"promptfoo": {"file": config.name}}})
    path = config.parent / "workload.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    resolved = load_and_resolve(path)
    assessment = await run_check(resolved, CheckOptions(environ={"SIM_KEY": "sim-key"}))
    return {c.case: c.runs == 1 and c.passed == 1 for c in assessment.cases}


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


async def _compare(
    promptfoo: Path, tmp: Path, oracles: list[Oracle], files: dict[str, str] | None = None, **top: Any
) -> None:
    for name, body in (files or {}).items():
        (tmp / name).write_text(body)
    answers = {}
    for i, o in enumerate(oracles):
        v = o.test.get("vars", {})
        key = yaml.safe_load((tmp / v.removeprefix("file://")).read_text())["key"] if isinstance(v, str) else None
        answers[key or v.get("key", f"K{i:03d}")] = o.answer
    with SimulatorServer(_profile(answers)) as sim:
        config = tmp / "promptfooconfig.yaml"
        config.write_text(yaml.safe_dump(_config(oracles, sim.url, **top)))
        theirs = promptfoo_verdicts(promptfoo, config)
        ours = await aigate_verdicts(config, sim.url)
    expected = {o.name: o.passes for o in oracles}
    assert theirs == expected, "promptfoo's verdicts differ from what the oracle cases expect"
    assert ours == {_slug(k): v for k, v in theirs.items()}, "aigate's verdicts differ from promptfoo's"


@pytest.fixture(scope="module")
def promptfoo() -> Path:
    return find_promptfoo()


async def test_each_assertion_type_judged_as_promptfoo_judges_it(promptfoo: Path, tmp_path: Path) -> None:
    await _compare(promptfoo, tmp_path, ASSERTIONS)


async def test_config_features_judged_as_promptfoo_judges_them(promptfoo: Path, tmp_path: Path) -> None:
    await _compare(promptfoo, tmp_path, FEATURES)


async def test_default_test_applies_to_every_test(promptfoo: Path, tmp_path: Path) -> None:
    """defaultTest's vars, assertions, threshold and options under each test's own."""
    default = {
        "vars": {"team": "fraud"},
        "assert": [a("not-icontains", "as an ai"), a("contains", "{{team}}")],
        "options": {"transform": "output.trim()"},
    }
    oracles = [
        Oracle("default-pass", {"assert": [a("starts-with", "fraud")]}, "  fraud team  ", True),
        Oracle("default-assert-fails", {"assert": [a("starts-with", "As")]}, "As an AI: fraud", False),
        Oracle("default-var-overridden", {"vars": {"team": "risk"}}, "risk team", True),
        Oracle("default-var-overridden-fail", {"vars": {"team": "risk"}}, "fraud team", False),
        Oracle(
            "default-options-overridden",
            {"options": {"transform": "output"}, "assert": [a("equals", "fraud")]},
            " fraud",
            False,
        ),
    ]
    await _compare(promptfoo, tmp_path, oracles, defaultTest=default)


FILES = {
    "word.txt": "  travel\n",
    "schema.json": json.dumps(SCHEMA),
    "levels.yaml": "- low\n- medium\n",
    "doc.txt": "Card used abroad.\n",
    "data.yaml": "a: 1\nb: [x, NO]\n",
    "vars-pass.yaml": "key: KV1\nw: world\nn: 7\n",
    "vars-fail.yaml": "key: KV2\nw: world\nn: 7\n",
}
FILE_REFS: list[Oracle] = [
    one("file-txt-value", a("contains", "file://word.txt"), "a travel notice", True),
    one("file-txt-value-fail", a("contains", "file://word.txt"), "a trip", False),
    one("file-json-schema", a("is-json", "file://schema.json"), JSON_ANSWER, True),
    one("file-json-schema-fail", a("is-json", "file://schema.json"), '{"risk": "high"}', False),
    one("file-yaml-list", a("contains-any", "file://levels.yaml"), "risk medium", True),
    one("file-yaml-list-fail", a("contains-any", "file://levels.yaml"), "risk high", False),
    one("file-in-list", a("contains-all", ["file://word.txt", "notice"]), "a travel notice", True),
    one("file-in-list-fail", a("contains-all", ["file://word.txt", "notice"]), "a travel", False),
    Oracle(
        "file-var-txt",
        {"vars": {"doc": "file://doc.txt"}, "assert": [a("contains", "{{doc}}")]},
        "Card used abroad.",
        True,
    ),
    Oracle(
        "file-var-txt-fail",
        {"vars": {"doc": "file://doc.txt"}, "assert": [a("equals", "{{doc}}")]},
        "Card used abroad.\n",
        False,
    ),
    Oracle(
        "file-var-yaml",
        {"vars": {"data": "file://data.yaml"}, "assert": [a("equals", "{{data}}")]},
        '{"a":1,"b":["x","NO"]}',
        True,
    ),
]


async def test_file_references_read_as_promptfoo_reads_them(promptfoo: Path, tmp_path: Path) -> None:
    """file:// in assertion values (.txt trimmed, .json/.yaml parsed; in a list too) and in vars (.yaml as compact
    JSON, text trimmed), beside the config."""
    await _compare(promptfoo, tmp_path, FILE_REFS, FILES)


async def test_yaml_scalars_read_as_promptfoo_reads_them(promptfoo: Path, tmp_path: Path) -> None:
    answers = {
        "Y000": "NO way",
        "Y001": "true",
        "Y002": "at 1:30",
        "Y003": "15",
        "Y004": "17",
        "Y005": "off",
        "Y100": "xy",
    }
    with SimulatorServer(_profile(answers)) as sim:
        text, oracles = _yaml_scalars_config(sim.url)
        config = tmp_path / "promptfooconfig.yaml"
        config.write_text(text)
        theirs = promptfoo_verdicts(promptfoo, config)
        ours = await aigate_verdicts(config, sim.url)
    assert theirs == {o.name: o.passes for o in oracles}
    assert ours == {_slug(k): v for k, v in theirs.items()}


async def _compare_files(
    promptfoo: Path, tmp: Path, config: dict[str, Any], files: dict[str, str], answers: dict[str, str]
) -> tuple[dict[str, bool], dict[str, bool]]:
    for name, body in files.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(body)
    with SimulatorServer(_profile(answers)) as sim:
        (tmp / "promptfooconfig.yaml").write_text(
            yaml.safe_dump({"prompts": ["Answer [{{key}}]"], **config, "providers": _providers(sim.url)})
        )
        theirs = promptfoo_verdicts(promptfoo, tmp / "promptfooconfig.yaml")
        ours = await aigate_verdicts(tmp / "promptfooconfig.yaml", sim.url)
    return theirs, ours


def _providers(url: str) -> list[dict[str, Any]]:
    return [{"id": "openai:chat:sim-gpt", "config": {"apiBaseUrl": url + "/v1", "apiKey": "sim-key"}}]


CSV = (
    "key,team,__expected1,__expected2,__description,__metric,__threshold\n"
    'C1,fraud,contains: {{team}},"not-icontains-any: ""as an ai"", sorry",csv-pass,tone,\n'
    "C2,fraud,starts-with: fraud,icontains-all: TEAM,csv-fail,,\n"
    'C3,risk,"contains-any: low, ""a, b""",risk team,csv-equals,,\n'
    "C4,risk,regex: ^r\\w+$,contains: zz,csv-threshold,,0.5\n"
    "C5,risk,is-json,,,,\n"
    "C6,risk,latency(60000),not-starts-with: x,,,\n"
)


async def test_tests_from_files_read_as_promptfoo_reads_them(promptfoo: Path, tmp_path: Path) -> None:
    """CSV (__expected columns as text assertions, __description, __metric, __threshold; unnamed rows `Row #N`),
    YAML, JSON and JSONL test files, mixed with inline tests, with a defaultTest from a file."""
    files = {
        "tests.csv": CSV,
        "more/tests.yaml": yaml.safe_dump(
            [
                {"description": "yaml-pass", "vars": "vars.yaml", "assert": [a("contains", "{{team}}")]},
                {"description": "yaml-fail", "vars": {"key": "Y2", "team": "x"}, "assert": [a("equals", "x")]},
            ]
        ),
        "more/vars.yaml": "key: Y1\nteam: ops\n",
        "tests.json": json.dumps([{"description": "json-pass", "vars": {"key": "J1"}, "assert": [a("is-json")]}]),
        "tests.jsonl": json.dumps({"vars": {"key": "L1"}, "assert": [a("contains", "ok")]}) + "\n",
        "default.yaml": yaml.safe_dump({"assert": [a("not-contains", "forbidden")]}),
    }
    answers = {
        "C1": "fraud team",
        "C2": "Fraud team",
        "C3": "say a, b",
        "C4": "risky",
        "C5": "not json",
        "C6": "ok",
        "Y1": "ops team",
        "Y2": "y",
        "J1": "[1] forbidden",
        "L1": "ok",
        "I1": "fine",
    }
    config = {
        "defaultTest": "file://default.yaml",
        "tests": [
            "file://tests.csv",
            "file://more/tests.yaml",
            "file://tests.json",
            "file://tests.jsonl",
            {"description": "inline", "vars": {"key": "I1"}, "assert": [a("equals", "fine")]},
        ],
    }
    theirs, ours = await _compare_files(promptfoo, tmp_path, config, files, answers)
    assert theirs == {
        "csv-pass": True,
        "csv-fail": False,
        "csv-equals": False,
        "csv-threshold": True,
        "Row #5": False,
        "Row #6": True,
        "yaml-pass": True,
        "yaml-fail": False,
        "json-pass": False,
        "test-10": True,
        "inline": True,
    }
    assert ours == {_slug(k): v for k, v in theirs.items()}


async def test_each_test_runs_against_each_prompt(promptfoo: Path, tmp_path: Path) -> None:
    answers = {"P1a": "alpha", "P1b": "beta", "P2a": "alpha", "P2b": "alpha"}
    config = {
        "prompts": ["Answer [P{{n}}a]", "Answer [P{{n}}b]"],
        "tests": [
            {"description": "one", "vars": {"n": 1}, "assert": [a("equals", "alpha")]},
            {"description": "two", "vars": {"n": 2}, "assert": [a("equals", "alpha")]},
        ],
    }
    theirs, ours = await _compare_files(promptfoo, tmp_path, config, {}, answers)
    assert theirs == {"one prompt 1": True, "one prompt 2": False, "two prompt 1": True, "two prompt 2": True}
    assert ours == {_slug(k): v for k, v in theirs.items()}


async def test_prompts_from_files_read_as_promptfoo_reads_them(promptfoo: Path, tmp_path: Path) -> None:
    """A .txt file of two prompts split at `---`, a JSON chat message list, and an inline prompt."""
    files = {
        "prompts.txt": "Answer [T{{n}}a]\n---\n  Answer [T{{n}}b]  \n",
        "chat.json": json.dumps([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "[T{{n}}c]"}]),
    }
    answers = {"T1a": "alpha", "T1b": "beta", "T1c": "alpha", "T1d": "alpha"}
    config = {
        "prompts": ["file://prompts.txt", "file://chat.json", "Answer [T{{n}}d]"],
        "tests": [{"description": "one", "vars": {"n": 1}, "assert": [a("equals", "alpha")]}],
    }
    theirs, ours = await _compare_files(promptfoo, tmp_path, config, files, answers)
    assert theirs == {"one prompt 1": True, "one prompt 2": False, "one prompt 3": True, "one prompt 4": True}
    assert ours == {_slug(k): v for k, v in theirs.items()}


def test_every_supported_type_is_covered_passing_and_failing() -> None:
    """Each type aigate imports has a case promptfoo passes and one it fails in the tables above."""
    seen: dict[str, set[bool]] = {}

    def walk(asserts: list[dict[str, Any]], passes: bool) -> None:
        for x in asserts:
            seen.setdefault(x["type"], set()).add(passes)

    for o in ASSERTIONS + FEATURES:
        walk(o.test["assert"], o.passes)
    missing = {t: {True, False} - seen.get(t, set()) for t in SUPPORTED}
    assert {t: m for t, m in missing.items() if m} == {}

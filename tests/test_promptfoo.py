"""suite.import.promptfoo: a promptfoo config's tests run as aigate cases, their assertions mapped, and an
assertion aigate cannot judge refused by name (exit 2), never skipped."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from aigate.api.digest import spec_digest
from aigate.api.errors import WorkloadError
from aigate.api.load import load_and_resolve
from aigate.api.models import PromptfooImport
from aigate.api.promptfoo import file_references, load_config, promptfoo_cases
from aigate.cli import main
from aigate.pipeline import CheckOptions, judge, measure, run_check
from aigate.probes.assertions import evaluate
from aigate.report.text import render_text
from aigate.simulator.profile import SimProfile
from aigate.simulator.server import SimulatorServer
from factories import one_path_workload

ANSWER = '{"risk": "low", "summary": "Card used abroad with a travel notice."}'
PROMPTFOO: dict[str, Any] = {
    "description": "fraud triage",
    "prompts": ["Review fraud case {{case_id}}: {{facts}}. Answer in JSON."],
    "providers": ["openai:gpt-4.1-mini"],
    "defaultTest": {"assert": [{"type": "not-icontains", "value": "as an ai"}]},
    "tests": [
        {
            "description": "Traveller abroad",
            "vars": {"case_id": "1044", "facts": "purchase abroad, travel notice on file"},
            "assert": [
                {"type": "is-json", "value": {"type": "object", "required": ["risk", "summary"]}},
                {"type": "contains", "value": "travel"},
                {"type": "icontains", "value": "CARD"},
                {"type": "contains-any", "value": ["low", "medium"]},
                {"type": "contains-all", "value": ["risk", "summary"]},
                {"type": "regex", "value": '"risk":\\s*"(low|medium)"'},
                {"type": "not-contains", "value": "freeze"},
                {"type": "not-regex", "value": "[Hh][Ii][Gg][Hh]"},
                {"type": "not-equals", "value": "{{case_id}}"},
                {"type": "latency", "threshold": 5000},
            ],
        },
        {
            "vars": {"case_id": "1045", "facts": "refund on 11 of 12 orders"},
            "assert": [{"type": "equals", "value": "high"}, {"type": "not-contains-all", "value": "low, travel"}],
        },
    ],
}


def write_workload(tmp: Path, config: dict[str, Any], endpoint: str = "http://127.0.0.1:9") -> Path:
    (tmp / "promptfooconfig.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    doc = one_path_workload(endpoint, suite={"repeats": 30, "import": {"promptfoo": {"file": "promptfooconfig.yaml"}}})
    path = tmp / "workload.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_tests_become_cases_with_vars_substituted_and_assertions_mapped(tmp_path: Path) -> None:
    resolved = load_and_resolve(write_workload(tmp_path, PROMPTFOO))
    first, second = resolved.cases
    assert (first.name, second.name) == ("traveller-abroad", "test-2")
    assert [m.content for m in first.messages] == [
        "Review fraud case 1044: purchase abroad, travel notice on file. Answer in JSON."
    ]
    e = first.expect
    assert e.promptfoo is not None
    assert [(a.type, a.where) for a in e.promptfoo.asserts][:2] == [
        ("not-icontains", "defaultTest.assert[0]"),
        ("is-json", "tests[0].assert[0]"),
    ]
    assert e.promptfoo.asserts[-2].value == "1044"  # {{case_id}} rendered

    def holds(expect: Any, text: str) -> bool:
        return all(a.passed for a in evaluate(expect, text, [], 100.0))

    assert holds(e, ANSWER)
    for broken in (
        ANSWER.replace("low", "high"),  # not-regex, contains-any, regex
        ANSWER.replace("Card", "Account"),  # icontains CARD
        ANSWER.replace("abroad", "abroad. As an AI"),  # defaultTest's not-icontains
        ANSWER + " freeze",  # not-contains
        "1044",  # not-equals {{case_id}}, is-json
    ):
        assert not holds(e, broken), broken
    # equals is the whole answer
    assert holds(second.expect, "high") and not holds(second.expect, "high!") and not holds(second.expect, " high")
    # not-contains-all fails only when every value is present; contains-any as a comma-separated string
    [only] = promptfoo_cases(
        {"prompts": ["p"], "tests": [{"assert": [{"type": "not-contains-all", "value": "low, travel"}]}]},
        PromptfooImport(file="x"),
    )
    assert holds(only.expect, "low risk") and holds(only.expect, "travel") and not holds(only.expect, "low travel")
    [anyof] = promptfoo_cases(
        {"prompts": ["p"], "tests": [{"assert": [{"type": "contains-any", "value": "low,medium"}]}]},
        PromptfooImport(file="x"),
    )
    assert holds(anyof.expect, "medium") and not holds(anyof.expect, "high")


@pytest.mark.parametrize(
    ("assertion", "named"),
    [
        ({"type": "javascript", "value": "output.length < 100"}, "'javascript'"),
        ({"type": "llm-rubric", "value": "is polite"}, "'llm-rubric'"),
        ({"type": "contains", "value": "x", "provider": "openai:gpt-4"}, "contains with provider"),
    ],
)
def test_an_assertion_aigate_cannot_judge_is_an_input_error_naming_it(
    tmp_path: Path, assertion: dict[str, Any], named: str
) -> None:
    config = copy.deepcopy(PROMPTFOO)
    config["tests"][1]["assert"].append(assertion)
    with pytest.raises(WorkloadError) as err:
        load_and_resolve(write_workload(tmp_path, config))
    assert "spec.suite.import.promptfoo: promptfooconfig.yaml: tests[1].assert[2]: " in str(err.value)
    assert named in str(err.value)


def test_cli_exits_2_naming_the_unsupported_assertion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = copy.deepcopy(PROMPTFOO)
    config["tests"][0]["assert"].insert(0, {"type": "javascript", "value": "true"})
    path = write_workload(tmp_path, config)
    with pytest.raises(SystemExit) as done:
        main(["check", str(path), "--quiet"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "tests[0].assert[0]: assertion type 'javascript' cannot be judged by aigate" in err
    assert "Traceback" not in err


def test_a_var_the_test_lacks_is_an_error(tmp_path: Path) -> None:
    config = copy.deepcopy(PROMPTFOO)
    del config["tests"][1]["vars"]["facts"]
    with pytest.raises(WorkloadError, match=r"tests\[1\] message 0: uses \{\{facts\}\} but the test has no var"):
        load_and_resolve(write_workload(tmp_path, config))


def test_imported_cases_count_in_the_spec_digest(tmp_path: Path) -> None:
    before = spec_digest(load_and_resolve(write_workload(tmp_path, PROMPTFOO)))
    changed = copy.deepcopy(PROMPTFOO)
    changed["tests"][0]["assert"][1]["value"] = "notice"
    after = load_and_resolve(write_workload(tmp_path, changed))
    assert spec_digest(after) != before
    assert "spec.suite.import.promptfoo" in after.referenced


async def test_a_promptfoo_suite_runs_against_the_simulator(tmp_path: Path) -> None:
    """The traveller test passes every mapped assertion on the simulator's answer; the refund test's `equals high`
    cannot hold for a JSON answer: every repeat of it fails, on that assertion."""
    profile = {
        "seed": 1,
        "models": {"sim-gpt": {"provider": "openai", "latency": {"fixedMs": 5}, "responses": [{"content": ANSWER}]}},
    }
    with SimulatorServer(SimProfile.model_validate(profile)) as sim:
        path = write_workload(tmp_path, PROMPTFOO, endpoint=sim.url + "/v1")
        a = await run_check(load_and_resolve(path), CheckOptions(environ={"SIM_KEY": "sim-key"}))
    by_case = {c.case: c for c in a.cases}
    assert by_case["traveller-abroad"].runs == 30 and by_case["traveller-abroad"].passed == 30
    assert by_case["test-2"].runs == 30 and by_case["test-2"].passed == 0
    # promptfoo reports the last failed assertion of a test: its not-contains-all (equals failed too)
    assert all("tests[1].assert[1] not-contains-all" in f for f in by_case["test-2"].failures)
    assert a.gate("reliability").metrics["passRate"] == 0.5


def test_every_file_url_is_found_in_document_order_keys_included() -> None:
    """The loader confines what this finds: a `file://` it missed could lead anywhere."""
    config = {
        "prompts": {"file://prompt.txt": "label"},
        "defaultTest": "file:///etc/hostname",
        "tests": [{"vars": {"doc": "file://../x.yaml", "n": 1}}, "file://more.yaml", "not file://this"],
    }
    assert file_references(config) == [
        ("a key of prompts", "prompt.txt"),
        ("defaultTest", "/etc/hostname"),
        ("tests[0].vars.doc", "../x.yaml"),
        ("tests[1]", "more.yaml"),
    ]
    assert file_references("file://x") == [("(top level)", "x")]


async def test_unsupported_skip_runs_the_rest_and_lists_every_skipped_assertion(tmp_path: Path) -> None:
    """`unsupported: skip`: the llm-rubric and javascript assertions are not judged, the rest is; each skipped one is
    named in the report and in the signed predicate's case record, never dropped silently."""
    config = copy.deepcopy(PROMPTFOO)
    config["tests"][0]["assert"].insert(0, {"type": "llm-rubric", "value": "is polite"})
    config["tests"][1]["assert"].append({"type": "javascript", "value": "output.length > 3"})
    path = write_workload(tmp_path, config)
    with pytest.raises(WorkloadError, match=r"tests\[0\]\.assert\[0\]: assertion type 'llm-rubric' cannot be judged"):
        load_and_resolve(path)
    doc = yaml.safe_load(path.read_text())
    doc["spec"]["suite"]["import"]["promptfoo"]["unsupported"] = "skip"
    profile = {
        "seed": 1,
        "models": {"sim-gpt": {"provider": "openai", "latency": {"fixedMs": 5}, "responses": [{"content": ANSWER}]}},
    }
    with SimulatorServer(SimProfile.model_validate(profile)) as sim:
        doc["spec"]["models"][0]["endpoint"] = sim.url + "/v1"
        doc["spec"]["suite"]["repeats"] = 1
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        resolved = load_and_resolve(path)
        m = await measure(resolved, CheckOptions(environ={"SIM_KEY": "sim-key"}))
    _, predicate, _ = judge(resolved, m, now=datetime.now(UTC), key_id=None)
    skipped = {c.case: c.skipped for c in predicate.cases}
    assert skipped == {
        "traveller-abroad": ["tests[0].assert[0]: assertion type 'llm-rubric'"],
        "test-2": ["tests[1].assert[2]: assertion type 'javascript'"],
    }
    # the rest is judged: the traveller passes, the refund test's equals fails
    assert {c.case: c.passed for c in predicate.cases} == {"traveller-abroad": 1, "test-2": 0}
    a = await run_check(resolved, CheckOptions(environ={"SIM_KEY": "sim-key"}))
    assert (
        "Not judged (promptfoo import, unsupported: skip): 2 assertion(s): traveller-abroad: tests[0].assert[0]: "
        "assertion type 'llm-rubric'; test-2: tests[1].assert[2]: assertion type 'javascript'"
    ) in render_text(a).splitlines()


@pytest.mark.parametrize(
    ("config_text", "files", "message"),
    [
        (
            "prompts: ['{{day}}']\ntests:\n  - vars: {day: 2024-01-01}\n",
            {},
            "tests[0]: var day is a date (2024-01-01): promptfoo reads an unquoted date as a JavaScript Date; "
            "quote it ('2024-01-01') to mean the text",
        ),
        (
            "prompts: ['{{doc}}']\ntests:\n  - vars: {doc: file://doc.txt}\n",
            {"doc.txt": "caf\xe9".encode("latin-1")},
            "tests[0].vars.doc: cannot read doc.txt: not UTF-8 text",
        ),
        (
            "prompts: ['{{x}}']\ntests:\n  - vars: file://missing.yaml\n",
            {},
            "tests[0].vars: cannot read missing.yaml: No such file or directory",
        ),
        (
            "prompts: ['p']\ntests:\n  - assert: [{type: contains, value: file://run.py}]\n",
            {"run.py": b"print(1)"},
            "tests[0].assert[0]: 'file://run.py' is code (promptfoo would run it): aigate does not run suite code yet",
        ),
        (
            "prompts: ['p']\ntests:\n  - assert: [{type: regex, value: '(?i)high'}]\n",
            {},
            "tests[0].assert[0]: not a valid JavaScript regular expression: "
            "Invalid regular expression: /(?i)high/: Invalid group",
        ),
        (  # valid in the embedded V8, not in Node 22's, where promptfoo runs: judged as Node 22 judges it
            "prompts: ['p']\ntests:\n  - assert: [{type: regex, value: '(?i:high)'}]\n",
            {},
            "tests[0].assert[0]: not a valid JavaScript regular expression: Invalid regular expression: "
            "/(?i:high)/: Invalid group (modifiers need a newer Node than 22)",
        ),
        (
            "prompts: ['p']\nscenarios: [{config: [{vars: {a: 1}}], tests: [{vars: {b: 2}}]}]\ntests: [{vars: {}}]\n",
            {},
            "scenarios are not supported: write their tests out under tests",
        ),
        (
            "prompts: ['p']\ntests:\n  - {provider: 'openai:gpt-4', assert: [{type: contains, value: x}]}\n",
            {},
            "tests[0]: a test with provider is not supported (aigate runs the workload's models)",
        ),
        (
            "prompts: ['p']\ntests:\n  - {options: {prefix: 'Q: '}, assert: [{type: contains, value: x}]}\n",
            {},
            "tests[0]: options.prefix is not supported (it changes what promptfoo sends or keeps)",
        ),
    ],
)
def test_inputs_that_crashed_give_one_clear_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config_text: str, files: dict[str, bytes], message: str
) -> None:
    path = write_workload(tmp_path, {})
    (tmp_path / "promptfooconfig.yaml").write_text(config_text)
    for name, body in files.items():
        (tmp_path / name).write_bytes(body)
    with pytest.raises(SystemExit) as done:
        main(["check", str(path), "--quiet"])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert f"spec.suite.import.promptfoo: promptfooconfig.yaml: {message}" in err


def test_a_ten_thousand_test_config_is_held_to_the_limits(tmp_path: Path) -> None:
    """Small tests: under the size limit, over the case limit; long ones: over the size limit first."""
    small = {"prompts": ["p {{n}}"], "tests": [{"vars": {"n": i}} for i in range(10_000)]}
    with pytest.raises(WorkloadError, match=r"the config has 10000 tests, above the limit of 1000 cases"):
        load_and_resolve(write_workload(tmp_path, small))
    big = {"prompts": ["p"], "tests": [{"assert": [{"type": "contains", "value": f"{i:040}"}]} for i in range(10_000)]}
    with pytest.raises(WorkloadError, match=r"bytes, above the limit of 262144 bytes"):
        load_and_resolve(write_workload(tmp_path, big))
    deep: Any = "x"
    for _ in range(70):
        deep = [deep]
    with pytest.raises(WorkloadError, match=r"nested deeper than 64 levels"):
        load_and_resolve(write_workload(tmp_path, {"prompts": ["p"], "tests": [{"vars": {"v": deep}}]}))


def test_the_config_is_read_with_yaml_1_2_scalars_as_js_yaml_reads_them() -> None:
    """What promptfoo's js-yaml makes of each (checked against promptfoo by the oracle tests): only true/false are
    booleans, no sexagesimal numbers, 0o octal and leading-zero decimals; ~ and null are null; dates stay dates."""
    [doc] = load_config(
        "a: [NO, Yes, off, y, True, FALSE, 1:30, ~, null, 0o17, 017, 0x1F, 1_000, 1e3, .inf, 2024-01-01, '2024-01-01']"
    )
    assert doc["a"][:9] == ["NO", "Yes", "off", "y", True, False, "1:30", None, None]
    assert doc["a"][9:15] == [15, 17, 31, 1000, 1000.0, float("inf")]
    assert isinstance(doc["a"][15], date) and doc["a"][16] == "2024-01-01"


def test_an_assertion_transform_that_throws_fails_the_test_whatever_the_threshold() -> None:
    """promptfoo reports such a test as an error: no threshold or weight turns it into a pass."""
    [case] = promptfoo_cases(
        {
            "prompts": ["p"],
            "tests": [
                {
                    "threshold": 0.1,
                    "assert": [
                        {"type": "contains", "value": "a"},
                        {"type": "contains", "value": "b", "weight": 0, "transform": "output.no.such"},
                    ],
                }
            ],
        },
        PromptfooImport(file="x"),
    )
    [result] = evaluate(case.expect, "a", [], 1.0)
    assert not result.passed
    assert result.detail is not None and result.detail.startswith("error: tests[0].assert[1] contains: ")
    assert "Cannot read properties of undefined" in result.detail

"""Every bad input gets exit 2 and one clear line naming what is wrong and where, never a traceback."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from aigate.api.load import load_and_resolve
from aigate.cli import main
from aigate.simulator.profile import SimProfile
from aigate.simulator.server import SimulatorServer
from factories import ROOT, example_doc, one_path_workload


def write(tmp_path: Path, doc: Any, name: str = "w.yaml") -> Path:
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return p


def check(path: Path, capsys: pytest.CaptureFixture[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    code, _out, err = check_output(path, capsys, env)
    return code, err


def check_output(
    path: Path, capsys: pytest.CaptureFixture[str], env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """`aigate check PATH --quiet`: the exit code, stdout and stderr."""
    with pytest.MonkeyPatch.context() as mp:
        for k in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            mp.delenv(k, raising=False)
        for k, v in (env or {}).items():
            mp.setenv(k, v)
        with pytest.raises(SystemExit) as exc:
            main(["check", str(path), "--quiet"])
    out, err = capsys.readouterr()
    assert isinstance(exc.value.code, int)
    return exc.value.code, out, err


def mutated(change: Any) -> dict[str, Any]:
    doc = example_doc()
    doc["spec"]["prompts"] = [{"inline": "You review fraud cases."}]
    change(doc)
    return doc


CASES = {
    "wrong type": (
        lambda d: d["spec"]["traffic"].update(requestsPerDay="lots"),
        "spec.traffic.requestsPerDay: must be an integer (got 'lots')",
    ),
    "unknown provider": (
        lambda d: d["spec"]["models"][0].update(provider="cohere"),
        "spec.models[0].provider: must be one of 'openai', 'anthropic', 'azure-openai' or 'openai-compatible' "
        "(got 'cohere')",
    ),
    "negative price": (
        lambda d: d["spec"]["models"][1].update(pricing={"inputPerMTokUSD": -1, "outputPerMTokUSD": 2}),
        "spec.models[1].pricing.inputPerMTokUSD: must be >= 0 (got -1)",
    ),
    "missing owner": (lambda d: d["spec"].pop("owner"), "spec.owner: required"),
    "unknown field": (
        lambda d: d["spec"]["slo"].update(p95LatencyMS=10),
        "spec.slo.p95LatencyMS: unknown field",
    ),
    "two primaries": (
        lambda d: d["spec"]["models"][1].update(role="primary"),
        "spec.models: exactly one model must have role primary (found 2)",
    ),
}


@pytest.mark.parametrize("label", list(CASES))
def test_invalid_workload_exit_2_one_line(label: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    change, expected = CASES[label]
    code, err = check(write(tmp_path, mutated(change)), capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0] == f"aigate: error: {tmp_path / 'w.yaml'}: {expected}"


def test_unset_env_variable_names_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = check(write(tmp_path, mutated(lambda d: None)), capsys, env={"OPENAI_API_KEY": "k-123456"})
    assert code == 2
    assert err.strip() == (
        f"aigate: error: {tmp_path / 'w.yaml'}: spec.models[0].credentials.env: "
        "environment variable ANTHROPIC_API_KEY is not set"
    )


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "apiVersion: aigate.dev/v1alpha1\nkind: AIWorkload\nspec:\n  owner: [unclosed\n  models: []\n"
    code, err = check(write(tmp_path, text), capsys)
    assert code == 2
    assert err.strip().startswith(f"aigate: error: {tmp_path / 'w.yaml'}: YAML syntax error at line 5, column ")


def test_missing_file_and_missing_configmap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = check(tmp_path / "nope.yaml", capsys)
    assert (code, err.strip()) == (2, f"aigate: error: {tmp_path / 'nope.yaml'}: file not found")
    doc = example_doc()  # references ConfigMap fraud-prompts, which this file does not carry
    code, err = check(write(tmp_path, doc), capsys)
    assert code == 2
    assert "ConfigMap 'fraud-prompts' is not in the file" in err


ONE = "aigate takes one YAML file with one document of kind AIWorkload"


def test_not_a_workload(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A whole sentence: what the file holds instead, and what aigate takes."""
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\nkind: Deployment\nmetadata: {name: web}\n"
    code, err = check(write(tmp_path, text), capsys)
    path = tmp_path / "w.yaml"
    holds = "it holds ConfigMap x, Deployment web"
    want = f"aigate: error: {path}: no document of kind AIWorkload in the file ({holds}): {ONE}"
    assert (code, err) == (2, want + "\n")
    code, err = check(write(tmp_path, "# nothing yet\n"), capsys)
    assert (code, err) == (2, f"aigate: error: {path}: the file is empty: {ONE}\n")


def test_two_workloads_in_one_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = example_doc(), example_doc()
    second["metadata"]["name"] = "other"
    p = tmp_path / "two.yaml"
    p.write_text(yaml.safe_dump_all([first, second]))
    code, err = check(p, capsys)
    assert (code, err) == (
        2,
        f"aigate: error: {p}: 2 documents of kind AIWorkload in the file (fraud-review-assistant, other): "
        "aigate takes one workload per file; put each in its own file\n",
    )


def test_a_directory_is_one_line_naming_a_workload_file_in_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = check(ROOT / "examples", capsys)
    example = ROOT / "examples" / "fraud-review-assistant-remediated.yaml"
    assert (code, err) == (2, f"aigate: error: {ROOT / 'examples'}: is a directory: {ONE}, such as {example}\n")
    write(tmp_path, "apiVersion: v1\nkind: ConfigMap\n", "cm.yaml")
    code, err = check(tmp_path, capsys)
    assert (code, err) == (2, f"aigate: error: {tmp_path}: is a directory: {ONE}\n")
    assert "Errno" not in err


def test_console_script_prints_no_traceback(tmp_path: Path) -> None:
    bad = write(tmp_path, mutated(lambda d: d["spec"]["models"][0].update(provider="cohere")))
    exe = Path(sys.executable).parent / "aigate"
    proc = subprocess.run([str(exe), "check", str(bad)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "spec.models[0].provider" in proc.stderr


def test_bad_command_line_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["check", "x.yaml", "--format", "pdf"])
    assert exc.value.code == 2
    assert "invalid choice: 'pdf'" in capsys.readouterr().err


# -- file references stay in the workload's directory ----------------------------------------------------------

OUTSIDE = "canary-outside-3f9c1e: a file of the runner's"
"""The content of every file outside the workload's directory: it must reach no model and no output."""
SIM_PROFILE = {
    "seed": 1,
    "models": {
        "sim-gpt": {
            "provider": "openai",
            "latency": {"fixedMs": 1},
            "responses": [
                {"match": {"contains": "in a subdirectory", "scope": "anyMessage"}, "content": "saw the prompt file"},
                {"content": "ok"},
            ],
        }
    },
}
FIELDS = {
    "prompt": ("spec.prompts[0].file", lambda s, name: s.update(prompts=[{"file": name}])),
    "suite": ("spec.suite.file", lambda s, name: s.update(suite={"file": name})),
    "tool manifest": (
        "spec.tools[0].manifest.file",
        lambda s, name: s.update(tools=[{"name": "lookup", "access": "read", "manifest": {"file": name}}]),
    ),
    "promptfoo import": (
        "spec.suite.import.promptfoo.file",
        lambda s, name: s.update(suite={"import": {"promptfoo": {"file": name}}}),
    ),
}
OUTSIDE_REFS = ["/etc/hostname", "../x.yaml", "link.yaml", "ABSOLUTE"]
"""An absolute path, a relative one climbing out, a symlink beside the workload leading out, and the outside
file's absolute path (ABSOLUTE, filled in per test)."""


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimProfile.model_validate(SIM_PROFILE)) as s:
        yield s


def served(sim: SimulatorServer) -> int:
    """Requests the simulator has received, whatever became of them."""
    stats = sim.app.state.simulator
    return sum(stats.apis.values()) + sum(stats.other.values())


def sim_workload(sim: SimulatorServer, field: str | None = None, name: str = "") -> dict[str, Any]:
    """A workload against the simulator with everything inline, but `field` (a key of FIELDS) read from `name`."""
    doc = one_path_workload(
        sim.url + "/v1",
        prompts=[{"inline": "You review fraud cases."}],
        suite={"cases": [{"name": "one", "messages": [{"role": "user", "content": "Review case 1."}]}]},
    )
    if field is not None:
        FIELDS[field][1](doc["spec"], name)
    return doc


def outside_layout(tmp_path: Path) -> Path:
    """tmp/x.yaml (the outside file), tmp/ws/ (the workload's directory) with link.yaml -> ../x.yaml."""
    (tmp_path / "x.yaml").write_text(OUTSIDE)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "link.yaml").symlink_to("../x.yaml")
    return ws


@pytest.mark.parametrize("ref", OUTSIDE_REFS)
@pytest.mark.parametrize("field", list(FIELDS))
def test_a_file_outside_the_workloads_directory_is_refused_naming_the_field(
    field: str, ref: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], sim: SimulatorServer
) -> None:
    """A pull request's workload names the endpoint: a file it could read from anywhere would go there."""
    ws = outside_layout(tmp_path)
    name = str(tmp_path / "x.yaml") if ref == "ABSOLUTE" else ref
    path = write(ws, sim_workload(sim, field, name))
    before = served(sim)
    code, out, err = check_output(path, capsys, env={"SIM_KEY": "sim-key"})
    why = f"{name} resolves outside the workload's directory {ws.resolve()}"
    assert (code, err) == (2, f"aigate: error: {path}: {FIELDS[field][0]}: {why}\n")
    assert "Traceback" not in err
    assert served(sim) == before, "the simulator was called"
    assert OUTSIDE not in out + err


PROMPTFOO_CONFIG: dict[str, Any] = {
    "prompts": ["Review {{doc}}"],
    "tests": [{"vars": {"doc": "case 1"}, "assert": [{"type": "contains", "value": "ok"}]}],
}
PROMPTFOO_OUTSIDE = {
    "prompts[0]": ("../../x.yaml", lambda c, url: c.update(prompts=[url])),
    "tests[0].vars.doc": ("/etc/hostname", lambda c, url: c["tests"][0]["vars"].update(doc=url)),
    "tests": ("link.yaml", lambda c, url: c.update(tests=url)),
    "defaultTest.assert[0].value": (
        "../notes.txt",  # in the workload's directory, but not in the config's
        lambda c, url: c.update(defaultTest={"assert": [{"type": "contains", "value": url}]}),
    ),
    "a key of prompts": ("ABSOLUTE", lambda c, url: c.update(prompts={url: "the prompt"})),
}


@pytest.mark.parametrize("field", list(PROMPTFOO_OUTSIDE))
def test_a_promptfoo_file_url_outside_the_configs_directory_is_refused_naming_it(
    field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], sim: SimulatorServer
) -> None:
    """promptfoo reads `file://` beside its config; an imported config may point nowhere else."""
    ws = outside_layout(tmp_path)
    (ws / "notes.txt").write_text(OUTSIDE)
    pf = ws / "pf"
    pf.mkdir()
    (pf / "link.yaml").symlink_to("../../x.yaml")
    name, change = PROMPTFOO_OUTSIDE[field]
    name = str(tmp_path / "x.yaml") if name == "ABSOLUTE" else name
    config = copy.deepcopy(PROMPTFOO_CONFIG)
    change(config, "file://" + name)
    write(pf, config, "promptfooconfig.yaml")
    path = write(ws, sim_workload(sim, "promptfoo import", "pf/promptfooconfig.yaml"))
    before = served(sim)
    code, out, err = check_output(path, capsys, env={"SIM_KEY": "sim-key"})
    where = f"spec.suite.import.promptfoo: pf/promptfooconfig.yaml: {field}"
    why = f"{name} resolves outside the config's directory {pf.resolve()}"
    assert (code, err) == (2, f"aigate: error: {path}: {where}: {why}\n")
    assert "Traceback" not in err
    assert served(sim) == before, "the simulator was called"
    assert OUTSIDE not in out + err


INSIDE = "You review fraud cases; this prompt is a file in a subdirectory."


def inside_layout(ws: Path) -> None:
    """ws/sub/ holds a prompt, a suite, a manifest and a promptfoo config; ws/ holds a symlink to each."""
    sub = ws / "sub"
    sub.mkdir()
    (sub / "system.md").write_text(INSIDE)
    (sub / "cases.yaml").write_text(
        yaml.safe_dump([{"name": "from-a-file", "messages": [{"role": "user", "content": "Hi"}]}])
    )
    (sub / "lookup.json").write_text('{"type": "object", "properties": {"caseId": {"type": "string"}}}')
    write(sub, PROMPTFOO_CONFIG, "promptfooconfig.yaml")
    for name in ("system.md", "cases.yaml", "lookup.json", "promptfooconfig.yaml"):
        (ws / name).symlink_to(f"sub/{name}")


INSIDE_NAMES = {
    "prompt": "system.md",
    "suite": "cases.yaml",
    "tool manifest": "lookup.json",
    "promptfoo import": "promptfooconfig.yaml",
}


@pytest.mark.parametrize("through", ["sub/", "", "sub/../"])
@pytest.mark.parametrize("field", list(FIELDS))
def test_a_file_in_a_subdirectory_or_a_symlink_staying_inside_is_read(
    field: str, through: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    """`sub/x` is the file itself; `x` a symlink to it; `sub/../x` the symlink again, by a path that climbs."""
    ws = tmp_path / "ws"
    ws.mkdir()
    inside_layout(ws)
    resolved = load_and_resolve(write(ws, sim_workload(sim, field, through + INSIDE_NAMES[field])))
    if field == "prompt":
        assert resolved.system_prompt == INSIDE
    elif field == "suite":
        assert [c.name for c in resolved.cases] == ["from-a-file"]
    elif field == "tool manifest":
        assert resolved.tools[0].parameters["properties"] == {"caseId": {"type": "string"}}
    else:
        assert [m.content for c in resolved.cases for m in c.messages] == ["Review case 1"]


def test_files_inside_reach_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], sim: SimulatorServer
) -> None:
    """The control for the refusals above: with its files inside, the same workload is measured on the simulator,
    which answers from the prompt the file holds."""
    ws = tmp_path / "ws"
    ws.mkdir()
    inside_layout(ws)
    doc = sim_workload(sim, "prompt", "system.md")
    FIELDS["tool manifest"][1](doc["spec"], "sub/lookup.json")
    doc["spec"]["suite"]["cases"][0]["expect"] = {"contains": ["saw the prompt file"]}
    monkeypatch.setenv("SIM_KEY", "sim-key")
    before = served(sim)
    code = main(["check", str(write(ws, doc)), "--quiet", "--format", "json"])
    reliability = next(g for g in json.loads(capsys.readouterr().out)["gates"] if g["gate"] == "reliability")
    assert code == 2 and reliability["error_reason"] == "InsufficientSamples"  # one sample: no input error
    assert reliability["metrics"]["passRate"] == 1.0 and served(sim) > before

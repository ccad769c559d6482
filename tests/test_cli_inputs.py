"""Every bad input gets exit 2 and one clear line naming what is wrong and where, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from aigate.cli import main
from factories import ROOT, example_doc


def write(tmp_path: Path, doc: Any, name: str = "w.yaml") -> Path:
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return p


def check(path: Path, capsys: pytest.CaptureFixture[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    with pytest.MonkeyPatch.context() as mp:
        for k in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            mp.delenv(k, raising=False)
        for k, v in (env or {}).items():
            mp.setenv(k, v)
        with pytest.raises(SystemExit) as exc:
            main(["check", str(path), "--quiet"])
    err = capsys.readouterr().err
    assert isinstance(exc.value.code, int)
    return exc.value.code, err


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

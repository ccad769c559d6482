"""The gate process's API access (aigate/gateapi.py) against a real HTTPS server on loopback that serves ConfigMaps
as the API server does: in-cluster ServiceAccount (token re-read on every call), kubeconfig with a client certificate
or a token, errors by status, and `run_gates` reading its input and writing its result through it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from aigate.api.load import resolve
from aigate.controller import jobs
from aigate.gateapi import GateApiConfigError, GateApiError, connect, from_kubeconfig, in_cluster
from aigate.kube import names
from aigate.kube.gaterun import read_result
from aigate.rungates import run_gates
from configmap_api import ConfigMapApi, serving
from jobs_support import CANARY, CASES, DIGEST, workload

NS = "aigate-gates"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ConfigMapApi]:
    with serving(tmp_path) as server:
        yield server


def service_account(tmp_path: Path, api: ConfigMapApi, token: str) -> Path:
    d = tmp_path / "sa"
    d.mkdir()
    (d / "token").write_text(token + "\n")
    (d / "ca.crt").write_bytes(api.ca.pair.cert.read_bytes())
    api.tokens.add(token)
    return d


def host_port(api: ConfigMapApi) -> tuple[str, str]:
    host, port = api.url.removeprefix("https://").rsplit(":", 1)
    return host, port


def test_in_cluster_reads_and_merge_patches_with_the_current_token(tmp_path: Path, api: ConfigMapApi) -> None:
    sa = service_account(tmp_path, api, "token-1")
    host, port = host_port(api)
    api.put(NS, "result", {"keep": "yes", "drop": "me"})
    gate, how = connect({"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}, service_account_dir=sa)
    assert how == "in-cluster ServiceAccount (KUBECONFIG is not set)"
    assert gate.read_configmap(NS, "result")["data"] == {"keep": "yes", "drop": "me"}

    (sa / "token").write_text("token-2")  # the kubelet rotates the projected token under the running pod
    api.tokens.add("token-2")
    gate.patch_configmap(NS, "result", {"data": {"drop": None, "result.json": "{}"}})
    assert api.configmaps[(NS, "result")]["data"] == {"keep": "yes", "result.json": "{}"}
    assert api.configmaps[(NS, "result")]["metadata"]["resourceVersion"] == "2"
    assert [(m, who) for m, _, who in api.seen] == [("GET", "token:token-1"), ("PATCH", "token:token-2")]


def test_errors_carry_the_status(tmp_path: Path, api: ConfigMapApi) -> None:
    sa = service_account(tmp_path, api, "t")
    gate = in_cluster(*host_port(api), service_account_dir=sa)
    api.put(NS, "other", {})
    api.readable = {"input"}
    with pytest.raises(GateApiError) as e:
        gate.read_configmap(NS, "other")
    assert (e.value.status, str(e.value)) == (403, "HTTP 403 Forbidden")
    api.readable = set()
    with pytest.raises(GateApiError) as e:
        gate.patch_configmap(NS, "missing", {"data": {"a": "b"}})
    assert e.value.status == 404
    (sa / "token").write_text("not-a-token")
    with pytest.raises(GateApiError) as e:
        gate.read_configmap(NS, "other")
    assert e.value.status == 401

    unreachable = in_cluster("127.0.0.1", "1", service_account_dir=sa)
    with pytest.raises(GateApiError) as e:
        unreachable.read_configmap(NS, "other")
    assert e.value.status is None and "ConnectError" in str(e.value)


def test_kubeconfig_with_a_client_certificate_and_with_a_token(tmp_path: Path, api: ConfigMapApi) -> None:
    api.put(NS, "input", {"k": "v"})
    pair = api.ca.issue(tmp_path, "admin", "kube-admin", organizations=("system:masters",), client=True)
    kubeconfig = tmp_path / "kubeconfig"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "local",
        "contexts": [{"name": "local", "context": {"cluster": "c", "user": "admin"}}],
        "clusters": [{"name": "c", "cluster": {"server": api.url, "certificate-authority": "ca.crt"}}],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate-data": base64.b64encode(pair.cert.read_bytes()).decode(),
                    "client-key": str(pair.key),
                },
            }
        ],
    }
    kubeconfig.write_text(yaml.safe_dump(doc))
    gate, how = connect({"KUBECONFIG": f"{kubeconfig}:/elsewhere"})
    assert how == f"kubeconfig {kubeconfig} (KUBECONFIG is set)"
    assert gate.read_configmap(NS, "input")["data"] == {"k": "v"}
    assert api.seen[-1][2] == "cert:kube-admin"

    api.tokens.add("tok")
    doc["users"] = [{"name": "admin", "user": {"token": "tok"}}]
    kubeconfig.write_text(yaml.safe_dump(doc))
    assert from_kubeconfig(kubeconfig).read_configmap(NS, "input")["data"] == {"k": "v"}
    assert api.seen[-1][2] == "token:tok"


def test_configuration_errors_say_what_and_where(tmp_path: Path) -> None:
    with pytest.raises(GateApiConfigError, match=r"this is not a pod .* and there is no .*/\.kube/config"):
        connect({"HOME": str(tmp_path)})
    with pytest.raises(GateApiConfigError, match=r"sa/token is missing"):
        connect(
            {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"},
            service_account_dir=tmp_path / "sa",
        )
    bad = tmp_path / "kubeconfig"
    bad.write_text("current-context: x\ncontexts: []\n")
    with pytest.raises(GateApiConfigError, match=rf"kubeconfig {bad}: no context named 'x'"):
        connect({"KUBECONFIG": str(bad)})


def _input() -> str:
    wl = workload()
    configmaps = {
        "prompts": {"system.md": "You are careful.", "style.md": "Be brief."},
        "suite": {"cases.yaml": CASES},
        "tools": {"m": "{}"},
    }
    resolve(wl, lambda ref: configmaps[ref.name][ref.key])  # the input is a valid spec, only not DIGEST's
    return jobs.run_input(wl, configmaps)


def test_run_gates_reads_its_input_and_writes_its_result_through_the_loopback_api(
    tmp_path: Path, api: ConfigMapApi, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stale input (not the spec the run was started for) is the one outcome that needs no model: the whole
    round trip through the API, without measuring."""
    sa = service_account(tmp_path, api, "gate-token")
    host, port = host_port(api)
    payload = _input()
    api.put(NS, "in", {names.INPUT_KEY: payload})
    api.put(NS, "out", {})
    api.readable = {"in", "out"}
    environ = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port, "AIGATE_SECRET_X_1": CANARY}
    gate, _ = connect(environ, service_account_dir=sa)
    code = run_gates(NS, "in", "out", DIGEST, "r1", environ=environ, api=gate)
    assert code == 1
    result = read_result(api.configmaps[(NS, "out")], run_id="r1", spec_digest=DIGEST)
    assert result.outcome == "stale" and result.observed_digest and result.observed_digest != DIGEST
    err = capsys.readouterr().err
    assert "aigate run-gates: stale:" in err and CANARY not in err
    assert [m for m, _, _ in api.seen] == ["GET", "PATCH"]

    api.readable = {"in"}  # the Role does not name the result: one line saying so, no traceback
    code = run_gates(NS, "in", "out", DIGEST, "r2", environ=environ, api=gate)
    [line] = capsys.readouterr().err.splitlines()
    assert code == 1
    assert line == (
        f"aigate run-gates: error: writing result ConfigMap {NS}/out: HTTP 403 Forbidden "
        "(the gate Job's Role does not allow it)"
    )
    assert json.loads(api.configmaps[(NS, "out")]["data"][names.RESULT_KEY])["runId"] == "r1"


def test_a_canary_run_sends_its_cases_once_per_path_with_no_faults(tmp_path: Path, api: ConfigMapApi) -> None:
    """`run-gates --canary` against the real simulator: only the cases the operator named, once each, no fault
    injection, the answered identity recorded; a canary input naming a case the suite lacks is one line."""
    from aigate.api.digest import spec_digest
    from aigate.api.models import AIWorkload
    from aigate.simulator.profile import SimProfile
    from aigate.simulator.server import SimulatorServer
    from factories import one_path_workload

    profile = {"models": {"sim-gpt": {"provider": "openai", "servedModel": "sim-gpt-2026-01-01"}}}
    with SimulatorServer(SimProfile.model_validate(profile)) as sim:
        cases = [{"name": n, "messages": [{"role": "user", "content": n}]} for n in ("a", "b", "c", "d")]
        doc = one_path_workload(sim.url + "/v1", suite={"cases": cases, "repeats": 3})
        doc["metadata"]["uid"] = "u-1"
        doc["spec"]["models"][0]["credentials"] = {"secretRef": {"name": "sim", "key": "k"}}
        wl = AIWorkload.model_validate(doc)
        digest = spec_digest(resolve(wl, lambda ref: ""))
        sa = service_account(tmp_path, api, "gate-token")
        host, port = host_port(api)
        canary = json.dumps({"cases": ["d", "a"], "maxUSD": 0.5})
        api.put(NS, "in", {names.INPUT_KEY: jobs.run_input(wl, {}), names.CANARY_KEY: canary})
        api.put(NS, "out", {})
        api.readable = {"in", "out"}
        environ = {
            "KUBERNETES_SERVICE_HOST": host,
            "KUBERNETES_SERVICE_PORT": port,
            names.secret_env_name("sim", "k"): "sk-sim",
        }
        gate, _ = connect(environ, service_account_dir=sa)
        assert run_gates(NS, "in", "out", digest, "c1", environ=environ, api=gate, canary=True) == 0
        result = read_result(api.configmaps[(NS, "out")], run_id="c1", spec_digest=digest)
        m = result.measurements
        assert m is not None and m.faults == [] and m.mcp == []
        runs = m.models["primary"].runs
        assert sorted((r.case, r.repeat) for r in runs) == [("a", 0), ("d", 0)]
        assert {i.model for i in m.models["primary"].identities} == {"sim-gpt-2026-01-01"}
        assert sim.stats()["models"]["sim-gpt"]["requests"] == 2

        api.put(NS, "in", {names.INPUT_KEY: jobs.run_input(wl, {}), names.CANARY_KEY: '{"cases": ["z"], "maxUSD": 1}'})
        assert run_gates(NS, "in", "out", digest, "c2", environ=environ, api=gate, canary=True) == 1
        result = read_result(api.configmaps[(NS, "out")], run_id="c2", spec_digest=digest)
        assert result.outcome == "error"
        assert result.error == f"input ConfigMap {NS}/in {names.CANARY_KEY}: the suite has no case z"

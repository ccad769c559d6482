"""`kubectl aigate check-install`'s verdicts (aigate/installcheck.py): which answers of the API server prove that
aigate's webhooks answered, which mean "not yet", and which mean retrying will not help. The real route (API
server -> Service -> webhook pod) is exercised in tests/cluster/test_chart_install_check.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aigate.api.models import AIWorkload
from aigate.installcheck import Configurations, Outcome, classify, probe_workload, read_configurations, wait
from aigate.kubectl_plugin import main

NS = "aigate-system"
BOTH = ("acceptances.aigate.dev", "aiworkloads.aigate.dev")
CONFIGS = Configurations(found=BOTH, service=f"{NS}/aigate-webhook")
REFUSED = "connection refused"
CALL_FAILED = (
    'Internal error occurred: failed calling webhook "acceptances.aigate.dev": failed to call webhook: Post '
    '"https://aigate-webhook.aigate-system.svc:443/acceptances.aigate.dev?timeout=5s": dial tcp 10.0.0.222:443: '
    f"connect: {REFUSED}"
)


def hook(name: str, *, ns: str = NS, ca: str = "Q0E=", excluded: tuple[str, ...] = ("kube-system",)) -> dict[str, Any]:
    return {
        "name": name,
        "clientConfig": {"service": {"name": "aigate-webhook", "namespace": ns, "port": 443}, "caBundle": ca},
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": list(excluded)},
                {"key": "aigate.dev/ignore", "operator": "DoesNotExist"},
            ]
        },
    }


def configs(*hooks: dict[str, Any], labels: dict[str, str] | None = None) -> Configurations:
    validating = [{"webhooks": [h for h in hooks if h["name"] != "acceptances.aigate.dev"]}]
    mutating = [{"webhooks": [h for h in hooks if h["name"] == "acceptances.aigate.dev"]}]
    return read_configurations(validating, mutating, NS, labels or {"kubernetes.io/metadata.name": NS})


def test_the_probe_is_a_valid_aiworkload_with_nothing_to_refuse() -> None:
    body = probe_workload("team-a")
    AIWorkload.model_validate(body)
    spec = body["spec"]
    assert "riskAcceptances" not in spec and "enforcement" not in spec
    assert all("credentials" not in m for m in spec["models"])


def test_configurations_are_read_for_the_operator_namespace_only() -> None:
    other = hook("aiworkloads.aigate.dev", ns="elsewhere")
    got = configs(hook("acceptances.aigate.dev"), hook("aiworkloads.aigate.dev"), other, hook("rollouts.aigate.dev"))
    assert got.found == BOTH
    assert got.service == f"{NS}/aigate-webhook"
    assert got.missing_ca == () and got.not_selecting == ()


def test_admitted_dry_run_works() -> None:
    out = classify(CONFIGS, None, "", NS)
    assert out.state == "works"
    assert "admitted by acceptances.aigate.dev, aiworkloads.aigate.dev" in out.message


def test_a_refusal_in_aigates_words_is_an_answer() -> None:
    message = 'admission webhook "aiworkloads.aigate.dev" denied the request: AIGatePolicy strict: endpoint not allowed'
    out = classify(CONFIGS, 403, message, NS)
    assert out == Outcome(
        "works", f"aiworkloads.aigate.dev answered a dry-run AIWorkload in {NS} (it refused it: {message})"
    )


@pytest.mark.parametrize(
    "status,message",
    [
        (500, CALL_FAILED),
        (500, 'Internal error occurred: failed calling webhook "aiworkloads.aigate.dev": context deadline exceeded'),
        (503, 'no endpoints available for service "aigate-webhook"'),
        (404, "the server could not find the requested resource"),
    ],
)
def test_unreachable_webhooks_mean_wait(status: int, message: str) -> None:
    out = classify(CONFIGS, status, message, NS)
    assert out.state == "waiting"
    assert message.splitlines()[0][:80] in out.message


def test_the_route_named_when_the_call_fails() -> None:
    out = classify(CONFIGS, 500, CALL_FAILED, NS)
    assert out.message.startswith(f"the API server cannot call aigate's webhooks via {NS}/aigate-webhook: ")
    assert REFUSED in out.message


def test_missing_configuration_or_ca_mean_wait() -> None:
    assert classify(configs(hook("aiworkloads.aigate.dev")), None, "", NS) == Outcome(
        "waiting", "no webhook configuration registers acceptances.aigate.dev for the operator's namespace yet"
    )
    no_ca = configs(hook("acceptances.aigate.dev", ca=""), hook("aiworkloads.aigate.dev"))
    out = classify(no_ca, None, "", NS)
    assert out.state == "waiting" and out.message.startswith("acceptances.aigate.dev have no caBundle yet")


def test_a_namespace_the_webhooks_exclude_proves_nothing() -> None:
    excluded = configs(hook("acceptances.aigate.dev", excluded=(NS,)), hook("aiworkloads.aigate.dev", excluded=(NS,)))
    out = classify(excluded, None, "", NS)
    assert out.state == "broken"
    assert "acceptances.aigate.dev, aiworkloads.aigate.dev do not select namespace aigate-system" in out.message
    ignored = configs(
        hook("acceptances.aigate.dev"),
        hook("aiworkloads.aigate.dev"),
        labels={"kubernetes.io/metadata.name": NS, "aigate.dev/ignore": "true"},
    )
    assert classify(ignored, None, "", NS).state == "broken"


def test_rbac_and_foreign_refusals_are_broken_not_waiting() -> None:
    forbidden = 'aiworkloads.aigate.dev "aigate-install-check" is forbidden: User "bob" cannot create resource'
    assert classify(CONFIGS, 403, forbidden, NS).state == "broken"
    foreign = 'admission webhook "validate.kyverno.svc" denied the request: no default namespace'
    out = classify(CONFIGS, 400, foreign, NS)
    assert out.state == "broken" and out.message.startswith("the dry-run AIWorkload in aigate-system was refused, not")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def test_wait_retries_until_it_works_and_says_each_reason_once() -> None:
    answers = iter(
        [Outcome("waiting", "a")] * 3 + [Outcome("waiting", "b")] * 2 + [Outcome("works", "ok")]  # type: ignore[operator]
    )
    clock, said = Clock(), []
    out, elapsed = wait(lambda: next(answers), 60, interval=2, said=said.append, clock=clock, sleep=clock.sleep)
    assert out == Outcome("works", "ok")
    assert elapsed == 10.0
    assert said == ["waiting (0 s): a", "waiting (6 s): b"]


def test_wait_gives_the_last_reason_at_the_deadline_and_survives_exceptions() -> None:
    clock = Clock()

    def probe() -> Outcome:
        if clock.now < 4:
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        return Outcome("waiting", "still not")

    out, elapsed = wait(probe, 7, interval=2, clock=clock, sleep=clock.sleep)
    assert out == Outcome("waiting", "still not") and elapsed == 7.0
    clock = Clock()
    out, _ = wait(lambda: (_ for _ in ()).throw(OSError("boom")), 0, clock=clock, sleep=clock.sleep)
    assert out.state == "waiting" and "cannot reach the API server: OSError: boom" in out.message


def test_broken_stops_at_once() -> None:
    clock = Clock()
    out, elapsed = wait(lambda: Outcome("broken", "rbac"), 60, clock=clock, sleep=clock.sleep)
    assert out.state == "broken" and elapsed == 0.0


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig whose API server is a closed port on loopback."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:9'}}]\nusers: [{name: u, user: {token: t}}]\n"
    )
    return path


def test_cli_refuses_a_bad_wait(capsys: pytest.CaptureFixture[str], kubeconfig: Path) -> None:
    assert main(["check-install", "--kubeconfig", str(kubeconfig), "--wait", "soon"]) == 2
    assert capsys.readouterr().err.strip() == "error: --wait soon: not a duration (e.g. 90s, 2m)"


def test_cli_says_why_when_the_api_server_is_unreachable(capsys: pytest.CaptureFixture[str], kubeconfig: Path) -> None:
    assert main(["check-install", "--kubeconfig", str(kubeconfig)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("admission does not work (no --wait): cannot reach the API server: ")
    assert "Traceback" not in "".join(err)

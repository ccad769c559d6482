"""Whether admission works end to end: the API server reaches aigate's webhooks through their Service and they
answer. Pods being Ready is not enough: their endpoints must reach the Service, kube-proxy must program the route,
the caBundle must be injected, and only then will the first `kubectl apply` be judged rather than refused with
"failed calling webhook" (every aigate webhook on AIWorkloads fails closed).

The probe is what a user's first apply is: a server-side dry-run create of an AIWorkload, which the API server
sends to the mutating `acceptances.aigate.dev` and then the validating `aiworkloads.aigate.dev` webhook. Both fail
closed, so an admitted dry-run, or a refusal in aigate's words, can only be their answer once the configurations
are known to select the probe's namespace. Nothing is stored.

`kubectl aigate check-install` runs it from a laptop or a script; the chart runs it as its post-install and
post-upgrade hook, so `helm install --wait` returns only once admission works. `classify` is pure; `probe_once`
gathers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aigate.api.models import API_GROUP, API_VERSION, KIND, PLURAL
from aigate.api.policy import NamespaceSelector
from aigate.kube.names import ACCEPTANCES_WEBHOOK, AIWORKLOADS_WEBHOOK
from aigate.policy.governance import selects

PROBE_NAME = "aigate-install-check"
"""The dry-run AIWorkload's name (never stored)."""
PROBE_LABEL = "aigate.dev/install-check"
APP_LABEL = "app.kubernetes.io/name=aigate"
"""How the chart labels its webhook configurations."""

State = Literal["works", "waiting", "broken"]


@dataclass(frozen=True)
class Outcome:
    """One probe's verdict: `works`, `waiting` (retry: the route or the certificate is not there yet) or `broken`
    (retrying will not help: RBAC, a webhook configuration that does not select the namespace)."""

    state: State
    message: str


@dataclass(frozen=True)
class Configurations:
    """What the webhook configurations say about the probe's namespace, read before the probe."""

    found: tuple[str, ...]
    """The aigate webhooks on AIWorkloads that point at a Service in the operator's namespace."""
    missing_ca: tuple[str, ...] = ()
    """Those among them with no caBundle yet (the operator's rotator or cert-manager's cainjector fills it in)."""
    not_selecting: tuple[str, ...] = ()
    """Those whose namespaceSelector leaves the probe's namespace out: their answer would never be asked."""
    service: str = ""
    """namespace/name of the Service they call."""


def probe_workload(namespace: str) -> dict[str, Any]:
    """The smallest AIWorkload the CRD schema admits: no Secret, ConfigMap or acceptance, so that no policy or
    reference check has a reason to refuse it."""
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "metadata": {"name": PROBE_NAME, "namespace": namespace, "labels": {PROBE_LABEL: "true"}},
        "spec": {
            "owner": "aigate-install-check",
            "models": [{"name": "primary", "role": "primary", "provider": "openai", "model": "install-check"}],
            "traffic": {"requestsPerDay": 1, "peakRequestsPerSecond": 1},
            "budget": {"monthlyUSD": 1},
            "slo": {"p95LatencyMs": 1000, "timeoutMs": 2000},
            "suite": {"cases": [{"name": "install-check", "messages": [{"role": "user", "content": "ok"}]}]},
        },
    }


def read_configurations(
    validating: Sequence[Mapping[str, Any]],
    mutating: Sequence[Mapping[str, Any]],
    operator_namespace: str,
    namespace_labels: Mapping[str, str],
) -> Configurations:
    """The AIWorkload webhooks of the configurations whose Service lives in the operator's namespace."""
    found: list[str] = []
    missing_ca: list[str] = []
    not_selecting: list[str] = []
    service = ""
    for config in (*validating, *mutating):
        for hook in config.get("webhooks") or []:
            name = str(hook.get("name") or "")
            svc = (hook.get("clientConfig") or {}).get("service") or {}
            if name not in (ACCEPTANCES_WEBHOOK, AIWORKLOADS_WEBHOOK) or svc.get("namespace") != operator_namespace:
                continue
            found.append(name)
            service = f"{svc.get('namespace')}/{svc.get('name')}"
            if not (hook.get("clientConfig") or {}).get("caBundle"):
                missing_ca.append(name)
            if not selects(_selector(hook.get("namespaceSelector") or {}), namespace_labels):
                not_selecting.append(name)
    return Configurations(tuple(sorted(found)), tuple(sorted(missing_ca)), tuple(sorted(not_selecting)), service)


def _selector(raw: Mapping[str, Any]) -> NamespaceSelector:
    return NamespaceSelector.model_validate(
        {"matchLabels": raw.get("matchLabels") or {}, "matchExpressions": raw.get("matchExpressions") or []}
    )


def classify(configs: Configurations, status: int | None, message: str, namespace: str) -> Outcome:
    """The verdict from the configurations and the dry-run's answer (`status` None: admitted; else the HTTP status
    and the message the API server returned)."""
    wanted = {ACCEPTANCES_WEBHOOK, AIWORKLOADS_WEBHOOK}
    absent = sorted(wanted - set(configs.found))
    if absent:
        return Outcome(
            "waiting",
            f"no webhook configuration registers {', '.join(absent)} for the operator's namespace yet",
        )
    if configs.not_selecting:
        return Outcome(
            "broken",
            f"{', '.join(configs.not_selecting)} do not select namespace {namespace} (excluded by their "
            "namespaceSelector): the probe would prove nothing; run the check in a namespace aigate judges",
        )
    if configs.missing_ca:
        return Outcome(
            "waiting",
            f"{', '.join(configs.missing_ca)} have no caBundle yet (the operator's certificate rotator or "
            "cert-manager's cainjector writes it)",
        )
    if status is None:
        return Outcome("works", f"a dry-run AIWorkload in {namespace} was admitted by {', '.join(sorted(wanted))}")
    first = message.strip().splitlines()[0][:400] if message.strip() else f"HTTP {status}"
    for hook in sorted(wanted):
        if f'admission webhook "{hook}" denied the request' in message:
            return Outcome("works", f"{hook} answered a dry-run AIWorkload in {namespace} (it refused it: {first})")
    if "failed calling webhook" in message or status in (500, 502, 503, 504):
        return Outcome("waiting", f"the API server cannot call aigate's webhooks via {configs.service}: {first}")
    if status == 404:
        return Outcome("waiting", f"the API server does not serve {PLURAL}.{API_GROUP} yet: {first}")
    if status in (401, 403):
        return Outcome("broken", f"not allowed to dry-run create {PLURAL}.{API_GROUP} in {namespace}: {first}")
    return Outcome("broken", f"the dry-run AIWorkload in {namespace} was refused, not by aigate: {first}")


# ---- gathering ------------------------------------------------------------------------------------------------------


def probe_once(api: Any, operator_namespace: str, namespace: str) -> Outcome:
    """Read the configurations and the namespace's labels, then send the dry-run."""
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    reg = k8s.AdmissionregistrationV1Api(api)
    try:
        validating = api.sanitize_for_serialization(reg.list_validating_webhook_configuration(label_selector=APP_LABEL))
        mutating = api.sanitize_for_serialization(reg.list_mutating_webhook_configuration(label_selector=APP_LABEL))
        meta = k8s.CoreV1Api(api).read_namespace(namespace).metadata
    except ApiException as e:
        if e.status in (401, 403):
            return Outcome("broken", f"not allowed to read the webhook configurations or namespace {namespace}")
        if e.status == 404:
            return Outcome("broken", f"namespace {namespace} does not exist")
        return Outcome("waiting", f"HTTP {e.status}: {_status_message(e)}")
    labels = (meta.labels if meta else None) or {}
    configs = read_configurations(validating["items"], mutating["items"], operator_namespace, labels)
    if configs.not_selecting or configs.missing_ca or len(configs.found) < 2:
        return classify(configs, None, "", namespace)
    try:
        k8s.CustomObjectsApi(api).create_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, PLURAL, probe_workload(namespace), dry_run="All"
        )
    except ApiException as e:
        return classify(configs, int(e.status or 0), _status_message(e), namespace)
    return classify(configs, None, "", namespace)


def wait(
    probe: Callable[[], Outcome],
    timeout: float,
    *,
    interval: float = 1.0,
    said: Callable[[str], None] = lambda _: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Outcome, float]:
    """Probe until it works, is broken, or `timeout` seconds have passed; each new reason to wait is said once."""
    start = clock()
    last = ""
    while True:
        try:
            outcome = probe()
        except Exception as e:  # the API server itself is unreachable: wait for it like for anything else
            outcome = Outcome("waiting", f"cannot reach the API server: {type(e).__name__}: {_first_line(str(e))}")
        elapsed = clock() - start
        if outcome.state != "waiting" or elapsed >= timeout:
            return outcome, elapsed
        if outcome.message != last:
            said(f"waiting ({elapsed:.0f} s): {outcome.message}")
            last = outcome.message
        sleep(min(interval, max(0.0, timeout - elapsed)))


def _status_message(e: Any) -> str:
    """The Status message the API server sent, else the exception's reason."""
    try:
        return str(json.loads(e.body).get("message") or e.reason)
    except (TypeError, ValueError, AttributeError):
        return str(getattr(e, "reason", "") or e)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""

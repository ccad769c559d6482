"""The admission tests' world (no tests here): the remediated example as the webhook's index holds it, its passing
evidence signed with a test key, and builders of statuses and predicates; also what bench/admission.py and
bench/webhook_server.py serve."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from aigate.evidence import build_statement, generate_key, sign_statement
from aigate.evidence.keys import private_key_from_pem, public_key_from_pem
from aigate.kube import names
from aigate.webhook.admission import VerifyCache, current_spec_digest, rollout_decision

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "fraud-review-assistant-remediated.yaml"
NOW = datetime.now(UTC).replace(microsecond=0)
"""The evidence's issue time: the webhook tests check it against the real clock, so it moves with it (a fixed date
would expire the signed evidence 30 days later and fail the suite from then on)."""
NS = "fraud"
NAME = "fraud-review-assistant"
GATES = ("cost", "reliability", "fallback", "toolControl", "providerDependency", "evidence")
CONDITION_TYPES = {
    "cost": "CostGate",
    "reliability": "ReliabilityGate",
    "fallback": "FallbackGate",
    "toolControl": "ToolControlGate",
    "providerDependency": "ProviderDependencyGate",
    "evidence": "EvidenceGate",
}


def _keys() -> tuple[Any, Any]:
    priv, pub = generate_key()
    return private_key_from_pem(priv), public_key_from_pem(pub)


PRIV, PUB = _keys()
OTHER_PRIV, _ = _keys()


def documents() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    docs = list(yaml.safe_load_all(EXAMPLE.read_text()))
    wl = next(d for d in docs if d["kind"] == "AIWorkload")
    cms = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    return copy.deepcopy(wl), copy.deepcopy(cms)


def status(decision: str = "PASS", failed: dict[str, str] | None = None) -> dict[str, Any]:
    failed = failed or {}
    t = NOW.isoformat()
    conditions = [
        {
            "type": CONDITION_TYPES[g],
            "status": "False" if g in failed else "True",
            "reason": "Failed" if g in failed else "Passed",
            "message": failed.get(g, "ok"),
            "lastTransitionTime": t,
        }
        for g in GATES
    ]
    ready = decision == "PASS"
    conditions.append(
        {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": "EvidencePassed" if ready else "GatesFailed",
            "message": "evidence signed" if ready else "gates failed",
            "lastTransitionTime": t,
        }
    )
    return {"phase": "Passed" if ready else "Failed", "decision": decision, "conditions": conditions}


def predicate(digest: str, decision: str = "PASS", failed: dict[str, str] | None = None, **over: Any) -> dict[str, Any]:
    failed = failed or {}
    p: dict[str, Any] = {
        "workload": {"namespace": NS, "name": NAME},
        "owner": "fraud-platform-team",
        "specDigest": digest,
        "decision": decision,
        "gates": [
            {"gate": g, "status": "FAIL" if g in failed else "PASS", "reason": failed.get(g, "ok")} for g in GATES[:-1]
        ],
        "issuedAt": NOW.isoformat(),
        "expiresAt": (NOW + timedelta(days=30)).isoformat(),
    }
    p.update(over)
    return p


def evidence_cm(envelope: dict[str, Any] | str) -> dict[str, Any]:
    text = envelope if isinstance(envelope, str) else json.dumps(envelope)
    return {"metadata": {"name": names.evidence_configmap(NAME), "namespace": NS}, "data": {names.EVIDENCE_KEY: text}}


def sign(digest: str, key: Any = PRIV, **kw: Any) -> dict[str, Any]:
    return sign_statement(build_statement(NS, NAME, digest, predicate(digest, **kw)), key)


class World:
    """An AIWorkload, its ConfigMaps and evidence ConfigMap as the operator's indexes hold them."""

    def __init__(self) -> None:
        self.workload, self.configmaps = documents()
        self.workload["status"] = status()
        self.digest = current_spec_digest(self.workload, self.configmaps)
        self.evidence: dict[str, Any] | None = evidence_cm(sign(self.digest))
        self.labels = {"app": "fraud", names.WORKLOAD_LABEL: NAME}
        self.cache: VerifyCache | None = VerifyCache()

    def decide(self, now: datetime = NOW, **kw: Any) -> Any:
        return rollout_decision(
            kind="Deployment",
            namespace=NS,
            labels=self.labels,
            workload=self.workload,
            evidence_cm=self.evidence,
            configmaps=self.configmaps,
            public_key=PUB,
            now=now,
            verify_cache=self.cache,
            **kw,
        )

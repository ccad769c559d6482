"""AIGatePolicy judgement: which policies govern a namespace, what they amount to when several do (the strictest
value of each field wins), what applies where none sets a field (the platform default), and what in a workload
they refuse. Pure: the webhook, the operator and `aigate check` gather the policies, labels and default; this
decides."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from aigate.api.models import AIWorkload, parse_duration
from aigate.api.policy import AIGatePolicy, AIGatePolicySpec, NamespaceSelector, PolicyMeta

Enforcement = Literal["enforce", "warn", "audit"]
OnDrift = Literal["refuse", "warn"]
STRICTNESS: dict[str, int] = {"audit": 0, "warn": 1, "enforce": 2}

PLATFORM_DEFAULT = "platform-default"
"""The name the platform default goes by in the evidence and in status, beside AIGatePolicies' names."""


@dataclass(frozen=True)
class PlatformDefault:
    """What applies to each field no AIGatePolicy selecting the namespace sets: the judged object never sets its
    own policy. The operator's settings (`AIGATE_DEFAULT_ENFORCEMENT`, `AIGATE_DEFAULT_MAX_VALID_FOR`) give it in
    a cluster; `aigate check` uses these built-in values, the same as an operator left at its defaults."""

    enforcement: Enforcement = "enforce"
    max_valid_for: str = "720h"

    def as_policy(self) -> AIGatePolicy:
        """As an AIGatePolicy of every namespace, so that the evidence digests it as it digests any policy."""
        spec = AIGatePolicySpec(enforcement=self.enforcement, max_valid_for=self.max_valid_for)
        return AIGatePolicy(metadata=PolicyMeta(name=PLATFORM_DEFAULT), spec=spec)


@dataclass(frozen=True)
class Floor:
    """The enforcement a workload may not go below, and who set it (an AIGatePolicy's name or PLATFORM_DEFAULT)."""

    enforcement: Enforcement
    by: str


@dataclass(frozen=True)
class EffectivePolicy:
    """What the policies selecting one namespace amount to, the platform default filling what none of them sets.
    Built bare (no `effective`): no floor, no limit."""

    names: tuple[str, ...] = ()
    enforcement: Enforcement | None = None
    max_valid_for: timedelta | None = None
    acceptor_groups: frozenset[str] = frozenset()
    unacceptable_gates: frozenset[str] = frozenset()
    endpoint_prefixes: tuple[tuple[str, ...], ...] = ()
    """One tuple per policy that restricts endpoints: an endpoint must start with a prefix of each."""
    min_pass_rate: float | None = None
    max_error_rate: float | None = None
    max_p95_latency_ms: float | None = None
    canary_min_every: timedelta | None = None
    canary_max_every: timedelta | None = None
    on_drift: OnDrift = "refuse"
    """What a rollout gets while drift stands: refuse unless every policy that says asks warn."""
    digest: str | None = None
    """sha256 of the governing policies (name and spec, canonical JSON): what the evidence records."""
    limits: dict[str, str] = field(default_factory=dict)
    """Which policy set each limit, for messages."""

    @property
    def floor(self) -> Floor | None:
        if self.enforcement is None:
            return None
        return Floor(self.enforcement, self.limits.get("enforcement", PLATFORM_DEFAULT))


def source(name: str) -> str:
    """Who set a limit, in a message: `AIGatePolicy NAME`, or the platform default."""
    return "the platform default" if name == PLATFORM_DEFAULT else f"AIGatePolicy {name}"


def governed_by(names: Sequence[str]) -> str:
    """The policies in force, in a message: `AIGatePolicy a, b and the platform default`."""
    policies = [n for n in names if n != PLATFORM_DEFAULT]
    parts = [f"AIGatePolicy {', '.join(policies)}"] if policies else []
    if PLATFORM_DEFAULT in names:
        parts.append(source(PLATFORM_DEFAULT))
    return " and ".join(parts) or "no policy"


def selects(selector: NamespaceSelector, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics over a namespace's labels."""
    if any(labels.get(k) != v for k, v in selector.match_labels.items()):
        return False
    for r in selector.match_expressions:
        present = r.key in labels
        ok = {
            "In": present and labels.get(r.key) in r.values,
            "NotIn": not present or labels.get(r.key) not in r.values,
            "Exists": present,
            "DoesNotExist": not present,
        }[r.operator]
        if not ok:
            return False
    return True


def strictest(a: Enforcement, b: Enforcement | None) -> Enforcement:
    """The workload's own mode, raised to the floor: a workload may be stricter, never looser."""
    return a if b is None or STRICTNESS[a] >= STRICTNESS[b] else b


def raised(own: Enforcement, floor: Floor | None) -> str | None:
    """Why the workload's own enforcement does not apply, in a phrase; None when it does."""
    if floor is None or strictest(own, floor.enforcement) == own:
        return None
    return f"spec.enforcement {own} is raised to {floor.enforcement}, the floor set by {source(floor.by)}"


def effective(
    policies: Sequence[AIGatePolicy], namespace_labels: Mapping[str, str], default: PlatformDefault
) -> EffectivePolicy:
    """The strictest value of each field over the policies selecting the namespace; `default` for each field none
    of them sets (a policy may loosen the default, `enforcement: warn` while teams adopt: only admins write one)."""
    governing = sorted((p for p in policies if selects(p.spec.namespace_selector, namespace_labels)), key=_name)
    enforcement: Enforcement | None = None
    max_valid_for: timedelta | None = None
    min_pass = max_error = max_p95 = None
    limits: dict[str, str] = {}
    min_every: timedelta | None = None
    max_every: timedelta | None = None
    on_drift: OnDrift | None = None
    for p in governing:
        s, name = p.spec, p.metadata.name
        if s.canary.min_every is not None:
            floor = parse_duration(s.canary.min_every)
            if min_every is None or floor > min_every:  # the highest floor: the fewest canaries any policy allows
                min_every, limits["canaryMinEvery"] = floor, name
        if s.canary.max_every is not None:
            ceiling = parse_duration(s.canary.max_every)
            if max_every is None or ceiling < max_every:
                max_every, limits["canaryMaxEvery"] = ceiling, name
        if s.on_drift is not None and on_drift != "refuse":
            on_drift, limits["onDrift"] = s.on_drift, name
        if s.enforcement is not None and (enforcement is None or STRICTNESS[s.enforcement] > STRICTNESS[enforcement]):
            enforcement, limits["enforcement"] = s.enforcement, name
        if s.max_valid_for is not None:
            limit = parse_duration(s.max_valid_for)
            if max_valid_for is None or limit < max_valid_for:
                max_valid_for, limits["maxValidFor"] = limit, name
        if s.slo.min_pass_rate is not None and (min_pass is None or s.slo.min_pass_rate > min_pass):
            min_pass, limits["minPassRate"] = s.slo.min_pass_rate, name
        if s.slo.max_error_rate is not None and (max_error is None or s.slo.max_error_rate < max_error):
            max_error, limits["maxErrorRate"] = s.slo.max_error_rate, name
        if s.slo.max_p95_latency_ms is not None and (max_p95 is None or s.slo.max_p95_latency_ms < max_p95):
            max_p95, limits["maxP95LatencyMs"] = s.slo.max_p95_latency_ms, name
    defaulted = enforcement is None or max_valid_for is None
    if not governing:
        digest = _digest_alone(default)
    else:
        digest = policy_digest([*governing, default.as_policy()] if defaulted else governing)
    if enforcement is None:
        enforcement, limits["enforcement"] = default.enforcement, PLATFORM_DEFAULT
    if max_valid_for is None:
        max_valid_for, limits["maxValidFor"] = parse_duration(default.max_valid_for), PLATFORM_DEFAULT
    return EffectivePolicy(
        names=tuple(_name(p) for p in governing) + ((PLATFORM_DEFAULT,) if defaulted else ()),
        enforcement=enforcement,
        max_valid_for=max_valid_for,
        acceptor_groups=frozenset(g for p in governing for g in p.spec.acceptor_groups),
        unacceptable_gates=frozenset(g for p in governing for g in p.spec.unacceptable_gates),
        endpoint_prefixes=tuple(tuple(p.spec.allowed_endpoints) for p in governing if p.spec.allowed_endpoints),
        min_pass_rate=min_pass,
        max_error_rate=max_error,
        max_p95_latency_ms=max_p95,
        canary_min_every=min_every,
        canary_max_every=max_every,
        on_drift=on_drift or "refuse",
        digest=digest,
        limits=limits,
    )


@functools.cache
def _digest_alone(default: PlatformDefault) -> str:
    """The digest where no policy selects the namespace (most reviews, in clusters with few policies): once."""
    return policy_digest([default.as_policy()])


def _name(p: AIGatePolicy) -> str:
    return p.metadata.name


def policy_digest(policies: Sequence[AIGatePolicy]) -> str:
    doc = [{"name": _name(p), "spec": p.spec.model_dump(mode="json", by_alias=True)} for p in policies]
    data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def violations(workload: AIWorkload, policy: EffectivePolicy) -> list[str]:
    """What in the workload the governing policies refuse, one phrase each naming the field and the policy."""
    spec, out = workload.spec, []
    by = policy.limits
    if policy.max_valid_for is not None:
        valid_for = spec.evidence.valid_for_delta()
        if valid_for > policy.max_valid_for:
            out.append(
                f"spec.evidence.validFor {spec.evidence.valid_for} is longer than {hours(policy.max_valid_for)}, "
                f"the most {source(by.get('maxValidFor', PLATFORM_DEFAULT))} allows"
            )
    for i, m in enumerate(spec.models):
        url = m.base_url()
        for prefixes in policy.endpoint_prefixes:
            if not any(url.startswith(p) for p in prefixes):
                out.append(f"spec.models[{i}].endpoint {url} is outside the endpoints allowed ({', '.join(prefixes)})")
                break
    slo = spec.slo
    if policy.min_pass_rate is not None and slo.min_pass_rate < policy.min_pass_rate:
        out.append(
            f"spec.slo.minPassRate {slo.min_pass_rate} is below the floor {policy.min_pass_rate} "
            f"of AIGatePolicy {by['minPassRate']}"
        )
    if policy.max_error_rate is not None and slo.max_error_rate > policy.max_error_rate:
        out.append(
            f"spec.slo.maxErrorRate {slo.max_error_rate} is above the ceiling {policy.max_error_rate} "
            f"of AIGatePolicy {by['maxErrorRate']}"
        )
    if policy.max_p95_latency_ms is not None and slo.p95_latency_ms > policy.max_p95_latency_ms:
        out.append(
            f"spec.slo.p95LatencyMs {slo.p95_latency_ms:g} is above the ceiling {policy.max_p95_latency_ms:g} "
            f"of AIGatePolicy {by['maxP95LatencyMs']}"
        )
    for i, a in enumerate(spec.risk_acceptances):
        if a.gate in policy.unacceptable_gates:
            out.append(f"spec.riskAcceptances[{i}]: a FAIL of gate {a.gate} may not be risk-accepted here")
    return out


def canary_interval(workload: AIWorkload, policy: EffectivePolicy) -> timedelta | None:
    """How often the workload's canary runs under the policy: its own `every` raised to the policy's floor and
    lowered to its ceiling (the ceiling wins where the two cross: watching is what the policy is for); off ("0")
    only where no policy sets a ceiling (one that does runs it at the ceiling)."""
    own = workload.spec.canary.every_delta()
    if own is None:
        return policy.canary_max_every
    if policy.canary_min_every is not None and own < policy.canary_min_every:
        own = policy.canary_min_every
    if policy.canary_max_every is not None and own > policy.canary_max_every:
        own = policy.canary_max_every
    return own


def hours(d: timedelta) -> str:
    hours = d.total_seconds() / 3600
    return f"{hours:g}h"

"""toolControl, RBAC part: the workload's ServiceAccount must not be able to do more than the workload declares.

An agent's tools are only as contained as the identity they run under: a ServiceAccount that can exec into pods
or bind roles turns any prompt injection into cluster compromise, whatever spec.tools says.
"""

from __future__ import annotations

from collections.abc import Collection

from aigate.api.load import ResolvedWorkload
from aigate.measurements import Measurements, RbacCheck, RbacProbe


def check_label(c: RbacCheck) -> str:
    """How a person says the permission: 'create pods/exec', 'do anything cluster-wide (* on *)'."""
    if c.verb == "*" and c.resource == "*":
        where = "cluster-wide" if c.namespace is None else f"in namespace {c.namespace}"
        return f"do anything {where} (* on *)"
    resource = f"{c.resource}/{c.subresource}" if c.subresource else c.resource
    return f"{c.verb} {resource}"


def judge_rbac(probe: RbacProbe | None, declared: Collection[str] = ()) -> tuple[list[str], list[str]]:
    """Pure: (problems, notes). `declared` holds the check labels the workload is allowed (none, for now)."""
    if probe is None:
        return [], []
    who = f"service account {probe.namespace}/{probe.service_account}"
    if probe.error:
        return [f"{who}: permissions could not be checked: {probe.error}"], []
    if probe.skipped_reason:
        return [], [f"ServiceAccount permissions not checked: {probe.skipped_reason}"]
    problems = []
    for c in _not_implied(probe.checks):
        label = check_label(c)
        if label not in declared:
            why = f"; {c.reason}" if c.reason else ""
            problems.append(f"{who} can {label} (not declared{why})")
    notes = [] if problems else [f"{who} can do none of {len(probe.checks)} sensitive actions checked"]
    return problems, notes


def _not_implied(checks: list[RbacCheck]) -> list[RbacCheck]:
    """The allowed checks, less those a wildcard grant already implies, so `* on *` is one line, not seventeen."""
    allowed = [c for c in checks if c.allowed]
    wild = [c for c in allowed if c.verb == "*" and c.resource == "*"]
    if any(c.namespace is None for c in wild):
        return [c for c in wild if c.namespace is None]
    if wild:
        return [c for c in allowed if c in wild or c.namespace is None]
    return allowed


def rbac_check(resolved: ResolvedWorkload, m: Measurements) -> tuple[list[str], list[str]]:
    """The toolControl ExtraCheck: nothing sensitive is declared allowed yet, so every allowed check fails."""
    return judge_rbac(m.rbac)

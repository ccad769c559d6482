"""The toolControl RBAC judge (pure), beside its MCP twin: a ServiceAccount able to do more than declared fails.

The probe itself runs against a real API server in tests/cluster/test_rbac_probe.py.
"""

from __future__ import annotations

from aigate.gates.toolcontrol import judge_tool_control
from aigate.gates.toolcontrol_rbac import check_label, judge_rbac, rbac_check
from aigate.measurements import RbacCheck, RbacProbe
from aigate.probes.rbac import SENSITIVE, rbac_skipped
from factories import example_doc, measurements, resolved_from


def probe(*allowed: tuple[str, str, str, str | None], reason: str = "") -> RbacProbe:
    """Every sensitive check denied except the (verb, resource, subresource, namespace) given."""
    checks = []
    for s in SENSITIVE:
        ns = None if s.cluster_scoped else "fraud"
        ok = (s.verb, s.resource, s.subresource, ns) in allowed
        checks.append(
            RbacCheck(
                verb=s.verb,
                resource=s.resource,
                group=s.group,
                subresource=s.subresource,
                namespace=ns,
                allowed=ok,
                reason=reason if ok else "",
            )
        )
    return RbacProbe(service_account="fraud-assistant", namespace="fraud", checks=checks)


def test_nothing_allowed_passes_with_a_note() -> None:
    problems, notes = judge_rbac(probe())
    assert problems == []
    assert notes == [f"service account fraud/fraud-assistant can do none of {len(SENSITIVE)} sensitive actions checked"]


def test_exec_allowed_is_a_problem() -> None:
    problems, _ = judge_rbac(probe(("create", "pods", "exec", "fraud")))
    assert problems == ["service account fraud/fraud-assistant can create pods/exec (not declared)"]


def test_the_authorizer_reason_says_what_to_remove() -> None:
    why = 'RBAC: allowed by RoleBinding "exec/fraud" of Role "exec" to ServiceAccount "fraud-assistant/fraud"'
    problems, _ = judge_rbac(probe(("create", "pods", "exec", "fraud"), reason=why))
    assert problems == [f"service account fraud/fraud-assistant can create pods/exec (not declared; {why})"]


def test_declared_permission_is_not_a_problem() -> None:
    assert judge_rbac(probe(("create", "pods", "exec", "fraud")), declared={"create pods/exec"})[0] == []


def test_cluster_wide_wildcard_is_one_line_not_seventeen() -> None:
    every = tuple((s.verb, s.resource, s.subresource, None if s.cluster_scoped else "fraud") for s in SENSITIVE)
    problems, _ = judge_rbac(probe(*every))
    assert problems == ["service account fraud/fraud-assistant can do anything cluster-wide (* on *) (not declared)"]


def test_namespace_wildcard_keeps_the_cluster_scoped_findings() -> None:
    namespaced = [(s.verb, s.resource, s.subresource, "fraud") for s in SENSITIVE if not s.cluster_scoped]
    problems, _ = judge_rbac(probe(*namespaced, ("impersonate", "users", "", None)))
    assert problems == [
        "service account fraud/fraud-assistant can impersonate users (not declared)",
        "service account fraud/fraud-assistant can do anything in namespace fraud (* on *) (not declared)",
    ]


def test_skipped_is_a_note_and_a_failed_probe_a_problem() -> None:
    assert judge_rbac(rbac_skipped("no cluster")) == ([], ["ServiceAccount permissions not checked: no cluster"])
    failed = RbacProbe(service_account="sa", namespace="ns", error="SubjectAccessReview failed: HTTP 403 Forbidden")
    assert judge_rbac(failed) == (
        ["service account ns/sa: permissions could not be checked: SubjectAccessReview failed: HTTP 403 Forbidden"],
        [],
    )
    assert judge_rbac(None) == ([], [])


def test_labels() -> None:
    assert check_label(RbacCheck(verb="get", resource="secrets", namespace="x", allowed=True)) == "get secrets"
    assert (
        check_label(RbacCheck(verb="*", resource="*", group="*", allowed=True)) == "do anything cluster-wide (* on *)"
    )


def test_gate_fails_through_the_extra_check() -> None:
    resolved = resolved_from(example_doc())
    m = measurements({}, rbac=probe(("create", "pods", "exec", "fraud")))
    assert rbac_check(resolved, m)[0] == ["service account fraud/fraud-assistant can create pods/exec (not declared)"]
    result = judge_tool_control(resolved, m, extra=[rbac_check])
    assert result.status == "FAIL"
    assert "can create pods/exec" in result.reason

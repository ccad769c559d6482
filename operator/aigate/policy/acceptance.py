"""Risk acceptances at admission: who may accept a gate's FAIL, and recording that they did.

Identity comes from the API server's userInfo, never from the object; the AIWorkload webhooks apply the JSON patch
this returns. Expiry is judged by `aigate.gates.acceptance.is_active`, the same judge the gates use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from aigate.api.models import GATE_NAMES, RiskAcceptance
from aigate.gates.acceptance import is_active
from aigate.policy.text import MAX_MESSAGE, one_line
from aigate.times import rfc3339


@dataclass(frozen=True)
class AcceptanceDecision:
    """What the AIWorkload webhooks answer: a refusal message, or a JSON patch recording who accepted."""

    allowed: bool
    message: str = ""
    patch: list[dict[str, Any]] = field(default_factory=list)
    recorded: list[int] = field(default_factory=list)
    """Indexes of riskAcceptances this request adds or changes (their acceptedBy is the requesting user)."""


def _acceptance_key(item: Mapping[str, Any]) -> tuple[str, str, datetime] | None:
    try:
        a = RiskAcceptance.model_validate({k: v for k, v in item.items() if k not in ("acceptedBy", "specDigest")})
    except ValidationError:
        return None
    return (a.gate, a.reason, a.expires)


def acceptance_patch(
    *,
    operation: str,
    new_spec: Mapping[str, Any] | None,
    old_spec: Mapping[str, Any] | None,
    userinfo: Mapping[str, Any],
    acceptor_groups: set[str],
    now: datetime,
    validate_only: bool = False,
    spec_digest: str | None = None,
) -> AcceptanceDecision:
    """Record the authenticated user as `acceptedBy` of each risk acceptance this request adds or changes, and
    `spec_digest` (`aigate.api.digest.acceptance_digest` of the spec as it will be stored) as its `specDigest`:
    an acceptance is bound to the spec it was given for. An unchanged one keeps both.

    Identity comes from the API server's userInfo, never from the object: a hand-written acceptedBy is replaced.
    An acceptance unchanged from the old object (same gate, reason and expiry) keeps its acceptor, so editing
    something else does not make the editor its acceptor. Only members of `acceptor_groups` may add or change one,
    and never one that has already expired (`is_active`, the expiry judge the gates use).

    `validate_only` is the validating webhook's view of the object as it will be stored: refused if it still needs
    a patch, i.e. a later mutation left an acceptedBy other than the one this function writes."""
    d = _acceptance(operation, new_spec, old_spec, userinfo, acceptor_groups, now, spec_digest)
    if validate_only and d.allowed and d.patch:
        paths = ", ".join(p["path"].removeprefix("/").replace("/", ".") for p in d.patch)
        return AcceptanceDecision(False, f"acceptedBy must be the accepting user, set by aigate ({paths})")
    return d


def _acceptance(
    operation: str,
    new_spec: Mapping[str, Any] | None,
    old_spec: Mapping[str, Any] | None,
    userinfo: Mapping[str, Any],
    acceptor_groups: set[str],
    now: datetime,
    spec_digest: str | None = None,
) -> AcceptanceDecision:
    if operation not in ("CREATE", "UPDATE") or new_spec is None:
        return AcceptanceDecision(True)
    new_items = new_spec.get("riskAcceptances") or []
    old_items = (old_spec or {}).get("riskAcceptances") or [] if operation == "UPDATE" else []
    if not isinstance(new_items, list):
        return AcceptanceDecision(False, "spec.riskAcceptances must be a list")
    remaining: dict[tuple[str, str, datetime], list[Any]] = {}
    for item in old_items if isinstance(old_items, list) else []:
        key = _acceptance_key(item) if isinstance(item, Mapping) else None
        if key is not None:
            remaining.setdefault(key, []).append((item.get("acceptedBy"), item.get("specDigest")))

    user = str(userinfo.get("username") or "")
    groups = {str(g) for g in userinfo.get("groups") or []}
    patch: list[dict[str, Any]] = []
    recorded: list[int] = []
    problems: list[str] = []
    for i, item in enumerate(new_items):
        where = f"spec.riskAcceptances[{i}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where} is not an object")
            continue
        key = _acceptance_key(item)
        if key is None:
            problems.append(f"{where} needs a gate ({', '.join(GATE_NAMES)}), a reason and an expiry time")
            continue
        path = f"/spec/riskAcceptances/{i}/acceptedBy"
        if remaining.get(key):
            for name, keep in zip(("acceptedBy", "specDigest"), remaining[key].pop(0), strict=True):
                if item.get(name) != keep:
                    field_path = f"/spec/riskAcceptances/{i}/{name}"
                    patch.append({"op": "remove", "path": field_path} if keep is None else _set(item, field_path, keep))
            continue
        gate, _, expires = key
        if not user:
            problems.append(f"{where} ({gate}): the request carries no authenticated user name")
        elif not acceptor_groups & groups:
            allowed = ", ".join(sorted(acceptor_groups)) or "(none configured)"
            problems.append(
                f"user {user} may not accept risks ({where}, gate {gate}): not in any of the groups {allowed}"
            )
        if not is_active(RiskAcceptance(gate=gate, reason=key[1], expires=expires), now):
            problems.append(f"{where} ({gate}) expires in the past ({rfc3339(expires)}): it would count for nothing")
        recorded.append(i)
        if item.get("acceptedBy") != user:
            patch.append(_set(item, path, user))
        if spec_digest is not None and item.get("specDigest") != spec_digest:
            patch.append(_set(item, f"/spec/riskAcceptances/{i}/specDigest", spec_digest))
    if problems:
        return AcceptanceDecision(False, one_line("; ".join(problems), MAX_MESSAGE))
    return AcceptanceDecision(True, "", patch, recorded)


def _set(item: Mapping[str, Any], path: str, value: str) -> dict[str, Any]:
    return {"op": "replace" if path.rsplit("/", 1)[1] in item else "add", "path": path, "value": value}


def acceptance_validation(
    *,
    operation: str,
    new_spec: Mapping[str, Any] | None,
    old_spec: Mapping[str, Any] | None,
    userinfo: Mapping[str, Any],
    acceptor_groups: set[str],
    now: datetime,
) -> AcceptanceDecision:
    """`acceptance_patch(..., validate_only=True)`."""
    return acceptance_patch(
        operation=operation,
        new_spec=new_spec,
        old_spec=old_spec,
        userinfo=userinfo,
        acceptor_groups=acceptor_groups,
        now=now,
        validate_only=True,
    )

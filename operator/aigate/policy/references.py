"""No reading through aigate: whoever adds a reference to a Secret or ConfigMap to an AIWorkload must be allowed
to read it themselves, or aigate would read it for them (a key sent to an endpoint of their choosing, a prompt
copied into evidence). The AIWorkload webhook asks the API server (a SubjectAccessReview for the requesting user)
about each reference this request adds; this module says which those are and words the refusal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aigate.api.models import AIWorkload

Kind = Literal["Secret", "ConfigMap"]


@dataclass(frozen=True, order=True)
class Reference:
    kind: Kind
    name: str
    where: str
    """The field that names it, e.g. spec.models[0].credentials.secretRef."""

    @property
    def resource(self) -> str:
        return "secrets" if self.kind == "Secret" else "configmaps"


def references(workload: AIWorkload) -> list[Reference]:
    """Every Secret and ConfigMap the workload names, with the field that names it."""
    spec = workload.spec
    out: list[Reference] = []
    creds = [(f"spec.models[{i}].credentials", m.credentials) for i, m in enumerate(spec.models)]
    creds += [(f"spec.mcpServers[{i}].credentials", s.credentials) for i, s in enumerate(spec.mcp_servers)]
    if spec.fallback.human_route is not None:
        creds.append(("spec.fallback.humanRoute.credentials", spec.fallback.human_route.credentials))
    for where, c in creds:
        if c is not None and c.secret_ref is not None:
            out.append(Reference("Secret", c.secret_ref.name, f"{where}.secretRef"))
    refs = [(f"spec.prompts[{i}]", p.config_map_ref) for i, p in enumerate(spec.prompts)]
    refs.append(("spec.suite", spec.suite.config_map_ref))
    refs += [(f"spec.tools[{i}].manifest", t.manifest.config_map_ref) for i, t in enumerate(spec.tools) if t.manifest]
    for where, ref in refs:
        if ref is not None:
            out.append(Reference("ConfigMap", ref.name, f"{where}.configMapRef"))
    return out


def added(new: AIWorkload, old: AIWorkload | None) -> list[Reference]:
    """The references this request adds: those of `new` whose object `old` did not already name. One that was
    there before was checked for whoever added it; editing something else needs no right to read it."""
    before = {(r.kind, r.name) for r in references(old)} if old is not None else set()
    seen: set[tuple[str, str]] = set()
    out = []
    for r in references(new):
        key = (r.kind, r.name)
        if key not in before and key not in seen:
            seen.add(key)
            out.append(r)
    return out


def refusal(user: str, namespace: str, denied: list[Reference]) -> str | None:
    """The message when the user may not read what they reference; None when they may read all of it."""
    if not denied:
        return None
    items = "; ".join(f"{r.kind} {namespace}/{r.name} ({r.where})" for r in denied)
    return (
        f"user {user or '(unknown)'} may not get {items}: an AIWorkload may only reference what its author may "
        "read, since aigate reads it for the gate run"
    )

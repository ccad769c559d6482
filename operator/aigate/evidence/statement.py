"""The evidence statement: an in-toto Statement v1 whose subject is the workload and whose subject digest is
its spec digest, so evidence is bound to exactly the spec (and referenced ConfigMaps) that was tested.

Size bound. In a cluster the signed envelope is stored in a ConfigMap, and a ConfigMap holds at most 1 MiB.
`MAX_ENVELOPE_BYTES` = 900 KiB leaves room for the ConfigMap's metadata and other keys. The envelope
base64-encodes the statement (4/3 growth), so a predicate may serialise to about 675 KiB. `bound_predicate`
keeps it there: while the predicate's canonical JSON is too large, the longest string in it (a model's answer,
a transcript, an error body: longest first, so the fewest strings are touched) is replaced by
`{"truncated": true, "sha256": <hex of its UTF-8>, "bytes": <its UTF-8 length>, "head": <first 200 chars>}`,
which still proves what the string was. If it still does not fit once every long string is summarised,
`EvidenceError` says so: the suite is too large to sign whole, and a silently partial package would lie.
`sign_statement` refuses to produce an envelope above the bound.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aigate.api.digest import canonical_json
from aigate.evidence.dsse import IN_TOTO_PAYLOAD_TYPE, sign_envelope
from aigate.evidence.errors import EvidenceError as EvidenceError
from aigate.evidence.errors import EvidenceInputError as EvidenceInputError
from aigate.evidence.errors import EvidenceVerificationError as EvidenceVerificationError
from aigate.evidence.keys import PrivateKey

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://aigate.dev/evidence/v1"
SUBJECT_PREFIX = "aiworkload/"
PAYLOAD_TYPE = IN_TOTO_PAYLOAD_TYPE
"""The DSSE payloadType of every evidence envelope."""

PREDICATE_REQUIRED_KEYS: tuple[str, ...] = (
    "workload",
    "owner",
    "decision",
    "gates",
    "cases",
    "modelIdentities",
    "faultModes",
    "riskAcceptances",
    "monitoring",
    "runner",
    "issuedAt",
    "expiresAt",
    "specDigest",
)

# The gates whose results a complete package records; the evidence gate is judged from this very check.
REQUIRED_GATES: tuple[str, ...] = ("cost", "reliability", "fallback", "toolControl", "providerDependency")

MAX_ENVELOPE_BYTES = 900 * 1024
# Room for everything in the envelope besides the base64 payload (payloadType, one signature, keyid: ~300
# bytes) and in the statement besides the predicate (types, subject name up to 63 + 253 chars, digest: ~600).
_ENVELOPE_RESERVE = 1024
_STATEMENT_RESERVE = 2048
SUMMARY_HEAD_CHARS = 200
# Strings at most this long (UTF-8 bytes) are kept: their summary would not be much smaller.
_MIN_SUMMARISED_BYTES = 512

_HEX64 = re.compile(r"[0-9a-f]{64}")


def normalize_digest(digest: str) -> str:
    """'sha256:<hex>' or '<hex>' -> lower-case hex; EvidenceError on anything else."""
    hexpart = digest.strip().lower().removeprefix("sha256:")
    if not _HEX64.fullmatch(hexpart):
        raise EvidenceError(f"not a sha256 digest: {digest[:80]!r} (expected sha256:<64 hex digits>)")
    return hexpart


def build_statement(namespace: str, name: str, spec_digest_hex: str, predicate: Mapping[str, Any]) -> dict[str, Any]:
    """The Statement v1 for workload `namespace/name` at spec digest `spec_digest_hex` (hex or sha256:hex)."""
    if not namespace or not name:
        raise EvidenceError("a statement needs the workload's namespace and name")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": f"{SUBJECT_PREFIX}{namespace}/{name}", "digest": {"sha256": normalize_digest(spec_digest_hex)}}
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": dict(predicate),
    }


def statement_bytes(statement: Mapping[str, Any]) -> bytes:
    """The DSSE payload: canonical JSON (sorted keys, compact, UTF-8)."""
    return canonical_json(statement)


def envelope_bytes(envelope: Mapping[str, Any]) -> bytes:
    """How an envelope is written to a file or ConfigMap (compact JSON); its size is what the bound is about."""
    return canonical_json(envelope)


def sign_statement(
    statement: Mapping[str, Any], private_key: PrivateKey, *, max_envelope_bytes: int = MAX_ENVELOPE_BYTES
) -> dict[str, Any]:
    """Sign `statement` into a DSSE envelope; EvidenceError if the envelope would exceed the size bound."""
    envelope = sign_envelope(statement_bytes(statement), IN_TOTO_PAYLOAD_TYPE, private_key)
    size = len(envelope_bytes(envelope))
    if size > max_envelope_bytes:
        raise EvidenceError(
            f"signed evidence is {size} bytes, above the {max_envelope_bytes}-byte bound "
            "(run bound_predicate on the predicate first)"
        )
    return envelope


def max_predicate_bytes(max_envelope_bytes: int = MAX_ENVELOPE_BYTES) -> int:
    """The largest canonical-JSON predicate whose signed envelope still fits `max_envelope_bytes`."""
    return (max_envelope_bytes - _ENVELOPE_RESERVE) * 3 // 4 - _STATEMENT_RESERVE


def summarise(text: str) -> dict[str, Any]:
    """What replaces a long string: enough to prove what it was and to recognise it."""
    data = text.encode("utf-8")
    return {
        "truncated": True,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "head": text[:SUMMARY_HEAD_CHARS],
    }


def _json_len(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def bound_predicate(predicate: Mapping[str, Any], *, max_envelope_bytes: int = MAX_ENVELOPE_BYTES) -> dict[str, Any]:
    """A copy of `predicate` whose signed envelope fits `max_envelope_bytes` (see the module docstring)."""
    limit = max_predicate_bytes(max_envelope_bytes)
    out: dict[str, Any] = copy.deepcopy(dict(predicate))
    size = len(canonical_json(out))
    if size <= limit:
        return out
    # Every long string, with its container and key, longest first (then by position: deterministic).
    found: list[tuple[int, int, Any, Any]] = []

    def walk(node: Any) -> None:
        items: Any = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in items:
            if isinstance(v, str):
                n = _json_len(v)
                if n > _MIN_SUMMARISED_BYTES:
                    found.append((-n, len(found), node, k))
            elif isinstance(v, dict | list):
                walk(v)

    walk(out)
    found.sort(key=lambda t: (t[0], t[1]))
    for neg_n, _, container, k in found:
        summary = summarise(container[k])
        container[k] = summary
        size -= -neg_n - _json_len(summary)
        if size <= limit:
            break
    size = len(canonical_json(out))
    if size > limit:
        raise EvidenceError(
            f"evidence predicate is {size} bytes with every long string summarised, above the {limit}-byte limit "
            f"that keeps the signed envelope under {max_envelope_bytes} bytes; record fewer cases or repeats"
        )
    return out


def parse_time(value: Any, field: str) -> datetime:
    """An RFC 3339 timestamp with a time zone; EvidenceError naming `field` otherwise."""
    if not isinstance(value, str):
        raise EvidenceError(f"{field} is not a timestamp")
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise EvidenceError(f"{field} is not an RFC 3339 timestamp: {value[:40]!r}") from None
    if t.tzinfo is None:
        raise EvidenceError(f"{field} has no time zone: {value[:40]!r}")
    return t


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)


def completeness_problems(predicate: Mapping[str, Any]) -> list[str]:
    """What the package lacks, as short phrases for the evidence gate's reason; [] when complete.

    Shapes checked are those `aigate.assessment.build_predicate` writes: `gates` a list of GateResult dumps,
    `faultModes` a list or {"tried": [...], "required": [...]}, `riskAcceptances` entries with `acceptedBy`
    and `expires`.
    """
    problems = [f"missing {k}" for k in PREDICATE_REQUIRED_KEYS if k not in predicate]
    p = predicate
    if "owner" in p and _empty(p["owner"]):
        problems.append("no owner")
    if "workload" in p and _empty(p["workload"]):
        problems.append("no workload identity")
    if "decision" in p and p["decision"] not in ("PASS", "FAIL"):
        problems.append("no decision (PASS or FAIL)")
    if "specDigest" in p:
        try:
            normalize_digest(str(p["specDigest"]))
        except EvidenceError:
            problems.append("no valid spec digest")
    if "gates" in p:
        gates = p["gates"]
        if _empty(gates) or not isinstance(gates, list):
            problems.append("no gate results")
        else:
            ran = {g.get("gate") for g in gates if isinstance(g, Mapping) and g.get("status")}
            missing = [g for g in REQUIRED_GATES if g not in ran]
            if missing:
                problems.append(f"gates did not run: {', '.join(missing)}")
    if "cases" in p and (_empty(p["cases"]) or not isinstance(p["cases"], list)):
        problems.append("no case results")
    if "modelIdentities" in p and _empty(p["modelIdentities"]):
        problems.append("no model identities")
    if "faultModes" in p:
        fm = p["faultModes"]
        if isinstance(fm, Mapping):
            untried = [m for m in fm.get("required") or [] if m not in (fm.get("tried") or [])]
            if not fm.get("tried"):
                problems.append("no fault modes tried")
            elif untried:
                problems.append(f"fault modes not tried: {', '.join(map(str, untried))}")
        elif _empty(fm):
            problems.append("no fault modes tried")
    if "riskAcceptances" in p:
        ras = p["riskAcceptances"]
        if not isinstance(ras, list):
            problems.append("risk acceptances are not a list")
        else:
            for ra in ras:
                gate = ra.get("gate", "?") if isinstance(ra, Mapping) else "?"
                if not isinstance(ra, Mapping) or _empty(ra.get("acceptedBy")):
                    problems.append(f"risk acceptance for {gate} has no identity (acceptedBy)")
                if not isinstance(ra, Mapping) or _empty(ra.get("expires")):
                    problems.append(f"risk acceptance for {gate} has no expiry")
    if "monitoring" in p and _empty(p["monitoring"]):
        problems.append("no monitoring conditions")
    if "runner" in p and _empty(p["runner"]):
        problems.append("no runner version")
    issued = expires = None
    for field in ("issuedAt", "expiresAt"):
        if field in p:
            try:
                t = parse_time(p[field], field)
            except EvidenceError:
                problems.append("no expiry" if field == "expiresAt" else "no issue time")
                continue
            if field == "issuedAt":
                issued = t
            else:
                expires = t
    if issued is not None and expires is not None and expires <= issued:
        problems.append("expires before it is issued")
    return problems

"""Time to sign and to verify one evidence envelope of the maximum size (MAX_ENVELOPE_BYTES), per key type.

Why: the operator signs once per gate run, but the admission webhook verifies on every rollout of a labelled
workload, inside the API server's webhook timeout. This is the worst case it meets.

    .venv/bin/python bench/evidence_sign_verify.py [--iterations 50] [--json]

sign   = canonical JSON of the statement + DSSE signature + base64 + the envelope's JSON (what the operator writes)
verify = verify_evidence on the envelope's bytes: JSON parse, base64, signature, statement and expiry checks
bound  = bound_predicate on a ~2.6 MB predicate (once per run, before signing)
"""

from __future__ import annotations

import argparse
import json
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

from aigate.evidence import (
    MAX_ENVELOPE_BYTES,
    KeyKind,
    bound_predicate,
    build_statement,
    envelope_bytes,
    generate_key,
    sign_statement,
    verify_evidence,
)
from aigate.evidence.keys import private_key_from_pem, public_key_from_pem
from timing import percentile, timed

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DIGEST = "ab" * 32


def huge_predicate() -> dict[str, Any]:
    """200 cases x 3 repeats with a 4 KiB answer each: larger than the bound, so it is cut to the maximum."""
    cases = [
        {
            "case": f"case-{i}",
            "model": "primary",
            "runs": [{"repeat": r, "text": f"answer {i}/{r}: " + "the quick brown fox é " * 190} for r in range(3)],
        }
        for i in range(200)
    ]
    return {
        "workload": {"namespace": "fraud", "name": "fraud-review-assistant"},
        "owner": "fraud-platform-team",
        "specDigest": f"sha256:{DIGEST}",
        "decision": "PASS",
        "gates": [{"gate": g, "status": "PASS", "reason": "ok"} for g in ("cost", "reliability", "fallback")],
        "cases": cases,
        "modelIdentities": [],
        "faultModes": [],
        "riskAcceptances": [],
        "monitoring": [],
        "runner": {"name": "aigate", "version": "bench"},
        "issuedAt": NOW.isoformat(),
        "expiresAt": (NOW + timedelta(days=30)).isoformat(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", "-n", type=int, default=50)
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = ap.parse_args()

    raw = huge_predicate()
    bound_ms = [1000 * t for t in timed(lambda: bound_predicate(raw), 3)]
    predicate = bound_predicate(raw)
    statement = build_statement("fraud", "fraud-review-assistant", DIGEST, predicate)
    results: dict[str, Any] = {"iterations": args.iterations, "maxEnvelopeBytes": MAX_ENVELOPE_BYTES}
    results["boundMsMedian"] = round(statistics.median(bound_ms), 2)
    kinds: tuple[KeyKind, ...] = ("ecdsa-p256", "ed25519")
    for kind in kinds:
        priv_pem, pub_pem = generate_key(kind)
        priv, pub = private_key_from_pem(priv_pem), public_key_from_pem(pub_pem)
        data = envelope_bytes(sign_statement(statement, priv))
        verify_evidence(data, pub, now=NOW, expected_digest=DIGEST)  # warm up, and prove it verifies
        sign = timed(lambda: envelope_bytes(sign_statement(statement, priv)), args.iterations)  # noqa: B023
        verify = timed(lambda: verify_evidence(data, pub, now=NOW, expected_digest=DIGEST), args.iterations)  # noqa: B023
        results[kind] = {
            "envelopeBytes": len(data),
            "signP50Ms": round(1000 * percentile(sign, 0.5), 2),
            "signP99Ms": round(1000 * percentile(sign, 0.99), 2),
            "verifyP50Ms": round(1000 * percentile(verify, 0.5), 2),
            "verifyP99Ms": round(1000 * percentile(verify, 0.99), 2),
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"evidence envelope at the size bound ({MAX_ENVELOPE_BYTES} bytes), {args.iterations} iterations")
    print(f"bound_predicate on {len(json.dumps(raw).encode())} bytes: {results['boundMsMedian']} ms (median of 3)")
    print(f"{'key':<11} {'bytes':>7} {'sign p50':>9} {'sign p99':>9} {'verify p50':>11} {'verify p99':>11}  (ms)")
    for kind in kinds:
        r = results[kind]
        print(
            f"{kind:<11} {r['envelopeBytes']:>7} {r['signP50Ms']:>9} {r['signP99Ms']:>9} "
            f"{r['verifyP50Ms']:>11} {r['verifyP99Ms']:>11}"
        )


if __name__ == "__main__":
    main()

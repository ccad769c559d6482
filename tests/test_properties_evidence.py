"""Properties of signed evidence: any change to an envelope made without the signing key (its payload's bytes, the
statement's subject, digest, times or decision, the signature, the keyid, the payloadType) is refused by `aigate
verify` (exit 1 or 2, one line) and by the rollout webhook's check (the rollout is denied), while the envelope as
signed is accepted by both."""

from __future__ import annotations

import base64
import io
import json
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from hypothesis import assume, example, given
from hypothesis import strategies as st

from admission_support import NOW, PUB, World, sign
from aigate.cli import main
from aigate.evidence import EvidenceError, key_id, verify_evidence
from aigate.evidence.keys import public_key_pem
from aigate.kube import names

SIGNED: dict[str, Any] = sign(World().digest, expiresAt="2099-01-01T00:00:00+00:00")
"""Passing evidence for the example's current spec, valid at NOW and at the time `aigate verify` runs."""
STATEMENT: dict[str, Any] = json.loads(base64.b64decode(SIGNED["payload"]))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _with_statement(statement: dict[str, Any]) -> dict[str, Any]:
    return {**SIGNED, "payload": _b64(json.dumps(statement).encode())}


STATEMENT_EDITS = st.sampled_from(
    [
        ("subject", "name"),
        ("subject", "digest"),
        ("predicate", "issuedAt"),
        ("predicate", "expiresAt"),
        ("predicate", "decision"),
        ("predicate", "specDigest"),
        ("predicate", "workload"),
        ("", "predicateType"),
        ("", "_type"),
    ]
)
NEW_VALUES = (
    st.text(max_size=20)
    | st.datetimes(timezones=st.none()).map(lambda t: t.isoformat() + "Z")
    | st.sampled_from(["FAIL", "PASS ", "pass", "sha256:" + "0" * 64, "2099-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
    | st.dictionaries(st.sampled_from(["sha256", "name", "namespace"]), st.text(max_size=8), max_size=2)
    | st.none()
)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """(what was changed, the envelope) for one change made without the key."""
    what = draw(st.sampled_from(["payload bytes", "statement", "signature", "keyid", "payloadType", "signatures"]))
    env = json.loads(json.dumps(SIGNED))
    if what == "payload bytes":
        payload = bytearray(base64.b64decode(env["payload"]))
        i = draw(st.integers(0, len(payload) - 1))
        payload[i] ^= draw(st.integers(1, 255))
        env["payload"] = _b64(bytes(payload))
    elif what == "statement":
        where, key = draw(STATEMENT_EDITS)
        statement = json.loads(json.dumps(STATEMENT))
        target = statement if not where else statement[where][0] if where == "subject" else statement[where]
        value = draw(NEW_VALUES)
        assume(target.get(key) != value)
        target[key] = value
        env = _with_statement(statement)
    elif what == "signature":
        sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
        i = draw(st.integers(0, len(sig) - 1))
        sig[i] ^= draw(st.integers(1, 255))
        env["signatures"][0]["sig"] = _b64(bytes(sig))
    elif what == "keyid":
        new = draw(st.text(min_size=1, max_size=64) | st.integers() | st.just(key_id(PUB)[::-1]))
        assume(new != key_id(PUB))
        env["signatures"][0]["keyid"] = new
    elif what == "payloadType":
        new = draw(st.text(max_size=40))
        assume(new != env["payloadType"])
        env["payloadType"] = new
    else:
        env["signatures"] = draw(st.lists(st.fixed_dictionaries({"sig": st.text(max_size=12)}), max_size=2))
    return what, env


def verify_cli(envelope: str) -> tuple[int, str, str]:
    """`aigate verify` in-process on this envelope, with the key that signed the original."""
    out, err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "evidence.json").write_text(envelope, encoding="utf-8")
        (Path(d) / "aigate.pub").write_bytes(public_key_pem(PUB))
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(["verify", str(Path(d) / "evidence.json"), "--key", str(Path(d) / "aigate.pub")])
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def webhook_allows(envelope: str) -> bool:
    world = World()
    world.evidence = {**(world.evidence or {}), "data": {names.EVIDENCE_KEY: envelope}}
    return bool(world.decide().allowed)


def test_the_envelope_as_signed_is_accepted_by_both() -> None:
    text = json.dumps(SIGNED)
    code, out, err = verify_cli(text)
    assert (code, err) == (0, "") and out.startswith("evidence verified: fraud/fraud-review-assistant decision PASS")
    assert webhook_allows(text)


@given(change=mutated())
@example(change=("keyid", {**SIGNED, "signatures": [{**SIGNED["signatures"][0], "keyid": "another-key"}]}))
@example(change=("keyid", {**SIGNED, "signatures": [{**SIGNED["signatures"][0], "keyid": "\n"}]}))  # under deep
def test_any_change_without_the_key_is_refused_by_verify_and_by_the_webhook(change: tuple[str, Any]) -> None:
    what, env = change
    text = json.dumps(env)
    try:
        verify_evidence(text, PUB, now=NOW)
    except EvidenceError:
        pass
    else:
        raise AssertionError(f"a changed {what} verified")
    code, out, err = verify_cli(text)
    assert code in (1, 2) and out == ""
    assert err.count("\n") == 1 and "internal error" not in err, err
    assert not webhook_allows(text)


def test_a_rewritten_keyid_is_refused_as_another_keys_signature() -> None:
    """Found by the mutation property: the keyid was a hint nothing checked, so an envelope naming another key
    still verified; a signature naming another key's id is now not this key's."""
    env = {**SIGNED, "signatures": [{**SIGNED["signatures"][0], "keyid": "0" * 64}]}
    code, _, err = verify_cli(json.dumps(env))
    assert code == 1 and "the envelope names keyid 0000000000000000… (signed with another key?)" in err
    assert not webhook_allows(json.dumps(env))

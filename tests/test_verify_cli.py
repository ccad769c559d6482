"""`aigate verify` as a person or a pipeline runs it: exit 0 only for good evidence, 1 with the one reason
when it does not hold, 2 when the input cannot be read."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from aigate.api.digest import spec_digest
from aigate.api.load import load_and_resolve
from aigate.cli import main
from aigate.evidence.keys import load_private_key, write_keypair
from aigate.evidence.statement import build_statement, sign_statement
from factories import ROOT

EXAMPLE = ROOT / "examples" / "fraud-review-assistant-remediated.yaml"


def envelope(tmp_path: Path, *, expires: str = "2099-01-01T00:00:00+00:00", decision: str = "PASS") -> Path:
    digest = spec_digest(load_and_resolve(EXAMPLE))
    predicate = {
        "workload": {"namespace": "fraud", "name": "fraud-review-assistant"},
        "specDigest": digest,
        "decision": decision,
        "gates": [],
        "issuedAt": "2026-11-27T00:00:00+00:00",
        "expiresAt": expires,
    }
    key = load_private_key(tmp_path / "keys" / "aigate.key")
    env = sign_statement(build_statement("fraud", "fraud-review-assistant", digest, predicate), key)
    out = tmp_path / f"evidence-{decision}-{expires[:4]}.json"
    out.write_text(json.dumps(env))
    return out


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    write_keypair(tmp_path / "keys", "ecdsa-p256")
    write_keypair(tmp_path / "other", "ecdsa-p256")
    return tmp_path / "keys" / "aigate.pub"


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["verify", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_good_evidence_verifies(tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = verify(capsys, str(envelope(tmp_path)), "--key", str(keys), "--workload", str(EXAMPLE))
    assert code == 0
    assert out.startswith("evidence verified: fraud/fraud-review-assistant decision PASS")


def test_flipped_payload_byte(tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = envelope(tmp_path)
    env = json.loads(path.read_text())
    payload = bytearray(base64.b64decode(env["payload"]))
    payload[len(payload) // 2] ^= 0x01
    env["payload"] = base64.b64encode(bytes(payload)).decode()
    path.write_text(json.dumps(env))
    code, _, err = verify(capsys, str(path), "--key", str(keys))
    assert code == 1
    assert err.startswith("evidence rejected: signature does not verify with key aigate.pub")


def test_spec_changed_after_signing(tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    changed = tmp_path / "changed.yaml"
    changed.write_text(EXAMPLE.read_text().replace("monthlyUSD: 15000", "monthlyUSD: 16000"))
    code, _, err = verify(capsys, str(envelope(tmp_path)), "--key", str(keys), "--workload", str(changed))
    assert code == 1
    assert "(spec changed after signing)" in err


def test_wrong_key(tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = verify(capsys, str(envelope(tmp_path)), "--key", str(tmp_path / "other" / "aigate.pub"))
    assert code == 1
    assert "signature does not verify" in err


def test_expired_package(tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = verify(capsys, str(envelope(tmp_path, expires="2026-01-01T00:00:00+00:00")), "--key", str(keys))
    assert code == 1
    assert err.startswith("evidence rejected: evidence expired at 2026-01-01T00:00:00Z")


def test_failed_decision(tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = verify(capsys, str(envelope(tmp_path, decision="FAIL")), "--key", str(keys))
    assert (code, err.strip()) == (1, "evidence rejected: decision is FAIL")


def test_unreadable_input_is_exit_2(tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = verify(capsys, str(tmp_path / "missing.json"), "--key", str(keys))
    assert code == 2 and "cannot read" in err
    garbage = tmp_path / "garbage.json"
    garbage.write_text("not json at all")
    code, _, err = verify(capsys, str(garbage), "--key", str(keys))
    assert code == 2 and err.startswith("aigate: error:")
    code, _, err = verify(capsys, str(envelope(tmp_path)), "--key", str(garbage))
    assert code == 2 and err.startswith("aigate: error:")

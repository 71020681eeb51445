"""`govfleet sign`: prints tokens and request bodies that verify against the example
repo-spec's admins; refuses bad input with one clear line.

Keys: the well-known PUBLIC Hardhat/Anvil development accounts (test-only, of no value);
accounts 0 and 1 are the admins in .cogni/repo-spec.yaml, account 2 is not."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eth_account import Account

from govfleet.cli import run
from govfleet.domain.admin_auth import AuthorizationError, verify_admin_action
from govfleet.domain.admin_signing import GovernanceApproval

KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KEY1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
KEY2 = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
ADDR0 = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
ADDR1 = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def keys(tmp_path) -> dict[str, str]:
    out = {}
    for name, key in (("k0", KEY0), ("k1", KEY1), ("k2", KEY2)):
        p = tmp_path / f"{name}.key"
        p.write_text(f"# Hardhat dev account (public test key)\n{key}\n")
        out[name] = str(p)
    # A keystore (cheap KDF for the test) for account 1.
    ks = Account.encrypt(KEY1, "correct horse", kdf="pbkdf2", iterations=1000)
    p = tmp_path / "k1.keystore.json"
    p.write_text(json.dumps(ks))
    out["k1_keystore"] = str(p)
    return out


def verify(tokens, config, *, action="pause", reason="", quorum=1, guardian="governance-guardian", approval=None):
    g = config.spec.guardian
    return verify_admin_action(
        tokens,
        approval=approval,
        domain=config.spec.cogni_dao.signing_domain(),
        action=action,
        guardian_id=guardian,
        reason=reason,
        now=datetime.now(UTC),
        admins=list(g.admins),
        used_nonces=set(),
        quorum=quorum,
        max_age_seconds=g.signature_max_age_seconds,
    )


def sign(capsys, *argv) -> tuple[int, str, str]:
    code = run(["sign", *argv, "--repo-spec", str(REPO_ROOT / ".cogni" / "repo-spec.yaml")])
    captured = capsys.readouterr()
    return code, captured.out.strip(), captured.err.strip()


def test_console_script_prints_a_token_that_verifies(keys, config):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "govfleet.cli",
            "sign",
            "pause",
            "--key-file",
            keys["k0"],
            "--reason",
            "Manual intervention required",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert "\n" not in token and token.count(".") == 2
    [v] = verify([token], config, reason="Manual intervention required")
    assert v.signer == ADDR0
    assert f"signed pause of governance-guardian by {ADDR0}" in proc.stderr
    assert "EIP-712 domain 'cogni-demo' version '1', chain 8453, contract 0x5fbdb2315678" in proc.stderr


def test_a_wallet_signs_the_printed_typed_data(config, capsys):
    expires = int(datetime.now(UTC).timestamp()) + 300
    common = ["--reason", "Tracker looks wrong", "--nonce", "wallet-nonce-1", "--expires", str(expires)]
    code, out, err = sign(capsys, "pause", "--typed-data", *common)
    assert code == 0 and "eth_signTypedData_v4" in err
    typed = json.loads(out)
    assert typed["domain"] == {
        "name": "cogni-demo",
        "version": "1",
        "chainId": 8453,
        "verifyingContract": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
    }
    assert typed["message"] == {
        "action": "pause",
        "guardianId": "governance-guardian",
        "reason": "Tracker looks wrong",
        "nonce": "wallet-nonce-1",
        "expiry": expires,
    }
    signature = Account.sign_typed_data(KEY1, full_message=typed).signature.hex()
    code, out, err = sign(capsys, "pause", "--signature", "0x" + signature.removeprefix("0x"), "--json", *common)
    assert code == 0 and f"by {ADDR1}" in err
    [v] = verify(json.loads(out)["authorization"], config, reason="Tracker looks wrong")
    assert (v.signer, v.nonce) == (ADDR1, "wallet-nonce-1")


def test_a_signature_for_another_chain_is_foreign(keys, config, capsys):
    code, token, err = sign(capsys, "pause", "--key-file", keys["k0"], "--reason", "r", "--chain-id", "1")
    assert code == 0 and "chain 1," in err
    with pytest.raises(AuthorizationError) as ei:
        verify([token], config, reason="r")
    assert ei.value.code == "foreign"


def test_json_pause_body(keys, config, capsys):
    code, out, _ = sign(
        capsys,
        "pause",
        "--key-file",
        keys["k0"],
        "--reason",
        "Tracker looks wrong",
        "--json",
        "--nonce",
        "fixed-nonce-1",
        "--ttl",
        "120",
    )
    assert code == 0
    body = json.loads(out)
    assert set(body) == {"reason", "authorization"} and body["reason"] == "Tracker looks wrong"
    assert body["authorization"].startswith("fixed-nonce-1.")
    [v] = verify(body["authorization"], config, reason="Tracker looks wrong")
    assert v.nonce == "fixed-nonce-1"
    assert 110 <= (v.expires_at - datetime.now(UTC)).total_seconds() <= 121


def test_keystore_key_file(keys, config, capsys, monkeypatch):
    monkeypatch.setenv("GOVFLEET_TEST_KS_PASSWORD", "correct horse")
    code, out, _ = sign(
        capsys, "resume", "--key-file", keys["k1_keystore"], "--password-env", "GOVFLEET_TEST_KS_PASSWORD"
    )
    assert code == 0
    assert verify([out], config, action="resume")[0].signer == ADDR1


APPROVAL_REF = "0x5e4c0f2b9d0e7a3b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b"
APPROVAL_URL = "https://snapshot.example/cogni/proposal/42"


def test_emergency_resume_quorum_signs_the_governance_approval(keys, config, capsys, tmp_path):
    approval = ["--approval-ref", APPROVAL_REF, "--approval-url", APPROVAL_URL]
    code, out, err = sign(capsys, "resume", "--key-file", keys["k0"], *approval, "--json")
    assert code == 0 and APPROVAL_REF in err
    first = tmp_path / "resume.json"
    first.write_text(out)
    code, out, err = sign(capsys, "resume", "--key-file", keys["k1"], "--add-to", str(first))
    assert code == 0 and "2 signatures in the body now" in err
    body = json.loads(out)
    assert body["governance_approval"] == {"reference": APPROVAL_REF, "url": APPROVAL_URL}
    assert "governance_verified" not in body and body["reason"] == ""
    assert isinstance(body["authorization"], list) and len(body["authorization"]) == 2
    signed = GovernanceApproval(reference=APPROVAL_REF, url=APPROVAL_URL)
    verified = verify(body["authorization"], config, action="resume", quorum=2, approval=signed)
    assert [v.signer for v in verified] == [ADDR0, ADDR1]
    # The same tokens do not verify without the approval, nor with another one.
    with pytest.raises(AuthorizationError) as ei:
        verify(body["authorization"], config, action="resume", quorum=2)
    assert ei.value.code == "foreign"
    other = GovernanceApproval(reference="0x01", url=APPROVAL_URL)
    with pytest.raises(AuthorizationError) as ei:
        verify(body["authorization"], config, action="resume", quorum=2, approval=other)
    assert ei.value.code == "foreign"
    # A second admin cannot sign another approval into the same body.
    code, _, err = sign(
        capsys,
        "resume",
        "--key-file",
        keys["k1"],
        "--add-to",
        str(first),
        "--approval-ref",
        "x",
        "--approval-url",
        APPROVAL_URL,
    )
    assert code == 2 and "every admin signs the same approval" in err
    # The wallet's typed data shows the approval.
    code, out, _ = sign(capsys, "resume", "--typed-data", "--nonce", "walletnonce1", *approval)
    typed = json.loads(out)
    assert typed["primaryType"] == "GovernanceResume"
    assert (typed["message"]["approval"], typed["message"]["approvalUrl"]) == (APPROVAL_REF, APPROVAL_URL)


def test_forensic_audit_completion_signs_the_report(keys, config, capsys):
    report = "https://reports.example/forensic/2026-12"
    code, out, _ = sign(capsys, "complete_forensic_audit", "--key-file", keys["k0"], "--report", report, "--json")
    assert code == 0
    body = json.loads(out)
    assert body["report"] == report
    [v] = verify([body["authorization"]], config, action="complete_forensic_audit", reason=report)
    assert v.signer == ADDR0


def test_token_for_one_action_does_not_authorize_another(keys, config, capsys):
    _, token, _ = sign(capsys, "pause", "--key-file", keys["k0"], "--reason", "r")
    with pytest.raises(AuthorizationError) as ei:
        verify([token], config, action="resume", reason="r")
    assert ei.value.code == "foreign"
    with pytest.raises(AuthorizationError) as ei:
        verify([token], config, reason="r", guardian="governance-guardian-other")
    assert ei.value.code == "foreign"


def test_non_admin_key_signs_but_does_not_verify(keys, config, capsys):
    code, token, _ = sign(capsys, "pause", "--key-file", keys["k2"], "--reason", "r")
    assert code == 0
    with pytest.raises(AuthorizationError) as ei:
        verify([token], config, reason="r")
    assert ei.value.code == "foreign"


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["pause", "--key-file", "KEY0"], "a pause needs a reason"),
        (["pause", "--key-file", "/nonexistent/k.key", "--reason", "r"], "does not exist"),
        (["pause", "--key-file", "KEY0", "--reason", "r", "--ttl", "0"], "--ttl must be between 1 and 86400"),
        (["pause", "--key-file", "KEY0", "--reason", "r", "--nonce", "bad nonce"], "--nonce must be 8 to 64"),
        (["pause", "--key-file", "KEY0", "--reason", "r", "--guardian", "a b"], "--guardian must be"),
        (["resume", "--key-file", "KEY0", "--governance-verified"], "--governance-verified means nothing"),
        (
            [
                "pause",
                "--key-file",
                "KEY0",
                "--reason",
                "r",
                "--approval-ref",
                "p",
                "--approval-url",
                "https://x.example",
            ],
            "apply to resume only",
        ),
        (["resume", "--key-file", "KEY0", "--approval-ref", "p"], "give both --approval-ref"),
        (["resume", "--key-file", "KEY0", "--approval-ref", "p", "--approval-url", "ftp://x"], "url must be an http"),
        (["complete_forensic_audit", "--key-file", "KEY0"], "needs --report"),
        (["resume", "--key-file", "KS"], "is a keystore: give --password-env"),
        (["resume", "--key-file", "KS", "--password-env", "GOVFLEET_TEST_UNSET_VAR"], "is not set"),
        (["resume", "--key-file", "KS", "--password-env", "GOVFLEET_TEST_WRONG_PW"], "cannot be decrypted"),
        (["resume", "--key-file", "BAD"], "does not hold a private key"),
        (["resume", "--key-file", "TWO"], "one hex private key on one line (found 2 lines)"),
        (["resume", "--key-file", "ZERO"], "not hold a valid secp256k1 private key"),
        (["resume"], "give exactly one of --key-file"),
        (["resume", "--typed-data"], "need an explicit --nonce"),
        (["resume", "--signature", "0x12", "--nonce", "abcdefgh"], "needs the --expires"),
        (["resume", "--key-file", "KEY0", "--chain-id", "base"], "invalid signing domain"),
        (["resume", "--key-file", "KEY0", "--dao-contract", "0x12"], "invalid signing domain"),
    ],
)
def test_bad_input_is_one_clear_error(argv, needle, keys, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("GOVFLEET_TEST_UNSET_VAR", raising=False)
    monkeypatch.setenv("GOVFLEET_TEST_WRONG_PW", "wrong")
    (tmp_path / "bad.key").write_text("not-a-key\n")
    (tmp_path / "two.key").write_text(f"{KEY0}\n{KEY1}\n")
    (tmp_path / "zero.key").write_text("0x" + "00" * 32)
    subst = {
        "KEY0": keys["k0"],
        "KS": keys["k1_keystore"],
        "BAD": str(tmp_path / "bad.key"),
        "TWO": str(tmp_path / "two.key"),
        "ZERO": str(tmp_path / "zero.key"),
    }
    code, out, err = sign(capsys, *[subst.get(a, a) for a in argv])
    assert code == 2 and out == ""
    assert err.startswith("govfleet sign: error:") and needle in err, err
    assert KEY0[2:] not in err and KEY1[2:] not in err  # never echoes a key


def test_add_to_refuses_a_different_reason(keys, capsys, tmp_path):
    _, out, _ = sign(capsys, "pause", "--key-file", keys["k0"], "--reason", "one", "--json")
    path = tmp_path / "pause.json"
    path.write_text(out)
    code, _, err = sign(capsys, "pause", "--key-file", keys["k1"], "--reason", "two", "--add-to", str(path))
    assert code == 2 and "every admin must sign the same reason" in err
    path.write_text("{}")
    code, _, err = sign(capsys, "pause", "--key-file", keys["k1"], "--add-to", str(path))
    assert code == 2 and "not a request body with an 'authorization' field" in err

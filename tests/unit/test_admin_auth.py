"""EIP-191 admin authorization: canonical message, tokens, and every rejection code.

The keys are the well-known PUBLIC Hardhat/Anvil development accounts (test-only, of no
value); accounts 0 and 1 are the admins in the example .cogni/repo-spec.yaml."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime, timedelta, timezone

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from govfleet.domain.admin_auth import (
    AuthorizationError,
    VerifiedSignature,
    address_of,
    canonical_message,
    expires_in,
    parse_authorizations,
    prune_used_nonces,
    recover_signer,
    sign_authorization,
    verify_admin_action,
)

# Hardhat dev accounts 0, 1, 2 (public test keys).
KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KEY1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
KEY2 = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
ADDR0 = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
ADDR1 = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
ADDR2 = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"
ADMINS = ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]

NOW = datetime(2025, 11, 16, 10, 0, 0, tzinfo=UTC)
GID = "governance-guardian"
REASON = "Manual intervention required"


def token(key=KEY0, *, action="pause", guardian=GID, reason=REASON, ttl=600, nonce="nonce-0001", now=NOW):
    return sign_authorization(
        key, action=action, guardian_id=guardian, reason=reason, expires_at=now + timedelta(seconds=ttl), nonce=nonce
    )


def verify(tokens, *, action="pause", guardian=GID, reason=REASON, now=NOW, used=frozenset(), quorum=1, **kw):
    return verify_admin_action(
        tokens,
        action=action,
        guardian_id=guardian,
        reason=reason,
        now=now,
        admins=ADMINS,
        used_nonces=used,
        quorum=quorum,
        **kw,
    )


def rejected(code, tokens, **kw) -> AuthorizationError:
    with pytest.raises(AuthorizationError) as ei:
        verify(tokens, **kw)
    assert ei.value.code == code, ei.value.message
    return ei.value


def test_canonical_message_is_stable_and_documented():
    msg = canonical_message(
        action="pause",
        guardian_id=GID,
        nonce="6f1c0e2a9b7d4c31",
        expires_at=datetime(2025, 11, 16, 10, 10, 0, 999_000, tzinfo=UTC),
        reason="Manual intervention required",
    )
    assert msg == (
        "governance-fleet admin authorization\n"
        "action: pause\n"
        "guardian: governance-guardian\n"
        "nonce: 6f1c0e2a9b7d4c31\n"
        "expires: 2025-11-16T10:10:00Z (1763287800)\n"
        "reason: Manual intervention required"
    )
    # Same instant in another zone gives the same message.
    other = canonical_message(
        action="pause",
        guardian_id=GID,
        nonce="6f1c0e2a9b7d4c31",
        expires_at=datetime(2025, 11, 16, 11, 10, tzinfo=timezone(timedelta(hours=1))),
        reason=REASON,
    )
    assert other == msg


@pytest.mark.parametrize(
    "kw, needle",
    [
        ({"action": "unpause"}, "action must be one of pause, resume"),
        ({"guardian_id": ""}, "guardian_id"),
        ({"nonce": "short"}, "nonce must be 8 to 64"),
        ({"nonce": "has.dot.1234"}, "nonce must be 8 to 64"),
        ({"expires_at": datetime(2025, 1, 1)}, "timezone-aware"),
    ],
)
def test_canonical_message_refuses_bad_fields(kw, needle):
    args = dict(action="pause", guardian_id=GID, nonce="abcdefgh", expires_at=NOW, reason="")
    args.update(kw)
    with pytest.raises(ValueError, match=needle):
        canonical_message(**args)


def test_valid_signature_verifies_and_is_plain_personal_sign():
    t = token()
    nonce, exp, sig = t.split(".")
    assert nonce == "nonce-0001" and int(exp) == int((NOW + timedelta(seconds=600)).timestamp())
    assert sig.startswith("0x") and len(sig) == 132
    assert json.loads(json.dumps({"authorization": t}))["authorization"] == t
    out = verify([t])
    assert out == [VerifiedSignature(signer=ADDR0, nonce="nonce-0001", expires_at=NOW + timedelta(seconds=600))]
    # Any wallet's personal_sign over the canonical message gives a token that verifies.
    msg = canonical_message(
        action="pause", guardian_id=GID, nonce="wallet-nonce-1", expires_at=NOW + timedelta(seconds=60), reason=REASON
    )
    s = Account.sign_message(encode_defunct(text=msg), KEY1).signature.hex()
    wallet_token = f"wallet-nonce-1.{int(NOW.timestamp()) + 60}.0x{s.removeprefix('0x')}"
    assert verify([wallet_token])[0].signer == ADDR1


def test_signature_with_v_0_or_1_is_accepted():
    t = token()
    nonce, exp, sig = t.split(".")
    v = int(sig[-2:], 16)
    low = f"{nonce}.{exp}.{sig[:-2]}{v - 27:02x}"
    assert verify([low])[0].signer == ADDR0


def test_resume_with_empty_reason():
    t = token(action="resume", reason="")
    assert verify([t], action="resume", reason="")[0].signer == ADDR0


def test_expired():
    t = token(ttl=60)
    err = rejected("expired", [t], now=NOW + timedelta(seconds=61))
    assert "expired at 2025-11-16T10:01:00Z" in err.message
    rejected("expired", [t], now=NOW + timedelta(seconds=60))  # at the expiry itself
    assert verify([t], now=NOW + timedelta(seconds=59))


def test_expiry_too_far_in_the_future():
    err = rejected("expired", [token(ttl=901)])
    assert "more than the 900 s allowed" in err.message
    assert verify([token(ttl=900)])
    assert verify([token(ttl=3000)], max_age_seconds=3600)


def test_replayed_nonce():
    t = token()
    err = rejected("replayed", [t], used={"nonce-0001"})
    assert "nonce-0001 was already used" in err.message


def test_same_nonce_twice_in_one_call():
    a = token(KEY0, nonce="same-nonce")
    b = token(KEY1, nonce="same-nonce")
    err = rejected("replayed", [a, b], quorum=2)
    assert "appears twice" in err.message


@pytest.mark.parametrize(
    "bad, needle",
    [
        ("admin_signature", "is not of the form"),
        ("", "is not of the form"),
        ("a.b", "is not of the form"),
        ("bad nonce!.1763287800.0x" + "00" * 65, "nonce"),
        ("nonce-0001.soon.0x" + "00" * 65, "expiry 'soon' is not Unix seconds"),
        ("nonce-0001.1763287800.0x1234", "130 hex digits"),
        ("nonce-0001.999999999999.0x" + "00" * 65, "is not Unix seconds"),
        ("nonce-0001.1763287800." + "ab" * 65, "130 hex digits"),
        ("nonce-0001.1763287800.0x" + "zz" * 65, "130 hex digits"),
    ],
)
def test_malformed_tokens(bad, needle):
    err = rejected("malformed", [bad])
    assert needle in err.message


def test_unrecoverable_signature_is_malformed():
    t = token()
    nonce, exp, sig = t.split(".")
    bad_v = f"{nonce}.{exp}.{sig[:-2]}05"
    assert "cannot be recovered" in rejected("malformed", [bad_v]).message
    zero = f"{nonce}.{exp}.0x" + "00" * 64 + "1b"
    rejected("malformed", [zero])


def test_no_authorization_is_malformed():
    rejected("malformed", [])
    rejected("malformed", "   ")


def test_foreign_signer():
    err = rejected("foreign", [token(KEY2)])
    assert ADDR2 in err.message and "not an admin" in err.message


@pytest.mark.parametrize(
    "kw",
    [
        {"action": "resume"},
        {"guardian": "governance-guardian-other"},
        {"reason": "Something else"},
        {"reason": REASON + " "},
    ],
)
def test_signature_for_another_action_guardian_or_reason_is_foreign(kw):
    t = token()  # signed for pause / governance-guardian / REASON
    rejected("foreign", [t], **kw)


def test_tampered_expiry_or_nonce_is_foreign():
    t = token()
    nonce, exp, sig = t.split(".")
    rejected("foreign", [f"{nonce}.{int(exp) + 1}.{sig}"])
    rejected("foreign", [f"nonce-0002.{exp}.{sig}"])


def test_flipped_signature_byte_is_foreign_or_malformed():
    t = token()
    nonce, exp, sig = t.split(".")
    flipped = sig[:10] + ("0" if sig[10] != "0" else "1") + sig[11:]
    with pytest.raises(AuthorizationError) as ei:
        verify([f"{nonce}.{exp}.{flipped}"])
    assert ei.value.code in ("foreign", "malformed")


def test_quorum_of_distinct_admins():
    a = token(KEY0, nonce="nonce-a-0001", action="resume", reason="")
    b = token(KEY1, nonce="nonce-b-0001", action="resume", reason="")
    out = verify([a, b], action="resume", reason="", quorum=2)
    assert [v.signer for v in out] == [ADDR0, ADDR1]


def test_quorum_with_duplicate_signer():
    a = token(KEY0, nonce="nonce-a-0001")
    a2 = token(KEY0, nonce="nonce-a-0002")
    err = rejected("quorum", [a, a2], quorum=2)
    assert "needs 2 distinct admin signatures, got 1" in err.message
    assert "2 signatures from 1 admin" in err.message
    err = rejected("quorum", [a], quorum=2)
    assert "got 1" in err.message


def test_one_bad_token_rejects_the_whole_call():
    a = token(KEY0, nonce="nonce-a-0001")
    foreign = token(KEY2, nonce="nonce-c-0001")
    rejected("foreign", [a, foreign], quorum=1)


def test_parse_authorizations_accepts_joined_and_listed_tokens():
    a = token(KEY0, nonce="nonce-a-0001")
    b = token(KEY1, nonce="nonce-b-0001")
    assert parse_authorizations(f"{a} {b}") == [a, b]
    assert parse_authorizations(f"{a},{b}") == [a, b]
    assert parse_authorizations([a, f" {b}\n"]) == [a, b]
    assert parse_authorizations(None) == []
    assert len(verify(f"{a}, {b}", quorum=2)) == 2
    with pytest.raises(AuthorizationError) as ei:
        parse_authorizations([a, 5])
    assert ei.value.code == "malformed"


def test_naive_now_is_a_programming_error():
    with pytest.raises(ValueError, match="timezone-aware"):
        verify([token()], now=datetime(2025, 11, 16, 10, 0))


def test_error_is_picklable_and_serialisable():
    err = AuthorizationError("expired", "x expired")
    again = pickle.loads(pickle.dumps(err))
    assert (again.code, again.message, str(again)) == ("expired", "x expired", "x expired")
    assert err.to_dict() == {"code": "expired", "message": "x expired"}
    with pytest.raises(ValueError):
        AuthorizationError("nope", "x")


def test_helpers():
    assert address_of(KEY0) == ADDR0
    assert address_of(bytes.fromhex(KEY1[2:])) == ADDR1
    with pytest.raises(ValueError, match="invalid private key"):
        address_of("0x1234")
    with pytest.raises(ValueError, match="invalid private key"):
        sign_authorization("nothex", action="pause", guardian_id=GID, reason="", expires_at=NOW, nonce="abcdefgh")
    assert expires_in(NOW.replace(microsecond=500), 600) == NOW + timedelta(seconds=600)
    nonces = {"old-nonce-1": NOW - timedelta(seconds=1), "new-nonce-1": NOW + timedelta(seconds=1)}
    assert prune_used_nonces(nonces, NOW) == {"new-nonce-1": NOW + timedelta(seconds=1)}


def test_recover_signer_matches_eth_account():
    for i, key in enumerate([KEY0, KEY1, KEY2]):
        msg = f"message {i}\nwith ünïcode and two lines"
        sig = Account.sign_message(encode_defunct(text=msg), key).signature
        assert (
            recover_signer(msg, bytes(sig))
            == Account.recover_message(encode_defunct(text=msg), signature=sig).lower()
            == address_of(key)
        )


def test_out_of_range_r_or_s_is_malformed():
    t = token()
    nonce, exp, sig = t.split(".")
    n_hex = "ff" * 32  # above the curve order
    rejected("malformed", [f"{nonce}.{exp}.0x{n_hex}{sig[66:]}"])
    rejected("malformed", [f"{nonce}.{exp}.0x{sig[2:66]}{n_hex}{sig[-2:]}"])

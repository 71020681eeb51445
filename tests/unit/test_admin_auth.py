"""EIP-712 admin authorization: typed data, tokens, every rejection code, the request body
check shared by HTTP, signals and updates, and the EIP-191 scheme kept for replayed runs.

The keys are the well-known PUBLIC Hardhat/Anvil development accounts (test-only, of no
value); accounts 0 and 1 are the admins in the example .cogni/repo-spec.yaml."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

from govfleet.domain.admin_auth import (
    AuthorizationError,
    VerifiedSignature,
    expires_in,
    parse_admin_body,
    parse_authorizations,
    prune_used_nonces,
    verify_admin_action,
)
from govfleet.domain.admin_signing import (
    MESSAGE_TYPES,
    GovernanceApproval,
    SigningDomain,
    address_of,
    legacy_message,
    recover_digest_signer,
    sign_authorization,
    signing_digest,
    typed_data,
)

# Hardhat dev accounts 0, 1, 2 (public test keys).
KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KEY1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
KEY2 = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
ADDR0 = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
ADDR1 = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
ADDR2 = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"
ADMINS = ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]
CONTRACT = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
DOMAIN = SigningDomain(name="cogni-demo", chain_id="8453", verifying_contract=CONTRACT)

NOW = datetime(2025, 11, 16, 10, 0, 0, tzinfo=UTC)
GID = "governance-guardian"
REASON = "Manual intervention required"


def token(
    key=KEY0, *, action="pause", guardian=GID, reason=REASON, ttl=600, nonce="nonce-0001", now=NOW, domain=DOMAIN
):
    return sign_authorization(
        key,
        domain=domain,
        action=action,
        guardian_id=guardian,
        reason=reason,
        expires_at=now + timedelta(seconds=ttl),
        nonce=nonce,
    )


def verify(
    tokens, *, action="pause", guardian=GID, reason=REASON, now=NOW, used=frozenset(), quorum=1, domain=DOMAIN, **kw
):
    return verify_admin_action(
        tokens,
        domain=domain,
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


def test_typed_data_is_what_a_wallet_shows():
    typed = typed_data(DOMAIN, action="pause", guardian_id=GID, reason=REASON, nonce="6f1c0e2a9b7d4c31", expires_at=NOW)
    assert typed == {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "AdminAction": MESSAGE_TYPES,
        },
        "primaryType": "AdminAction",
        "domain": {"name": "cogni-demo", "version": "1", "chainId": 8453, "verifyingContract": CONTRACT},
        "message": {
            "action": "pause",
            "guardianId": GID,
            "reason": REASON,
            "nonce": "6f1c0e2a9b7d4c31",
            "expiry": 1763287200,
        },
    }
    assert json.loads(json.dumps(typed)) == typed  # what `govfleet sign --typed-data` prints


@pytest.mark.parametrize(
    "domain",
    [
        DOMAIN,
        SigningDomain(name="cogni-demo", chain_id=8453),
        SigningDomain(name="other-dao", version="2"),
        SigningDomain(),
    ],
)
def test_digest_and_signature_equal_eth_accounts(domain):
    typed = typed_data(
        domain, action="resume", guardian_id=GID, reason="ünïcode\nreason", nonce="abcdefgh", expires_at=NOW
    )
    signed = Account.sign_message(encode_typed_data(full_message=typed), KEY1)
    assert signing_digest(typed) == bytes(signed.message_hash)
    assert recover_digest_signer(signing_digest(typed), bytes(signed.signature)) == ADDR1
    tok = token(KEY1, action="resume", reason="ünïcode\nreason", nonce="abcdefgh", ttl=0, domain=domain)
    assert tok == f"abcdefgh.{int(NOW.timestamp())}.0x{bytes(signed.signature).hex()}"


def test_message_keys_must_be_exact():
    typed = typed_data(DOMAIN, action="pause", guardian_id=GID, reason=REASON, nonce="abcdefgh", expires_at=NOW)
    extra = {**typed, "message": {**typed["message"], "admin": True}}
    with pytest.raises(ValueError, match="extra: \\['admin'\\]"):
        signing_digest(extra)
    missing = {**typed, "message": {k: v for k, v in typed["message"].items() if k != "reason"}}
    with pytest.raises(ValueError, match="missing: \\['reason'\\]"):
        signing_digest(missing)
    with pytest.raises(ValueError, match="unsigned 256-bit"):
        signing_digest({**typed, "message": {**typed["message"], "expiry": "soon"}})
    with pytest.raises(ValueError, match="AdminAction type must be exactly"):
        signing_digest({**typed, "types": {**typed["types"], "AdminAction": MESSAGE_TYPES[:-1]}})


def test_domain_takes_a_chain_id_string_and_checks_the_contract():
    assert SigningDomain(chain_id="8453").chain_id == 8453
    assert SigningDomain(verifying_contract=CONTRACT.upper().replace("0X", "0x")).verifying_contract == CONTRACT
    with pytest.raises(ValueError, match="is not an address"):
        SigningDomain(verifying_contract="0x1234")
    with pytest.raises(ValueError):
        SigningDomain(chain_id="base")


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
def test_typed_data_refuses_bad_fields(kw, needle):
    args = dict(action="pause", guardian_id=GID, nonce="abcdefgh", expires_at=NOW, reason="")
    args.update(kw)
    with pytest.raises(ValueError, match=needle):
        typed_data(DOMAIN, **args)


def test_valid_signature_verifies_and_any_wallet_can_make_one():
    t = token()
    nonce, exp, sig = t.split(".")
    assert nonce == "nonce-0001" and int(exp) == int((NOW + timedelta(seconds=600)).timestamp())
    assert sig.startswith("0x") and len(sig) == 132
    assert json.loads(json.dumps({"authorization": t}))["authorization"] == t
    out = verify([t])
    assert out == [VerifiedSignature(signer=ADDR0, nonce="nonce-0001", expires_at=NOW + timedelta(seconds=600))]
    # A wallet's eth_signTypedData_v4 over the typed data gives a token that verifies.
    typed = typed_data(
        DOMAIN,
        action="pause",
        guardian_id=GID,
        nonce="wallet-nonce-1",
        expires_at=NOW + timedelta(seconds=60),
        reason=REASON,
    )
    s = Account.sign_typed_data(KEY1, full_message=typed).signature.hex()
    wallet_token = f"wallet-nonce-1.{int(NOW.timestamp()) + 60}.0x{s.removeprefix('0x')}"
    assert verify([wallet_token])[0].signer == ADDR1


@pytest.mark.parametrize(
    "other",
    [
        SigningDomain(name="another-dao", chain_id=8453, verifying_contract=CONTRACT),
        SigningDomain(name="cogni-demo", chain_id=1, verifying_contract=CONTRACT),
        SigningDomain(name="cogni-demo", chain_id=8453, verifying_contract="0x" + "11" * 20),
        SigningDomain(name="cogni-demo", version="2", chain_id=8453, verifying_contract=CONTRACT),
        SigningDomain(name="cogni-demo"),
    ],
)
def test_signature_for_another_dao_chain_or_contract_is_foreign(other):
    err = rejected("foreign", [token()], domain=other)
    assert "another DAO, chain, guardian" in err.message
    assert verify([token(domain=other)], domain=other)[0].signer == ADDR0


def test_high_s_signature_is_malformed():
    nonce, exp, sig = token().split(".")
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    r, s, v = sig[2:66], int(sig[66:130], 16), int(sig[130:], 16)
    flipped = f"{nonce}.{exp}.0x{r}{n - s:064x}{55 - v:02x}"  # the same signature's other encoding (27 <-> 28)
    assert "upper half" in rejected("malformed", [flipped]).message


def test_legacy_eip191_tokens_verify_only_with_the_legacy_scheme():
    expires_at = NOW + timedelta(seconds=600)
    message = legacy_message(action="pause", guardian_id=GID, nonce="legacy-0001", expires_at=expires_at, reason=REASON)
    assert message == (
        "governance-fleet admin authorization\n"
        "action: pause\n"
        "guardian: governance-guardian\n"
        "nonce: legacy-0001\n"
        "expires: 2025-11-16T10:10:00Z (1763287800)\n"
        "reason: Manual intervention required"
    )
    sig = Account.sign_message(encode_defunct(text=message), KEY0).signature.hex().removeprefix("0x")
    legacy = f"legacy-0001.{int(expires_at.timestamp())}.0x{sig}"
    assert verify([legacy], scheme="eip191")[0].signer == ADDR0
    rejected("foreign", [legacy])  # not an EIP-712 signature
    rejected("foreign", [token()], scheme="eip191")


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
        {"guardian": "governance-guardian-treasury"},
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
        sign_authorization(
            "nothex", domain=DOMAIN, action="pause", guardian_id=GID, reason="", expires_at=NOW, nonce="abcdefgh"
        )
    assert expires_in(NOW.replace(microsecond=500), 600) == NOW + timedelta(seconds=600)
    nonces = {"old-nonce-1": NOW - timedelta(seconds=1), "new-nonce-1": NOW + timedelta(seconds=1)}
    assert prune_used_nonces(nonces, NOW) == {"new-nonce-1": NOW + timedelta(seconds=1)}


def test_recovery_matches_eth_account():
    for i, key in enumerate([KEY0, KEY1, KEY2]):
        typed = typed_data(
            DOMAIN, action="pause", guardian_id=f"g-{i}", reason=f"r {i}", nonce="abcdefgh", expires_at=NOW
        )
        signed = Account.sign_typed_data(key, full_message=typed)
        recovered = Account.recover_message(encode_typed_data(full_message=typed), signature=signed.signature)
        assert (
            recover_digest_signer(signing_digest(typed), bytes(signed.signature))
            == recovered.lower()
            == address_of(key)
        )


def test_out_of_range_r_or_s_is_malformed():
    t = token()
    nonce, exp, sig = t.split(".")
    n_hex = "ff" * 32  # above the curve order
    rejected("malformed", [f"{nonce}.{exp}.0x{n_hex}{sig[66:]}"])
    rejected("malformed", [f"{nonce}.{exp}.0x{sig[2:66]}{n_hex}{sig[-2:]}"])


@pytest.mark.parametrize(
    "body, problem",
    [
        (123, "it must be a JSON object with reason, authorization, got int"),
        ([], "got list"),
        (None, "got null"),
        ("str", "got str"),
        ({"reason": "r"}, "authorization is required"),
        ({"reason": "r", "authorization": ""}, "authorization is required"),
        ({"reason": "r", "authorization": []}, "authorization is required"),
        ({"reason": " ", "authorization": "t"}, "reason is required for a pause"),
        ({"reason": 5, "authorization": "t"}, "reason must be a string, got int"),
        ({"reason": "r", "authorization": 5}, "a string or a list of strings"),
        ({"reason": "r", "authorization": ["a", 5]}, "a string or a list of strings"),
        ({"reason": "r", "authorization": "t", "admin": True}, "unknown field 'admin'"),
        ({"reason": "x" * 2001, "authorization": "t"}, "2001 characters long, at most 2000"),
        ({"reason": "r", "authorization": " ".join(["t"] * 17)}, "17 tokens, at most 16"),
        ({"reason": "r", "authorization": "t" * 9000}, "longer than 8192 characters"),
    ],
)
def test_pause_bodies_are_checked_field_by_field(body, problem):
    with pytest.raises(AuthorizationError) as ei:
        parse_admin_body("pause", body)
    assert ei.value.code == "malformed"
    assert ei.value.message.startswith("malformed pause body: ") and problem in ei.value.message


def test_unknown_fields_are_named_briefly():
    body = {"authorization": "t", **{f"k{i}" * 50: 1 for i in range(10_000)}}
    with pytest.raises(AuthorizationError) as ei:
        parse_admin_body("resume", body)
    assert "and 9997 more" in ei.value.message and len(ei.value.message) < 300


def test_good_bodies_are_normalised():
    assert parse_admin_body("pause", {"reason": "r", "authorization": "a b,c"}) == {
        "reason": "r",
        "authorization": ["a", "b", "c"],
    }
    assert parse_admin_body("resume", {"authorization": ["a"]}) == {
        "reason": "",
        "authorization": ["a"],
        "governance_verified": False,
        "governance_approval": None,
    }
    with pytest.raises(AuthorizationError, match="governance_verified must be true or false"):
        parse_admin_body("resume", {"authorization": "a", "governance_verified": "yes"})
    approval = {"reference": "proposal 42", "url": "https://snapshot.example/p/42"}
    parsed = parse_admin_body("resume", {"authorization": "a", "governance_approval": approval})
    assert parsed["governance_approval"] == GovernanceApproval(
        reference="proposal 42", url="https://snapshot.example/p/42"
    )
    for bad, problem in [
        ("yes", "governance_approval must be an object"),
        ({"reference": "p"}, "governance_approval.url: Field required"),
        ({"reference": "", "url": "https://x.example"}, "reference must be 1 to 200"),
        ({"reference": "p", "url": "javascript:alert(1)"}, "url must be an http"),
        ({"reference": "p", "url": "https://x.example", "vote": 1}, "governance_approval.vote"),
    ]:
        with pytest.raises(AuthorizationError, match=problem):
            parse_admin_body("resume", {"authorization": "a", "governance_approval": bad})
    assert parse_admin_body("complete_forensic_audit", {"report": "https://r.example/1", "authorization": "a"}) == {
        "reason": "https://r.example/1",
        "report": "https://r.example/1",
        "authorization": ["a"],
    }
    with pytest.raises(AuthorizationError, match="report is required"):
        parse_admin_body("complete_forensic_audit", {"authorization": "a"})

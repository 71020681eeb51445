"""`POST /api/v1/payments/credits/confirm` over real HTTP, with the fleet's worker, the Temporal dev
server and PostgreSQL (docs/ledger.md):

- only confirmations signed by the payment backend get through (missing, malformed, expired,
  wrong-secret and wrong-body signatures are 401 and write nothing; the previous secret is still
  accepted during a rotation; a server without a secret refuses every confirmation);
- the body is bounded and parsed strictly, after the signature;
- nobody can mint credits: the purchase that once pushed `cogni_system` near the bigint limit is
  now above the per-purchase maximum and refused, and a 1-cent purchase still goes through;
- a conflict (409) says nothing about the stored payment;
- a retry carrying the committed payload gets the committed result while a conflicting request is
  in flight; in a race of two payloads every answer agrees with what was committed;
- `govfleet pay` signs its request.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import LiteralString

import httpx
import psycopg
import pytest

from govfleet.domain.payment_signature import SIGNATURE_HEADER
from tests.conftest import REPO_ROOT
from tests.integration.test_status_support import api_stack, wait_status_ready
from tests.payment_signing import PAY_PATH, PREVIOUS_SECRET, TEST_SECRET, body_bytes, signed, signed_headers

ENVIRON = {"PAYMENT_SIGNING_SECRET": TEST_SECRET, "PAYMENT_SIGNING_SECRET_PREVIOUS": PREVIOUS_SECRET}


@pytest.fixture(scope="module")
def pay_db(make_database) -> str:
    return make_database()


@pytest.fixture(scope="module")
async def stack(dev_env, pay_db, tmp_path_factory):
    async with api_stack(dev_env, pay_db, tmp_path_factory.mktemp("pay"), schedules=[], environ=ENVIRON) as s:
        await wait_status_ready(s)
        yield s


@pytest.fixture
async def http(stack):
    async with httpx.AsyncClient(base_url=stack.url, timeout=40) as client:
        yield client


def rows(url: str, sql: LiteralString, *params) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def payment_count(url: str) -> int:
    return rows(url, "SELECT count(*) FROM payments")[0][0]


def system_balance(url: str) -> int:
    return rows(url, "SELECT balance_credits FROM billing_accounts WHERE id = 'cogni_system'")[0][0]


def error(resp: httpx.Response) -> dict:
    body = resp.json()
    assert set(body) == {"error"}, body
    return body["error"]


async def test_a_signed_purchase_is_confirmed_replayed_and_shown_in_the_status(http, stack):
    before = int((await http.get("/api/v1/governance/status")).json()["systemCredits"])
    payment = {"client_payment_id": "pay-api-1", "user_id": "carol", "amount_usd_cents": 10_000}
    first = await http.post(PAY_PATH, **signed(payment))
    assert first.status_code == 200, first.text
    result = first.json()
    assert (result["user_credits"], result["bonus_credits"], result["replay"]) == (1_000_000_000, 750_000_000, False)
    assert result["system_balance_after"] == before + 750_000_000

    again = await http.post(PAY_PATH, **signed(payment))
    assert again.status_code == 200 and again.json() == {**result, "replay": True}

    # The workflow told the status read model before answering.
    credits = None
    for _ in range(50):
        credits = (await http.get("/api/v1/governance/status")).json()["systemCredits"]
        if credits == str(before + 750_000_000):
            break
        await asyncio.sleep(0.2)
    assert credits == str(before + 750_000_000)


async def test_unsigned_forged_and_stale_confirmations_are_refused_and_write_nothing(http, stack):
    payment = {"client_payment_id": "pay-forged", "user_id": "mallory", "amount_usd_cents": 1_000_000}
    body = body_bytes(payment)
    now = int(time.time())
    cases = {
        "missing": {"Content-Type": "application/json"},
        "malformed": {"Content-Type": "application/json", SIGNATURE_HEADER: "sha256=abc"},
        "mismatch": signed_headers(body, "a-secret-the-server-does-not-know"),
        "expired": signed_headers(body, at=now - 301),
    }
    for reason, headers in cases.items():
        resp = await http.post(PAY_PATH, content=body, headers=headers)
        assert resp.status_code == 401, (reason, resp.text)
        assert error(resp)["code"] == "invalid_signature" and error(resp)["details"] == {"reason": reason}
    # A valid signature over another body does not carry over to this one.
    other = body_bytes({**payment, "amount_usd_cents": 1})
    resp = await http.post(PAY_PATH, content=body, headers=signed_headers(other))
    assert resp.status_code == 401 and error(resp)["details"] == {"reason": "mismatch"}
    # Nothing was written, no workflow ran.
    assert rows(stack.database_url, "SELECT 1 FROM payments WHERE client_payment_id = 'pay-forged'") == []
    with pytest.raises(Exception, match="not found"):
        await stack.client.get_workflow_handle("payment-pay-forged").describe()


async def test_the_previous_secret_is_accepted_during_a_rotation(http):
    payment = {"client_payment_id": "pay-rotated", "user_id": "dave", "amount_usd_cents": 100}
    resp = await http.post(PAY_PATH, **signed(payment, PREVIOUS_SECRET))
    assert resp.status_code == 200, resp.text


async def test_the_body_is_bounded_and_parsed_strictly_after_the_signature(http, stack):
    before = payment_count(stack.database_url)
    deep = b"[" * 100_000 + b"]" * 100_000
    # Unsigned: refused before anything is parsed.
    resp = await http.post(PAY_PATH, content=deep[:16_000], headers={"Content-Type": "application/json"})
    assert resp.status_code == 401
    # Over the limit: refused before it is hashed.
    resp = await http.post(PAY_PATH, content=deep, headers=signed_headers(deep))
    assert resp.status_code == 413 and error(resp)["code"] == "body_too_large"

    def post(raw: bytes, content_type: str = "application/json"):
        return http.post(PAY_PATH, content=raw, headers={**signed_headers(raw), "Content-Type": content_type})

    good = body_bytes({"client_payment_id": "pay-strict", "user_id": "erin", "amount_usd_cents": 100})
    expectations = [
        (post(b"[" * 5_000 + b"]" * 5_000), 400, "body_too_deep"),
        (post(b"{not json"), 400, "invalid_json"),
        (
            post(b'{"client_payment_id":"a","client_payment_id":"b","user_id":"u","amount_usd_cents":1}'),
            422,
            "duplicate_key",
        ),
        (post(b'{"client_payment_id":"p\\u0000","user_id":"u","amount_usd_cents":1}'), 422, "invalid_text"),
        (post(b'{"client_payment_id":"p\\ud800","user_id":"u","amount_usd_cents":1}'), 422, "invalid_text"),
        (post(good, "text/plain"), 415, "unsupported_media_type"),
        (post(b'{"client_payment_id":"p","user_id":"bo\\u200bb","amount_usd_cents":1}'), 422, "validation_error"),
        (post(b'{"client_payment_id":"p","user_id":"u","amount_usd_cents":"1"}'), 422, "validation_error"),
        (post(b'{"client_payment_id":"p","user_id":"u","amount_usd_cents":1,"x":1}'), 422, "validation_error"),
        (post(b"[]"), 422, "validation_error"),
    ]
    for request, status, code in expectations:
        resp = await request
        assert (resp.status_code, error(resp)["code"]) == (status, code), resp.text
        assert len(resp.content) < 2_000  # never an echo of the input
    resp = await post(b'{"client_payment_id":"p","user_id":"bo\\u200bb","amount_usd_cents":1}')
    assert error(resp)["details"][0]["field"] == "body.user_id" and "U+200B" in error(resp)["message"]
    assert payment_count(stack.database_url) == before


async def test_nobody_can_mint_credits_near_the_bigint_limit(http, stack):
    """Once: an unauthenticated purchase of 92,233,720,368,547 cents, then one filling the
    remainder, left `cogni_system` 25,807 credits below the bigint maximum, and every later
    purchase was refused. Now the forged request is a 401, the same amount signed is above the
    per-purchase maximum, and purchases keep working."""
    url = stack.database_url
    huge = {"client_payment_id": "mint-1", "user_id": "mallory", "amount_usd_cents": 92_233_720_368_547}
    before = system_balance(url)
    forged = await http.post(PAY_PATH, content=body_bytes(huge), headers={"Content-Type": "application/json"})
    assert forged.status_code == 401
    refused = await http.post(PAY_PATH, **signed(huge))
    assert refused.status_code == 422, refused.text
    assert "above the per-purchase maximum of 1000000 cents ($10,000.00" in error(refused)["message"]
    just_over = await http.post(
        PAY_PATH, **signed({**huge, "client_payment_id": "mint-2", "amount_usd_cents": 1_000_001})
    )
    assert just_over.status_code == 422
    assert system_balance(url) == before
    assert rows(url, "SELECT 1 FROM users WHERE id = 'mallory'") == []

    cent = await http.post(
        PAY_PATH, **signed({"client_payment_id": "mint-3", "user_id": "frank", "amount_usd_cents": 1})
    )
    assert cent.status_code == 200, cent.text
    assert system_balance(url) == before + 75_000


async def test_a_conflict_says_nothing_about_the_stored_payment(http):
    """Once: replaying someone's payment id with other values answered with their user id and
    amount, and the corrected values then returned their balances."""
    alice = {"client_payment_id": "pay-alice", "user_id": "alice", "amount_usd_cents": 10_000}
    assert (await http.post(PAY_PATH, **signed(alice))).status_code == 200
    for probe in (
        {**alice, "user_id": "x", "amount_usd_cents": 1},
        {**alice, "user_id": "x"},
        {**alice, "amount_usd_cents": 1},
    ):
        resp = await http.post(PAY_PATH, **signed(probe))
        assert resp.status_code == 409, resp.text
        err = error(resp)
        assert err["code"] == "payment_conflict" and err["details"] == {"client_payment_id": "pay-alice"}
        assert err["message"] == (
            "payment 'pay-alice' was already confirmed with a different payload; "
            "a payment id can be confirmed only once"
        )


async def test_a_retry_of_the_committed_payload_gets_the_committed_result_whatever_is_in_flight(http):
    """Once: a retry carrying the committed payload joined a conflicting request's workflow run
    and got its 409 (20 of 20)."""
    committed = {"client_payment_id": "pay-race", "user_id": "grace", "amount_usd_cents": 2_500}
    first = await http.post(PAY_PATH, **signed(committed))
    assert first.status_code == 200
    conflicting = {**committed, "user_id": "mallory", "amount_usd_cents": 1}
    for _ in range(20):
        other = asyncio.create_task(http.post(PAY_PATH, **signed(conflicting)))
        retry = asyncio.create_task(http.post(PAY_PATH, **signed(committed)))
        other_resp, retry_resp = await asyncio.gather(other, retry)
        assert other_resp.status_code == 409, other_resp.text
        assert retry_resp.status_code == 200, retry_resp.text
        assert retry_resp.json() == {**first.json(), "replay": True}


async def test_in_a_race_of_two_payloads_every_answer_agrees_with_what_was_committed(http, stack):
    for i in range(25):
        pid = f"pay-two-{i}"
        a = {"client_payment_id": pid, "user_id": "heidi", "amount_usd_cents": 100}
        b = {"client_payment_id": pid, "user_id": "ivan", "amount_usd_cents": 200}
        answers = await asyncio.gather(*[http.post(PAY_PATH, **signed(p)) for p in (a, b, a, b)])
        [(user, cents)] = rows(
            stack.database_url, "SELECT user_id, amount_usd_cents FROM payments WHERE client_payment_id = %s", pid
        )
        for payload, resp in zip((a, b, a, b), answers, strict=True):
            if (payload["user_id"], payload["amount_usd_cents"]) == (user, cents):
                assert resp.status_code == 200 and resp.json()["user_id"] == user, resp.text
            else:
                assert resp.status_code == 409, resp.text


async def test_a_server_without_a_secret_refuses_every_confirmation(dev_env, make_database, tmp_path):
    url = make_database()
    async with (
        api_stack(dev_env, url, tmp_path, schedules=[], worker=False, start_status=False) as s,
        httpx.AsyncClient(base_url=s.url, timeout=10) as http,
    ):
        payment = {"client_payment_id": "pay-open", "user_id": "judy", "amount_usd_cents": 100}
        for kwargs in (signed(payment), {"json": payment}):
            resp = await http.post(PAY_PATH, **kwargs)
            assert resp.status_code == 403, resp.text
            assert error(resp)["code"] == "payments_disabled"
            assert "PAYMENT_SIGNING_SECRET" in error(resp)["message"]
    assert payment_count(url) == 0


async def test_the_openapi_document_describes_the_signature(http):
    spec = (await http.get("/openapi.json")).json()
    scheme = spec["components"]["securitySchemes"]["PaymentSignature"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", SIGNATURE_HEADER)
    operation = spec["paths"][PAY_PATH]["post"]
    assert {"PaymentSignature": []} in operation["security"]
    assert {"401", "403", "409", "413", "415", "422", "503"} <= set(operation["responses"])
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["user_id"]["pattern"] == "^[!-~]+$" and schema["additionalProperties"] is False


def govfleet_pay(args: list[str], **env_over: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYMENT_", "DATABASE_URL", "TEMPORAL_"))}
    env.update(env_over)
    return subprocess.run(
        [sys.executable, "-m", "govfleet.cli", "pay", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


async def test_govfleet_pay_signs_its_request(stack):
    def run(*args: str, secret: str | None = TEST_SECRET):
        extra = {"PAYMENT_SIGNING_SECRET": secret} if secret else {}
        return asyncio.to_thread(govfleet_pay, ["--api", stack.url, *args], **extra)

    ok = await run("--id", "cli-1", "--user", "kim", "--usd", "100")
    assert ok.returncode == 0, ok.stderr
    result = json.loads(ok.stdout)
    assert (result["user_credits"], result["bonus_credits"], result["replay"]) == (1_000_000_000, 750_000_000, False)
    again = await run("--id", "cli-1", "--user", "kim", "--cents", "10000")
    assert again.returncode == 0 and json.loads(again.stdout)["replay"] is True

    conflict = await run("--id", "cli-1", "--user", "kim", "--cents", "1")
    assert conflict.returncode == 1 and "'cli-1' was already confirmed with a different payload" in conflict.stderr
    assert "kim" not in conflict.stderr and "10000" not in conflict.stderr

    too_large = await run("--id", "cli-2", "--user", "kim", "--usd", "10000.01")
    assert too_large.returncode == 1 and "per-purchase maximum" in too_large.stderr

    bad = await run("--id", "cli-3", "--user", "kim", "--usd", "1.234")
    assert bad.returncode == 1 and "whole number of cents" in bad.stderr

    unsigned = await run("--id", "cli-4", "--user", "kim", "--usd", "1", secret=None)
    assert unsigned.returncode == 2 and "PAYMENT_SIGNING_SECRET is not set" in unsigned.stderr
    wrong = await run("--id", "cli-5", "--user", "kim", "--usd", "1", secret="not-the-servers-secret-at-all")
    assert wrong.returncode == 2 and "does not match" in wrong.stderr
    assert rows(stack.database_url, "SELECT client_payment_id FROM payments WHERE client_payment_id LIKE 'cli-%%'") == [
        ("cli-1",)
    ]

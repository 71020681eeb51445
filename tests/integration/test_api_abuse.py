"""The abuse suite: what an attacker on loopback sends to the API, and what it gets back.

Against a real stack (dev Temporal server in its own namespace, the guardian with its real
activities, PostgreSQL, the API on a free loopback port): each write endpoint × {100k-deep
JSON, over-limit body (declared and chunked), 200k keys, 3,000-deep JSON, many unknown keys
within the limit, lone surrogate, NUL, duplicate keys, wrong content type, bytes that are not
UTF-8} answers the expected 4xx in the one error format, a small body, and the process keeps
serving; a NUL in a query value; fractional vote counts; and the flood of forged pauses (0 events
in the guardian's history, counted in one row, 429 + Retry-After, a real pause right after still
works). Every case comes from its own loopback address (127.0.x.y), as separate clients would.
Payment confirmations are signed (tests/payment_signing.py) so that each body reaches the
parser; an unsigned one is refused before it is parsed.

The admin keys are the public Hardhat development accounts (demo only).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime
from itertools import count

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from govfleet.api import create_app
from govfleet.api.admin_gate import AdminGate
from govfleet.api.edge import MAX_BODY_BYTES
from govfleet.api.routers.payments import PAYMENT_BODY_LIMIT_BYTES
from govfleet.api.server import start_api
from govfleet.domain.admin_signing import SigningDomain
from govfleet.simulator import TrackerSimulator, start_simulator
from tests.integration.guardian_support import (
    ADMIN_0,
    ADMIN_1,
    DEMO_DOMAIN,
    OUTSIDER,
    NotificationRecorder,
    guardian_worker,
    make_config,
    sign,
    start_guardian,
)
from tests.integration.test_status_support import api_stack, seed, unique
from tests.payment_signing import PAY_PATH, signed_headers, signing_environ

GUARDIAN_ID = "governance-guardian"
PUSH = {"Authorization": "Bearer push"}
# The original repo-spec writes the chain id as a string.
SPEC = """
cogni_dao:
  name: cogni-demo
  chain_id: "8453"
  dao_contract: "0x5fbdb2315678afecb367f032d93f642f64180aa3"
guardian:
  admins:
    - "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    - "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    - "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
  resume_quorum: 2
"""
# Hardhat #3 (public): the admin only the replay test signs with, so that the limit it drives its
# signer over is no other test's.
REPLAY_ADMIN = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"
UPDATE_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
}
_addresses = count(1)


def next_source() -> str:
    """A fresh loopback address: each case is a client of its own."""
    n = next(_addresses)
    return f"127.0.{1 + n // 250}.{1 + n % 250}"


@pytest.fixture(scope="module")
async def sim():
    running = await start_simulator(TrackerSimulator(per_request=True))
    running.sim.set_reading(70.5)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture(scope="module")
async def stack(dev_env, make_database, tmp_path_factory, sim):
    url = make_database()
    seed(url, balance=1)
    async with api_stack(
        dev_env,
        url,
        tmp_path_factory.mktemp("abuse"),
        schedules=[],
        extra_spec=SPEC,
        environ={
            "VOTING_TRACKER_URL": sim.url,
            "GUARDIAN_PUSH_TOKEN": "push",
            # Every case is a client of its own: each keeps a row of its own in admin_rejections
            # (the per-minute fold has its own test, on a server of its own).
            "ADMIN_REJECTIONS_SOURCES_PER_MINUTE": "10000",
            **signing_environ(),
        },
    ) as s:
        queue = unique("tq-guardian")
        async with guardian_worker(s.client, queue, s.config, url, NotificationRecorder()):
            handle = await start_guardian(s.client, queue, make_config(s.config, sim, GUARDIAN_ID))
            try:
                yield s, handle
            finally:
                await handle.terminate("test over")


def client_from(url: str, source: str | None = None) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=source or next_source())
    return httpx.AsyncClient(base_url=url, transport=transport, timeout=30)


class _RawResponse(asyncio.Protocol):
    """Keeps every byte the server sends, also when it then resets the connection (it closes
    right after its 413 while our body is still arriving, and the RST must not cost us the
    answer that came before it); pauses our writes as the transport asks (what drain does)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.changed = asyncio.Event()
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost = False

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.changed.set()

    def eof_received(self) -> bool:
        self.lost = True
        self.changed.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.writable.set()
        self.changed.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def status_line_seen(self) -> bool:
        return b"\r\n" in self.data

    def parsed(self) -> tuple[int, dict[str, str], bytes] | None:
        head, sep, rest = bytes(self.data).partition(b"\r\n\r\n")
        if not sep:
            return None
        status_line, *lines = head.decode().split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if len(rest) < length:
            return None
        return int(status_line.split()[1]), headers, rest[:length]


async def raw_post(url: str, path: str, headers: dict[str, str], body: bytes, *, chunked: bool = False):
    """POST over a plain socket, body in 64 KiB pieces, stopping when the server answers or closes:
    returns (status, response headers, response body, body bytes sent)."""
    host, port = url.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    transport, answer = await loop.create_connection(_RawResponse, host, int(port), local_addr=(next_source(), 0))
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
    transport.write(("\r\n".join(head) + "\r\n\r\n").encode())
    sent = 0
    for i in range(0, len(body), 65536):
        await asyncio.sleep(0.002)
        await answer.writable.wait()
        if answer.status_line_seen() or answer.lost:
            break
        piece = body[i : i + 65536]
        transport.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        sent += len(piece)
    else:
        if chunked and not answer.lost:
            transport.write(b"0\r\n\r\n")

    async def whole_answer() -> tuple[int, dict[str, str], bytes]:
        while (got := answer.parsed()) is None:
            if answer.lost:
                raise AssertionError(f"the connection ended before a whole answer: {bytes(answer.data[:300])!r}")
            answer.changed.clear()
            await answer.changed.wait()
        return got

    try:
        status, response_headers, payload = await asyncio.wait_for(whole_answer(), 20)
    finally:
        transport.close()
    return status, response_headers, payload, sent


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


def many_keys(n: int) -> bytes:
    return json.dumps({f"key{i:06d}": i for i in range(n)}).encode()


def reading(**over) -> dict:
    body = {
        "holder_control_percentage": 70.5,
        "total_votes": 10000,
        "holder_votes": 7050,
        "seller_votes": 2950,
        "last_updated": datetime.now(UTC).isoformat(),
    }
    return {**body, **over}


# What each write endpoint gets for each abusive body (same rules everywhere: govfleet/api/body.py).
ENDPOINTS = {
    "/guardian/pause": ({}, b'{"reason": "r", "reason": "s", "authorization": "t"}'),
    "/guardian/resume": ({}, b'{"authorization": "t", "authorization": "u"}'),
    "/guardian/readings": (PUSH, b'{"total_votes": 1, "total_votes": 2}'),
    PAY_PATH: ({}, b'{"client_payment_id": "p1", "user_id": "alice", "user_id": "mallory", "amount_usd_cents": 1}'),
}


def headers_for(path: str, body: bytes, content_type: str | None = "application/json") -> dict[str, str]:
    """The endpoint's credentials (a payment confirmation is signed over its exact bytes)."""
    headers = dict(ENDPOINTS[path][0])
    if path == PAY_PATH:
        headers.update(signed_headers(body))
    if content_type:
        headers["Content-Type"] = content_type
    else:
        headers.pop("Content-Type", None)
    return headers


CASES = {
    # name: (body, content type, status, code)
    "3,000-deep JSON": (deep(3000), "application/json", 400, "body_too_deep"),
    "30,000-deep JSON within the size limit": (deep(30_000), "application/json", 400, "body_too_deep"),
    "lone surrogate": (b'{"reason": "\\ud800", "authorization": "t"}', "application/json", 422, "invalid_text"),
    "NUL": (b'{"reason": "a\\u0000b", "authorization": "t"}', "application/json", 422, "invalid_text"),
    "not UTF-8": (b'{"reason": "\xff\xfe"}', "application/json", 400, "invalid_json"),
    "not JSON": (b'{"reason": ', "application/json", 400, "invalid_json"),
    "wrong content type": (b'{"reason": "r"}', "text/plain", 415, "unsupported_media_type"),
    "form content type": (b"reason=r", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    "no content type": (b'{"reason": "r"}', None, 415, "unsupported_media_type"),
}


async def alive(http: httpx.AsyncClient) -> None:
    resp = await http.get("/health")
    assert resp.status_code in (200, 503) and resp.json()["database"] == "connected"


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("path", list(ENDPOINTS))
async def test_each_write_endpoint_refuses_abusive_json(stack, path, case):
    s, _ = stack
    body, content_type, status, code = CASES[case]
    if path == PAY_PATH and len(body) > PAYMENT_BODY_LIMIT_BYTES:
        status, code = 413, "body_too_large"  # a confirmation has a tighter limit of its own
    async with client_from(s.url) as http:
        resp = await http.post(path, content=body, headers=headers_for(path, body, content_type))
        assert resp.status_code == status, resp.text
        err = resp.json()["error"]
        assert err["code"] == code and err["message"], err
        assert len(resp.content) < 2_000
        await alive(http)


@pytest.mark.parametrize("path", list(ENDPOINTS))
async def test_duplicate_keys_are_refused(stack, path):
    s, _ = stack
    body = ENDPOINTS[path][1]
    async with client_from(s.url) as http:
        resp = await http.post(path, content=body, headers=headers_for(path, body))
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "duplicate_key", resp.text
        await alive(http)


async def test_an_unsigned_payment_confirmation_is_refused_before_it_is_parsed(stack):
    s, _ = stack
    async with client_from(s.url) as http:
        for body in (deep(3000), b'{"a": "\\ud800"}', b"{", ENDPOINTS[PAY_PATH][1]):
            resp = await http.post(PAY_PATH, content=body, headers={"Content-Type": "application/json"})
            assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_signature", resp.text
        await alive(http)


OVER_LIMIT = {
    "100k-deep JSON (200 KB)": deep(100_000),
    "200k keys (3.6 MB)": many_keys(200_000),
    "11 MB": b'{"reason": "' + b"x" * 11_000_000 + b'"}',
}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("case", list(OVER_LIMIT))
@pytest.mark.parametrize("path", list(ENDPOINTS))
async def test_over_limit_bodies_get_413_before_they_are_read(stack, path, case, chunked):
    s, _ = stack
    body = OVER_LIMIT[case]
    headers = {k: v for k, v in headers_for(path, body).items() if k != "Content-Type"}
    status, resp_headers, payload, sent = await raw_post(s.url, path, headers, body, chunked=chunked)
    assert status == 413, payload
    err = json.loads(payload)["error"]
    assert err["code"] == "body_too_large" and err["details"] == {"limit_bytes": MAX_BODY_BYTES}
    assert resp_headers["connection"] == "close" and len(payload) < 500
    if chunked:
        assert sent <= MAX_BODY_BYTES + 2 * 65536  # stopped reading right after the limit
    else:
        assert "Content-Length" in err["message"]  # refused on the declared length alone
    async with client_from(s.url) as http:
        await alive(http)


async def test_many_keys_within_the_limit_get_a_small_answer(stack):
    """Before: a 3.6 MB body of 200k keys got an 18.5 MB 422 after ~4 s. Within every limit
    (800 keys) the answer names a few problems and says how many more there are."""
    s, _ = stack
    body = many_keys(800)
    assert len(body) < PAYMENT_BODY_LIMIT_BYTES < MAX_BODY_BYTES
    async with client_from(s.url) as http:
        for path in ENDPOINTS:
            resp = await http.post(path, content=body, headers=headers_for(path, body))
            assert resp.status_code == 422, resp.text
            assert len(resp.content) < 3_000, (path, len(resp.content))
        await alive(http)


async def test_oversized_headers_get_431(stack):
    s, _ = stack
    async with client_from(s.url) as http:
        resp = await http.get("/health", headers={"X-Padding": "a" * 20_000})
        assert resp.status_code == 431 and resp.json()["error"]["code"] == "headers_too_large", resp.text
        await alive(http)


async def test_nul_in_a_query_value_is_a_4xx_not_a_database_error(stack):
    s, _ = stack
    async with client_from(s.url) as http:
        resp = await http.get("/guardian/events", params={"event_type": "pause\x00"})
        assert resp.status_code == 422, resp.text
        assert (
            resp.json()["error"]["code"] == "invalid_query" and "control character" in resp.json()["error"]["message"]
        )
        resp = await http.get("/guardian/events?event_type=%ff")
        assert resp.status_code == 422 and "not UTF-8" in resp.json()["error"]["message"]
        invisible = await http.get("/guardian/events", params={"event_type": "pau\u200bse"})
        assert invisible.status_code == 422 and invisible.json()["error"]["code"] == "validation_error"
        assert (await http.get("/guardian/events", params={"event_type": "pause"})).status_code == 200


async def test_fractional_vote_counts_never_break_the_governance_answer(stack, sim):
    s, _ = stack
    async with client_from(s.url) as http:
        fractional = reading(total_votes=10000.5, holder_votes=7050.5, seller_votes=2950)
        resp = await http.post("/guardian/readings", json=fractional, headers=PUSH)
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_reading", resp.text
        # Delivered anyway, and audited by the guardian as an invalid reading.
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            events = (await http.get("/guardian/events", params={"event_type": "tracker_error"})).json()["events"]
            if any("whole number" in (e["details"] or "") for e in events):
                break
            assert asyncio.get_running_loop().time() < deadline, events
            await asyncio.sleep(0.2)
        gov = await http.get("/guardian/governance")
        assert gov.status_code == 200, gov.text
        assert gov.json()["total_votes"] == 10000  # the last valid reading
        # A whole count written as a float is a whole count.
        whole = await http.post(
            "/guardian/readings", json=reading(total_votes=10000.0, holder_votes=7050.0), headers=PUSH
        )
        assert whole.status_code == 202, whole.text


async def history_admin_events(handle) -> int:
    n = 0
    async for event in handle.fetch_history_events():
        n += event.event_type in UPDATE_EVENTS
    return n


def rejection_rows(database_url: str, source: str) -> list[dict]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT * FROM admin_rejections WHERE guardian_id = %s AND source = %s", (GUARDIAN_ID, source)
        ).fetchall()


def admin_rejected_events(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM governance_events WHERE guardian_id = %s AND event_type = 'admin_rejected'",
            (GUARDIAN_ID,),
        ).fetchone()[0]


async def test_a_flood_of_forged_pauses_costs_nothing_and_a_real_pause_still_works(stack):
    """Before: 300 forged pauses in 8 s wrote 297 admin_rejected rows (325 KB of attacker text)
    and pushed the guardian into continue-as-new."""
    s, handle = stack
    source = next_source()
    before_events = await history_admin_events(handle)
    before_rows = admin_rejected_events(s.database_url)
    statuses: list[int] = []
    retry_after: set[str] = set()
    async with client_from(s.url, source) as http:
        now = datetime.now(UTC)
        for i in range(300):
            forged = sign(OUTSIDER, "pause", now, reason="x" * 1000 + str(i), guardian_id=GUARDIAN_ID)
            resp = await http.post("/guardian/pause", json={"reason": "x" * 1000 + str(i), "authorization": forged})
            statuses.append(resp.status_code)
            assert len(resp.content) < 1_500
            if resp.status_code == 429:
                retry_after.add(resp.headers["retry-after"])
                assert resp.json()["error"]["details"]["code"] == "foreign"
        assert statuses[:10] == [403] * 10 and set(statuses[10:]) == {429}, statuses
        assert retry_after and all(int(v) >= 1 for v in retry_after)
        # A real pause from the same address goes through at once.
        reason = "Manual intervention required"
        token = sign(ADMIN_0, "pause", datetime.now(UTC), reason=reason, guardian_id=GUARDIAN_ID)
        resp = await http.post("/guardian/pause", json={"reason": reason, "authorization": token})
        assert resp.status_code == 200, resp.text
        assert (await http.get("/guardian/status")).json()["paused"] is True
        # The same body again is refused here, without reaching the guardian.
        replay = await http.post("/guardian/pause", json={"reason": reason, "authorization": token})
        # 429 while the address is still over its limit; 403 if the pause took long enough for
        # its bucket to refill a token (a slow machine): refused here either way.
        assert replay.status_code in (403, 429) and replay.json()["error"]["details"]["code"] == "replayed"
        resume = [sign(k, "resume", datetime.now(UTC), guardian_id=GUARDIAN_ID) for k in (ADMIN_0, ADMIN_1)]
        assert (await http.post("/guardian/resume", json={"authorization": resume})).status_code == 200
    # The flood added nothing to the guardian's history or audit log: only the pause and resume did.
    assert await history_admin_events(handle) == before_events + 2 * 2  # accepted + completed, twice
    assert admin_rejected_events(s.database_url) == before_rows
    # It is counted, in one row per minute and code (a minute boundary may split it in two).
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        rows = rejection_rows(s.database_url, source)
        if sum(r["count"] for r in rows) >= 301:
            break
        assert asyncio.get_running_loop().time() < deadline, rows
        await asyncio.sleep(0.5)
    assert sorted({(r["action"], r["code"]) for r in rows}) == [("pause", "foreign"), ("pause", "replayed")]
    assert len(rows) <= 4 and sum(r["limited"] for r in rows) in (290, 291)  # the replay: 429 or 403
    assert all(len(r["sample"]) <= 200 for r in rows)
    async with client_from(s.url) as http:
        listed = (await http.get("/guardian/rejections")).json()["rejections"]
        assert sum(r["count"] for r in listed if r["source"] == source) == 301


async def test_signatures_are_bound_to_the_dao_chain_and_guardian(stack):
    s, handle = stack
    before = await history_admin_events(handle)
    now = datetime.now(UTC)
    reason = "bound"
    other_chain = SigningDomain(**{**DEMO_DOMAIN.model_dump(), "chain_id": 1})
    other_dao = SigningDomain(**{**DEMO_DOMAIN.model_dump(), "name": "another-dao"})
    other_contract = SigningDomain(**{**DEMO_DOMAIN.model_dump(), "verifying_contract": "0x" + "12" * 20})
    tokens = {
        "another guardian": sign(ADMIN_0, "pause", now, reason=reason, guardian_id="governance-guardian-treasury"),
        "another chain": sign(ADMIN_0, "pause", now, reason=reason, guardian_id=GUARDIAN_ID, domain=other_chain),
        "another DAO": sign(ADMIN_0, "pause", now, reason=reason, guardian_id=GUARDIAN_ID, domain=other_dao),
        "another contract": sign(ADMIN_0, "pause", now, reason=reason, guardian_id=GUARDIAN_ID, domain=other_contract),
        "expired": sign(ADMIN_0, "pause", now, reason=reason, guardian_id=GUARDIAN_ID, ttl=-1),
        "too far ahead": sign(ADMIN_0, "pause", now, reason=reason, guardian_id=GUARDIAN_ID, ttl=3600),
    }
    expected = {"expired": "expired", "too far ahead": "expired"}
    for what, token in tokens.items():
        async with client_from(s.url) as http:
            resp = await http.post("/guardian/pause", json={"reason": reason, "authorization": token})
            assert resp.status_code == 403, (what, resp.text)
            assert resp.json()["error"]["details"] == {"action": "pause", "code": expected.get(what, "foreign")}, what
    assert await history_admin_events(handle) == before


# --- admin rejections: the same code over HTTP, signal and update; no nonce used ---------------


def admin_rejections_in_log(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT details FROM governance_events WHERE guardian_id = %s AND event_type = 'admin_rejected' "
                "ORDER BY id",
                (GUARDIAN_ID,),
            ).fetchall()
        ]


async def test_http_signal_and_update_answer_the_same_code_for_the_same_body(stack):
    """Before: a signal body 123, [], null or "str" was dropped without an admin_rejected event."""
    s, handle = stack
    now = datetime.now(UTC)
    bodies = [
        (123, "malformed"),
        ([], "malformed"),
        (None, "malformed"),
        ("str", "malformed"),
        ({"reason": "r"}, "malformed"),
        ({"reason": "r", "authorization": "t", "extra": 1}, "malformed"),
        ({"reason": "r", "authorization": "not-a-token"}, "malformed"),
        (
            {"reason": "r", "authorization": sign(OUTSIDER, "pause", now, reason="r", guardian_id=GUARDIAN_ID)},
            "foreign",
        ),
        (
            {"reason": "r", "authorization": sign(ADMIN_0, "pause", now, reason="r", guardian_id=GUARDIAN_ID, ttl=-5)},
            "expired",
        ),
    ]
    before = len(admin_rejections_in_log(s.database_url))
    for body, code in bodies:
        async with client_from(s.url) as http:
            resp = await http.post(
                "/guardian/pause", content=json.dumps(body), headers={"Content-Type": "application/json"}
            )
            assert resp.status_code in (403, 422), resp.text
            assert resp.json()["error"]["details"] == {"action": "pause", "code": code}, (body, resp.text)
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update("pause", body)
        cause = info.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "AdminRejected"
        assert cause.details == (code,), (body, cause.message)
        await handle.signal("pause", body)
    # Each update and each signal is audited exactly once, with the code first.
    deadline = asyncio.get_running_loop().time() + 20
    while len(admin_rejections_in_log(s.database_url)) - before < 2 * len(bodies):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)
    logged = admin_rejections_in_log(s.database_url)[before:]
    assert [d.split(":")[0] for d in logged] == [code for _, code in bodies for _ in range(2)], logged
    assert (await handle.query("status"))["paused"] is False


async def test_a_refused_body_stays_refused_and_a_new_signature_carries_the_action_out(stack, sim):
    """A body the guardian refused is answered from the edge when it comes again, whatever changed
    since (its signatures are spent: sign a new one); an accepted body is a replay."""
    s, handle = stack
    now = datetime.now(UTC)
    resume = {"authorization": sign(ADMIN_0, "resume", now, guardian_id=GUARDIAN_ID)}
    async with client_from(s.url) as http:
        refused = await http.post("/guardian/resume", json=resume)
        assert refused.status_code == 403 and refused.json()["error"]["details"]["code"] == "not_paused", refused.text
        reason = "hold on"
        pause = {"reason": reason, "authorization": sign(ADMIN_1, "pause", now, reason=reason, guardian_id=GUARDIAN_ID)}
        assert (await http.post("/guardian/pause", json=pause)).status_code == 200
        audited = admin_rejected_events(s.database_url)
        again = await http.post("/guardian/resume", json=resume)
        assert (again.status_code, again.content) == (403, refused.content)  # the first answer, from here
        sim.sim.set_reading(50.0)  # below critical: the guardian refuses to resume (after the signature check)
        try:
            fresh = {"authorization": sign(ADMIN_0, "resume", datetime.now(UTC), guardian_id=GUARDIAN_ID)}
            unsafe = await http.post("/guardian/resume", json=fresh)
            assert unsafe.status_code == 403 and unsafe.json()["error"]["details"]["code"] == "unsafe_to_resume"
        finally:
            sim.sim.set_reading(70.5)
        ok = {"authorization": sign(ADMIN_0, "resume", datetime.now(UTC), guardian_id=GUARDIAN_ID)}
        resumed = await http.post("/guardian/resume", json=ok)
        assert resumed.status_code == 200, resumed.text
        # Now it is used: the API refuses the replay itself, and so does the guardian.
        replay = await http.post("/guardian/resume", json=ok)
        assert replay.status_code == 403 and replay.json()["error"]["details"]["code"] == "replayed"
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update("resume", ok)
    assert info.value.cause.details == ("replayed",)
    # The guardian audited the unsafe resume and the update's replay; the repeated body never reached it.
    deadline = asyncio.get_running_loop().time() + 20
    while admin_rejected_events(s.database_url) < audited + 2:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)
    assert admin_rejected_events(s.database_url) == audited + 2


async def test_replays_of_a_body_the_guardian_refused_are_answered_from_the_edge(stack):
    """Before: a captured body with valid signatures that the guardian refuses (a resume while
    not paused) could be replayed without limit for its 15 minutes: each replay reached the
    guardian and added an audit row (150 replays in 5 s: 150 rows), and no 429 ever came."""
    s, handle = stack
    assert (await handle.query("status"))["paused"] is False
    body = {"authorization": sign(REPLAY_ADMIN, "resume", datetime.now(UTC), guardian_id=GUARDIAN_ID)}
    audited = admin_rejected_events(s.database_url)
    history = await history_admin_events(handle)
    source = next_source()
    started = time.monotonic()
    async with client_from(s.url, source) as http:
        answers = [await http.post("/guardian/resume", json=body) for _ in range(150)]
    took = time.monotonic() - started
    first = answers[0]
    deadline = asyncio.get_running_loop().time() + 20
    while admin_rejected_events(s.database_url) < audited + 1:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)
    print(
        f"\n150 replays of a refused resume from one address: answers {dict(Counter(a.status_code for a in answers))}, "
        f"{admin_rejected_events(s.database_url) - audited} audit rows, "
        f"{await history_admin_events(handle) - history} update events in the guardian's history"
    )
    assert first.status_code == 403 and first.json()["error"]["details"]["code"] == "not_paused", first.text
    # The same status and body from the edge, until the address is over its limit (10, then a token
    # back each second: however slow this machine is, that bounds the 403s); then 429.
    assert [(a.status_code, a.content) for a in answers[:10]] == [(403, first.content)] * 10
    refused = [a for a in answers if a.status_code == 403]
    limited_here = [a for a in answers if a.status_code == 429]
    assert all(a.content == first.content for a in refused)
    assert len(refused) + len(limited_here) == 150
    assert len(refused) <= 10 + int(took) + 1, (len(refused), took)
    for a in limited_here:
        assert int(a.headers["retry-after"]) >= 1, a.text
        assert a.json()["error"]["details"]["code"] == "not_paused"
    # The same body from other addresses: its signer is over the limit too.
    others = []
    started = time.monotonic()
    for _ in range(20):
        async with client_from(s.url) as http:
            others.append(await http.post("/guardian/resume", json=body))
    took_others = time.monotonic() - started
    assert all((a.status_code, a.content) == (403, first.content) or a.status_code == 429 for a in others)
    limited = [a for a in others if a.status_code == 429]
    assert len(limited) >= 20 - int(took_others) - 1, (len(limited), took_others)  # a token back each second
    assert all("signed by 0x90f79bf6eb2c4f870365e785982e1f101e93b906" in a.json()["error"]["message"] for a in limited)
    # The guardian saw the body once: one audit row, at most one update in its history.
    deadline = asyncio.get_running_loop().time() + 20
    while admin_rejected_events(s.database_url) < audited + 1:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)
    assert admin_rejected_events(s.database_url) == audited + 1
    assert await history_admin_events(handle) - history <= 2  # accepted + completed, once
    # A request whose action is carried out is never limited: the same signer, the same address.
    reason = "a real pause"
    pause = {
        "reason": reason,
        "authorization": sign(REPLAY_ADMIN, "pause", datetime.now(UTC), reason=reason, guardian_id=GUARDIAN_ID),
    }
    async with client_from(s.url, source) as http:
        assert (await http.post("/guardian/pause", json=pause)).status_code == 200
        resume = [sign(k, "resume", datetime.now(UTC), guardian_id=GUARDIAN_ID) for k in (ADMIN_0, ADMIN_1)]
        assert (await http.post("/guardian/resume", json={"authorization": resume})).status_code == 200
    # Counted like any refusal, under the guardian's code.
    deadline = asyncio.get_running_loop().time() + 20
    while sum(r["count"] for r in rejection_rows(s.database_url, source)) < 150:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.5)
    rows = rejection_rows(s.database_url, source)
    assert {(r["action"], r["code"]) for r in rows} == {("resume", "not_paused")}
    assert sum(r["limited"] for r in rows) == len(limited_here)


async def test_a_flood_from_3000_addresses_is_a_bounded_number_of_rows(stack, make_database):
    """Before: 3,000 addresses made 3,000 rows (one each, ~550 B), and nothing ever deleted one."""
    s, _ = stack
    url = make_database()  # its own table: the rows are this flood's alone
    per_minute = 20
    app = create_app(
        s.config, client=s.client, database_url=url, pool_size=2, admin_gate=AdminGate(sources_per_minute=per_minute)
    )
    api = await start_api(app)
    reason = "flood"
    body = {
        "reason": reason,
        "authorization": sign(OUTSIDER, "pause", datetime.now(UTC), reason=reason, guardian_id=GUARDIAN_ID),
    }
    sources = [f"127.3.{i // 250}.{1 + i % 250}" for i in range(3000)]
    payload = json.dumps(body).encode()
    request = (
        b"POST /guardian/pause HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
    )
    host, port = api.url.removeprefix("http://").split(":")
    statuses: Counter[int] = Counter()
    slots = asyncio.Semaphore(25)

    async def one(source: str) -> None:  # a plain socket: an HTTP client per address costs more than the request
        async with slots:
            reader, writer = await asyncio.open_connection(host, int(port), local_addr=(source, 0))
            writer.write(request)
            answer = await asyncio.wait_for(reader.read(), 30)  # until the server closes
            writer.close()
            statuses[int(answer.split(b" ", 2)[1])] += 1

    started = asyncio.get_running_loop().time()
    try:
        await asyncio.gather(*(one(source) for source in sources))
    finally:
        await api.stop()  # writes what it counted
    took = asyncio.get_running_loop().time() - started
    rows = rejection_rows_of(url)
    print(f"\n3,000 addresses, one forged pause each, in {took:.1f} s: {len(rows)} rows in admin_rejections")
    assert statuses == {403: 3000}, statuses
    assert sum(r["count"] for r in rows) == 3000
    per_window = Counter(r["window_start"] for r in rows)
    assert all(n <= per_minute + 1 for n in per_window.values()), per_window
    many = [r for r in rows if r["source"] == "*"]
    assert many and all(r["code"] == "foreign" for r in many)
    # Every address is counted once: in a row of its own, or among the `sources` of a `*` row.
    assert sum(r["sources"] for r in rows) == 3000


def rejection_rows_of(database_url: str) -> list[dict]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM admin_rejections WHERE guardian_id = %s", (GUARDIAN_ID,)).fetchall()


# --- the HTTP layer: one body framing, browser headers ---------------------------------------


async def raw_exchange(url: str, request: bytes) -> bytes:
    """Send raw bytes; everything the server answers until it closes the connection."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), local_addr=(next_source(), 0))
    writer.write(request)
    got = bytearray()

    async def until_closed() -> None:
        while chunk := await reader.read(65536):
            got.extend(chunk)

    try:
        await asyncio.wait_for(until_closed(), 20)  # the server closes: the wait ends
    finally:
        writer.close()
    return bytes(got)


async def test_content_length_with_transfer_encoding_is_refused_and_the_connection_closed(stack):
    """Before: the body was read as chunked and the bytes after it answered as a second request
    (smuggling behind a proxy that trusts Content-Length)."""
    s, _ = stack
    smuggled = b"GET /guardian/rules HTTP/1.1\r\nHost: api\r\n\r\n"
    got = await raw_exchange(
        s.url,
        b"POST /guardian/readings HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer push\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
    )
    assert got.count(b"HTTP/1.1 ") == 1, got  # one answer: the smuggled request was never read
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"\r\nconnection: close" in head.lower(), head
    err = json.loads(body)["error"]
    assert err["code"] == "bad_request" and "Content-Length and Transfer-Encoding" in err["message"], err
    async with client_from(s.url) as http:
        await alive(http)


async def test_every_answer_carries_the_browser_headers(stack):
    """Before: no Content-Security-Policy, no frame protection, no nosniff, no referrer policy."""
    s, _ = stack
    async with client_from(s.url) as http:
        answers = {
            "a read": await http.get("/guardian/rules"),
            "a refusal by the app": await http.get("/guardian/events", params={"limit": 0}),
            "a refusal by the edge": await http.get("/guardian/events", params={"event_type": "a\x00"}),
            "no such endpoint": await http.get("/nowhere"),
            "the OpenAPI document": await http.get("/openapi.json"),
        }
        for what, resp in answers.items():
            policy = resp.headers.get("content-security-policy", "")
            assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy, (what, resp.headers)
            assert resp.headers.get("x-content-type-options") == "nosniff", what
            assert resp.headers.get("referrer-policy") == "no-referrer", what
            assert resp.headers.get("x-frame-options") == "DENY", what
        page = await http.get("/gov")
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'sha256-" in policy, policy
        assert page.headers["x-content-type-options"] == "nosniff"
        # No Swagger UI or ReDoc: they would run a CDN's scripts on this origin.
        assert (await http.get("/docs")).status_code == 404
        assert (await http.get("/redoc")).status_code == 404

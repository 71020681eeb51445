"""The pure parts of the API's edge: error bodies cut to size, query values, the JSON content
type, and the admin gate (rate limit on rejections, counted audit, nonces), all bounded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from govfleet.api.admin_gate import OTHER_SOURCE, AdminGate, Refusal, refusal_key, signer_key
from govfleet.api.body import json_content_type
from govfleet.api.edge import query_problem
from govfleet.api.errors import MAX_ITEMS, MAX_MESSAGE, MAX_TEXT, capped, error_response

NOW = datetime(2025, 11, 16, 10, 0, 30, tzinfo=UTC)


def test_an_error_body_never_echoes_more_than_a_slice_of_the_input():
    details = [{"field": f"body.{'k' * 1000}{i}", "problem": "Extra inputs are not permitted"} for i in range(200_000)]
    resp = error_response(422, "validation_error", "body." + "k" * 100_000, details)
    body = json.loads(resp.body)
    assert len(resp.body) < 5_000
    assert len(body["error"]["message"]) == MAX_MESSAGE
    assert len(body["error"]["details"]) == MAX_ITEMS + 1 and body["error"]["details"][-1] == "… and 199990 more"
    assert len(body["error"]["details"][0]["field"]) == MAX_TEXT


def test_capped_keeps_small_values_and_cuts_deep_ones():
    assert capped({"code": "foreign", "n": 3, "ok": True, "list": [1, 2]}) == {
        "code": "foreign",
        "n": 3,
        "ok": True,
        "list": [1, 2],
    }
    deep: list = []
    cur = deep
    for _ in range(10):
        cur.append([])
        cur = cur[0]
    assert capped(deep) == [[[["…"]]]]
    assert len(capped({str(i): i for i in range(50)})) == MAX_ITEMS + 1


def test_query_values_with_control_characters_or_bad_bytes_are_refused():
    assert query_problem(b"") is None
    assert query_problem(b"limit=5&event_type=pause") is None
    assert query_problem(b"event_type=caf%C3%A9+x") is None
    assert "holds a control character" in (query_problem(b"event_type=a%00b") or "")
    assert "holds a control character" in (query_problem(b"x%0A=1") or "")
    assert "not UTF-8" in (query_problem(b"event_type=%ff") or "")
    assert "its value" in (query_problem(b"limit=1&event_type=%1f") or "")


def test_json_content_type():
    for ok in (
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
        'application/json;charset="UTF8"',
    ):
        assert json_content_type(ok), ok
    for bad in (None, "", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"):
        assert not json_content_type(bad), bad


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _reject(gate: AdminGate, source: str, code: str = "foreign", at: datetime = NOW, limited: bool = False) -> None:
    gate.reject(
        guardian_id="governance-guardian",
        source=source,
        action="pause",
        code=code,
        message="m" * 1000,
        now=at,
        limited=limited,
    )


def test_rejections_are_rate_limited_per_address_and_refill():
    clock = Clock()
    gate = AdminGate(burst=3, per_second=0.5, monotonic=clock)
    for _ in range(3):
        assert gate.retry_after("10.0.0.1") is None
        _reject(gate, "10.0.0.1")
    assert gate.retry_after("10.0.0.1") == 2  # one token back in 2 s
    assert gate.retry_after("10.0.0.2") is None  # another address is not affected
    clock.t += 2
    assert gate.retry_after("10.0.0.1") is None
    _reject(gate, "10.0.0.1")
    assert gate.retry_after("10.0.0.1") == 2


def test_rejections_are_counted_per_source_minute_action_and_code():
    gate = AdminGate(monotonic=Clock())
    for i in range(300):
        _reject(gate, "10.0.0.1", at=NOW + timedelta(milliseconds=i), limited=i >= 10)
    _reject(gate, "10.0.0.1", code="expired")
    _reject(gate, "10.0.0.1", at=NOW + timedelta(seconds=40))  # the next minute
    rows = sorted(gate.take(), key=lambda r: (r.window_start, r.code))
    assert [(r.window_start.minute, r.code, r.count, r.limited) for r in rows] == [
        (0, "expired", 1, 0),
        (0, "foreign", 300, 290),
        (1, "foreign", 1, 0),
    ]
    assert len(rows[1].sample) == 200 and rows[1].first_at == NOW and rows[1].last_at > NOW
    assert gate.take() == []
    gate.put_back(rows)
    gate.put_back(rows[:1])
    assert sorted(r.count for r in gate.take()) == [1, 2, 300]


def test_the_gate_is_bounded():
    gate = AdminGate(max_sources=100, max_pending=50, sources_per_minute=10_000, monotonic=Clock())
    for i in range(1000):
        _reject(gate, f"10.0.{i // 256}.{i % 256}")
    rows = gate.take()
    assert len(rows) == 51
    assert sum(r.count for r in rows) == 1000 and any(r.source == OTHER_SOURCE and r.count == 950 for r in rows)
    assert len(gate._buckets) == 100


def test_nonces_of_accepted_actions_and_in_flight_ones_are_replays():
    gate = AdminGate()
    expiry = NOW + timedelta(seconds=600)
    assert gate.replayed(["n1", "n2"], NOW) is None
    gate.hold({"n1": expiry})
    assert gate.replayed(["n2", "n1"], NOW) == "n1"
    gate.release({"n1": expiry}, used=False)  # rejected by the guardian: usable again
    assert gate.replayed(["n1"], NOW) is None
    gate.hold({"n1": expiry})
    gate.release({"n1": expiry}, used=True)
    assert gate.replayed(["n1"], NOW) == "n1"
    assert gate.replayed(["n1"], expiry) is None  # forgotten once expired


def test_past_the_addresses_of_a_minute_rejections_share_one_row_that_counts_them():
    """Before: 3,000 addresses in a minute were 3,000 rows."""
    gate = AdminGate(sources_per_minute=20, monotonic=Clock())
    for i in range(3000):
        _reject(gate, f"10.1.{i // 250}.{i % 250}", at=NOW + timedelta(milliseconds=i))
    _reject(gate, "10.1.0.5")  # an address with a row of its own stays in it
    _reject(gate, "10.1.11.249")  # a folded address is counted once
    rows = gate.take()
    assert len(rows) == 21
    [many] = [r for r in rows if r.source == OTHER_SOURCE]
    assert many.count == 2981 and many.sources == 2980
    assert sum(r.count for r in rows) == 3002 and {r.sources for r in rows if r.source != OTHER_SOURCE} == {1}
    # The next flush of the same minute counts only addresses not yet counted.
    _reject(gate, "10.1.11.249")
    _reject(gate, "10.9.9.9")
    [again] = gate.take()
    assert again.source == OTHER_SOURCE and again.count == 2 and again.sources == 1
    # A new minute admits new addresses.
    _reject(gate, "10.9.9.9", at=NOW + timedelta(minutes=2))
    assert [r.source for r in gate.take()] == ["10.9.9.9"]


def test_a_signer_over_its_limit_is_limited_from_any_address():
    clock = Clock()
    gate = AdminGate(burst=3, per_second=0.5, monotonic=clock)
    signer = signer_key("0xabc")
    for i in range(3):
        assert gate.retry_after(f"10.2.0.{i}", signer) is None
        gate.reject(
            guardian_id="g",
            source=f"10.2.0.{i}",
            action="resume",
            code="not_paused",
            message="m",
            now=NOW,
            limited=False,
            signers=["0xabc"],
        )
    assert gate.retry_after("10.2.0.9", signer) == 2  # a fresh address, the same signer
    assert gate.limited_key("10.2.0.9", signer) == signer
    assert gate.retry_after("10.2.0.9") is None  # the address alone is within its limit


def test_a_refusal_is_remembered_until_its_signatures_expire_and_bounded():
    gate = AdminGate(max_refusals=3)
    refusal = Refusal(403, "rejected", "not paused", {"code": "not_paused"}, ("0xabc",), NOW + timedelta(seconds=60))
    key = refusal_key("resume", "g", {"reason": "", "authorization": ["n.1.0x"], "governance_verified": False})
    assert key != refusal_key("resume", "g", {"reason": "", "authorization": ["n.1.0x"], "governance_verified": True})
    gate.remember_refusal(key, refusal, NOW)
    assert gate.refusal_for(key, NOW + timedelta(seconds=59)) == refusal
    assert gate.refusal_for(key, NOW + timedelta(seconds=60)) is None  # expired: forgotten
    for i in range(5):
        gate.remember_refusal(f"k{i}", refusal, NOW)
    assert len(gate._refusals) == 3 and gate.refusal_for("k0", NOW) is None and gate.refusal_for("k4", NOW)

"""The HTTP API against a running stack: dev Temporal server (own namespace), the fleet's
worker, real PostgreSQL, uvicorn on a free loopback port, real HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from govfleet.contracts.status import RecentRun, StatusUpdate
from govfleet.status_client import tell_status
from tests.integration.test_status_support import (
    api_stack,
    assert_contract,
    make_runs,
    seed,
    wait_status_ready,
)

SCHEDULES = [
    {"charter": "COMMUNITY", "cron": "0 */6 * * *"},
    {"charter": "ENGINEERING", "cron": "30 9 * * 1-5", "timezone": "Europe/Berlin"},
    {"charter": "TREASURY", "cron": "0 12 * * 1", "timezone": "America/New_York"},
    {"charter": "MINUTELY", "cron": "* * * * *"},
]
NOW = datetime.now(UTC)


def seed_history(url: str) -> None:
    """What the ledger, the guardian and the heartbeat leave in the database."""
    today = NOW.replace(hour=12, minute=0, second=0, microsecond=0)
    if today > NOW:
        today -= timedelta(days=1)
    yesterday = today - timedelta(days=1)
    with psycopg.connect(url) as conn:
        entries = [  # (when, amount, balance_after, reason, reference)
            (yesterday, 750_000_000, 750_000_000, "platform_revenue_share", "pay-1"),
            (yesterday + timedelta(hours=1), -1_000_000, 749_000_000, "governance_run", "run-a"),
            (today - timedelta(hours=1), 7_500_000_000, 8_249_000_000, "platform_revenue_share", "pay-2"),
            (today - timedelta(minutes=30), -1_000_000, 8_248_000_000, "governance_run", "run-b"),
            (today - timedelta(minutes=20), -2_000_000, 8_246_000_000, "governance_run", "run-c"),
        ]
        for when, amount, after, reason, ref in entries:
            conn.execute(
                """INSERT INTO credit_ledger (billing_account_id, amount, balance_after, reason, reference, created_at)
                   VALUES ('cogni_system', %s, %s, %s, %s, %s)""",
                (amount, after, reason, ref, when),
            )
        conn.execute("UPDATE billing_accounts SET balance_credits = 8246000000 WHERE id = 'cogni_system'")
        # A user's purchase is not the system tenant's activity.
        conn.execute("INSERT INTO users (id) VALUES ('bob') ON CONFLICT DO NOTHING")
        conn.execute(
            "INSERT INTO billing_accounts (id, owner_user_id, balance_credits) VALUES ('acct-bob', 'bob', 5)"
            " ON CONFLICT DO NOTHING"
        )
        conn.execute(
            """INSERT INTO credit_ledger (billing_account_id, amount, balance_after, reason, reference, created_at)
                        VALUES ('acct-bob', 5, 5, 'widget_payment', 'pay-b', %s)""",
            (today,),
        )
        # Governance checks: a decline over the last two hours, and one check yesterday.
        for i in range(120):
            hc = 70 - i * 0.18
            level = "excellent" if hc >= 70 else "good" if hc >= 60 else "acceptable" if hc >= 55 else "caution"
            conn.execute(
                """INSERT INTO governance_events
                       (timestamp, event_type, holder_control, threshold_level, action, details)
                   VALUES (%s, 'governance_check', %s, %s, 'none', 'Routine governance check')""",
                (NOW - timedelta(minutes=120 - i), round(hc, 2), level),
            )
        conn.execute(
            """INSERT INTO governance_events (timestamp, event_type, holder_control, threshold_level, action)
                        VALUES (%s, 'governance_check', 66.5, 'good', 'none')""",
            (yesterday,),
        )
        conn.execute(
            """INSERT INTO governance_events (timestamp, event_type, holder_control, threshold_level, action)
                        VALUES (%s, 'threshold_crossed', 54.9, 'caution', 'alert')""",
            (NOW - timedelta(minutes=2),),
        )
        conn.execute(
            """INSERT INTO governance_events (guardian_id, timestamp, event_type, holder_control,
                        threshold_level, action) VALUES ('governance-guardian-other', %s, 'governance_check', 10,
                        'emergency', 'none')""",
            (NOW,),
        )
        conn.execute(
            """INSERT INTO governance_alerts (timestamp, alert_type, holder_control, message, action_taken,
                        resolved, resolved_at) VALUES (%s, 'caution', 54.2, 'Holder control dropped below 55%%',
                        'increased_monitoring', true, %s)""",
            (NOW - timedelta(hours=3), NOW - timedelta(hours=2)),
        )
        conn.execute(
            """INSERT INTO governance_alerts (timestamp, alert_type, holder_control, message, action_taken)
                        VALUES (%s, 'caution', 54.9, 'Holder control dropped below 55%%', 'increased_monitoring')""",
            (NOW - timedelta(minutes=2),),
        )
        conn.execute(
            """INSERT INTO system_pauses (paused_at, pause_reason, pause_type, scope, holder_control_at_pause)
                        VALUES (%s, 'Holder control below 51%%', 'automatic', 'redemptions', 50.8)""",
            (NOW - timedelta(minutes=1),),
        )
    runs = make_runs(3, start=today - timedelta(hours=2))
    runs[0]["status"] = "error"
    seed(
        url,
        runs=runs,
        heartbeat={
            "id": "hb-1",
            "time": NOW - timedelta(minutes=1),
            "status": "ok",
            "data": {"status": "ok", "checks": {"balance": {"ok": True, "detail": "fine"}}, "alerts": []},
        },
    )


@pytest.fixture(scope="module")
def api_db(make_database) -> str:
    url = make_database()
    seed_history(url)
    return url


@pytest.fixture(scope="module")
async def stack(dev_env, api_db, tmp_path_factory):
    async with api_stack(dev_env, api_db, tmp_path_factory.mktemp("api"), schedules=SCHEDULES) as s:
        await wait_status_ready(s)
        yield s


@pytest.fixture
async def http(stack):
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        yield client


async def test_status_is_the_contract_with_live_upcoming_runs(http, stack):
    asked = datetime.now(UTC)
    resp = await http.get("/api/v1/governance/status")
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-govfleet-source"] == "workflow"
    assert resp.headers["content-type"].startswith("application/json")
    body = assert_contract(resp.text, now=asked)
    assert body["systemCredits"] == "8246000000"
    assert body["upcomingRuns"][0]["name"] == "Minutely" and len(body["upcomingRuns"]) == 3
    assert [r["id"] for r in body["recentRuns"]] == ["run-02", "run-01", "run-00"]


async def test_upcoming_runs_are_computed_per_request_even_from_a_cached_read_model(http, stack):
    """The just-passed fire time: the API's clock sits 1 ms after an every-minute fire time
    that the read model (cached, or the workflow's own time) has not seen pass."""
    base = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=5)
    for after in (
        timedelta(0),
        timedelta(milliseconds=1),
        timedelta(seconds=30),
        timedelta(seconds=59, milliseconds=999),
    ):
        stack.clock.frozen = now = base + after
        try:
            resp = await http.get("/api/v1/governance/status")
        finally:
            stack.clock.frozen = None
        body = assert_contract(resp.text, now=now)
        assert body["upcomingRuns"][0]["name"] == "Minutely"
        assert body["upcomingRuns"][0]["nextRunAt"] == (base + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:00.000Z")


async def test_signals_reach_the_api(http, stack):
    now = datetime.now(UTC)
    seed(stack.database_url, runs=[{"id": "run-live", "title": "Community — live", "started_at": now}])
    await tell_status(
        stack.client,
        stack.task_queue,
        StatusUpdate(
            run=RecentRun(id="run-live", title="Community — live", started_at=now, last_activity=now), source="test"
        ),
    )
    deadline = now + timedelta(seconds=15)
    try:
        while True:
            body = (await http.get("/api/v1/governance/status")).json()
            if body["recentRuns"][0]["id"] == "run-live":
                break
            assert datetime.now(UTC) < deadline, body
            await __import__("asyncio").sleep(0.3)
    finally:  # the module's other tests count the seeded runs per day (after noon UTC this one is "today")
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM governance_runs WHERE id = 'run-live'")


async def test_activity_is_a_dense_daily_series_of_the_system_tenant(http):
    resp = await http.get("/api/v1/governance/activity", params={"days": 4})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["tenant"] == "cogni_system" and body["days"] == 4 and len(body["series"]) == 4
    assert body["to_date"] == NOW.date().isoformat() and body["series"][-1]["date"] == body["to_date"]
    days = {d["date"]: d for d in body["series"]}
    today = NOW.replace(hour=12, minute=0, second=0, microsecond=0)  # the seed's anchor: the latest noon
    if today > NOW:
        today -= timedelta(days=1)
    t, y = days[today.date().isoformat()], days[(today - timedelta(days=1)).date().isoformat()]
    assert (t["credits_received"], t["credits_spent"]) == ("7500000000", "3000000")
    assert (y["credits_received"], y["credits_spent"]) == ("750000000", "1000000")
    assert y["holder_control"] == {"min": 66.5, "avg": 66.5, "max": 66.5, "checks": 1}
    assert t["runs"] == 3 and t["runs_succeeded"] == 2 and t["runs_failed"] == 1
    assert sum(d["runs"] for d in body["series"]) >= 3
    oldest = days[(today - timedelta(days=2)).date().isoformat()]
    assert oldest["runs"] == 0 and oldest["credits_received"] == "0" and oldest["holder_control"] is None


async def test_holder_control_series_and_thresholds(http):
    resp = await http.get("/api/v1/governance/holder-control", params={"hours": 3, "points": 60})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["thresholds"] == {"caution": 55.0, "warning": 52.0, "critical": 51.0, "emergency": 49.0}
    assert body["bucket_seconds"] == 180
    points = body["points"]
    assert 35 <= len(points) <= 45 and sum(p["checks"] for p in points) == 120
    assert points[0]["holder_control"] > points[-1]["holder_control"]  # the decline
    assert all(p["min"] <= p["holder_control"] <= p["max"] for p in points)
    assert min(p["min"] for p in points) > 40  # the other guardian's 10 % is not this guardian's


async def test_heartbeat_state_moves_with_the_clock(http, stack):
    body = (await http.get("/api/v1/governance/heartbeat")).json()
    assert body["state"] == "up" and body["status"] == "ok" and body["interval_seconds"] == 300
    assert body["checks"] == {"balance": {"ok": True, "detail": "fine"}}
    stack.clock.offset = timedelta(minutes=7)
    try:
        assert (await http.get("/api/v1/governance/heartbeat")).json()["state"] == "late"
        stack.clock.offset = timedelta(minutes=30)
        assert (await http.get("/api/v1/governance/heartbeat")).json()["state"] == "down"
    finally:
        stack.clock.offset = timedelta(0)


async def test_guardian_reads_from_the_audit_tables(http):
    alerts = (await http.get("/guardian/alerts", params={"limit": 20})).json()["alerts"]
    assert [a["resolved"] for a in alerts] == [False, True]
    assert set(alerts[0]) == {
        "id",
        "timestamp",
        "alert_type",
        "holder_control",
        "message",
        "action_taken",
        "resolved",
        "resolved_at",
    }
    assert alerts[0]["timestamp"].endswith("Z") and alerts[0]["holder_control"] == 54.9
    open_only = (await http.get("/guardian/alerts", params={"resolved": "false"})).json()["alerts"]
    assert len(open_only) == 1
    events = (await http.get("/guardian/events", params={"limit": 5})).json()["events"]
    assert len(events) == 5 and [e["event_type"] for e in events[:2]] == ["governance_check", "threshold_crossed"]
    assert {"timestamp", "event_type", "holder_control", "threshold_level", "action"} <= set(events[0])
    typed = (await http.get("/guardian/events", params={"limit": 500, "event_type": "governance_check"})).json()
    assert len(typed["events"]) == 121


async def test_guardian_status_falls_back_to_the_database_when_the_guardian_is_not_running(http):
    resp = await http.get("/guardian/status")
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-govfleet-source"] == "database"
    body = resp.json()
    assert body["monitoring_active"] is False and body["paused"] is True
    assert body["system_status"] == "redemptions_paused" and body["alerts_active"] == 1
    assert body["governance_level"] == "caution" and body["current_holder_control"] == pytest.approx(48.58, abs=0.5)
    rules = await http.get("/guardian/rules")
    assert rules.headers["x-govfleet-source"] == "config"  # the guardian does not answer: repo-spec
    assert rules.json() == {
        "critical_threshold": 51.0,
        "caution_threshold": 55.0,
        "warning_threshold": 52.0,
        "pause_redemptions_at": 51.0,
        "pause_system_at": 49.0,
        "monitoring_interval_normal": 30,
        "monitoring_interval_caution": 5,
        "monitoring_interval_critical": 1,
    }
    gov = await http.get("/guardian/governance")
    assert gov.status_code == 503 and gov.json()["error"]["code"] == "guardian_unavailable"


async def test_health_has_the_seed_shape(http):
    resp = await http.get("/health")
    body = resp.json()
    assert {
        "status",
        "monitoring_active",
        "voting_tracker_connected",
        "database",
        "last_governance_check",
        "seconds_since_last_check",
    } <= set(body)
    assert body["database"] == "connected"
    # No guardian runs in this stack: a declared guardian that is not running is unhealthy, named.
    assert resp.status_code == 503 and body["status"] == "unhealthy"
    assert "guardian workflow governance-guardian was never started" in body["problems"]
    assert body["last_governance_check"].endswith("Z") and 0 <= body["seconds_since_last_check"] < 600


async def test_health_is_healthy_when_the_file_declares_no_guardian(dev_env, make_database, tmp_path):
    """The original system's files declare no guardian: nothing watches holder control, and the
    fleet that runs (database, status workflow) is healthy — even with an old guardian's checks
    in the database."""
    url = make_database()
    seed_history(url)
    no_guardian = "guardians: []\nwatchdog: {enabled: false}\n"
    told = {"NOTIFY_URLS": "json://127.0.0.1:9/unused"}  # someone to tell (never silent: docs/notifications.md)
    async with (
        api_stack(dev_env, url, tmp_path, schedules=SCHEDULES, extra_spec=no_guardian, environ=told) as s,
        httpx.AsyncClient(base_url=s.url, timeout=10) as http,
    ):
        await wait_status_ready(s)
        assert s.config.spec.declared_guardians() == []
        resp = await http.get("/health")
        body = resp.json()
        assert resp.status_code == 200 and body["status"] == "healthy", body
        assert [w["workflow_id"] for w in body["workflows"]] == ["governance-status"]
        assert body["problems"] == []


async def test_admin_endpoints_need_a_signature(http):
    for path, body in [
        ("/guardian/pause", {"reason": "test", "authorization": ""}),
        ("/guardian/resume", {"authorization": [], "governance_verified": True}),
    ]:
        resp = await http.post(path, json=body)
        assert resp.status_code == 422, resp.text
        err = resp.json()["error"]
        assert err["code"] == "rejected" and "authorization is required" in err["message"]
        assert err["details"]["code"] == "malformed"
    resp = await http.post("/guardian/pause", json={"authorization": "x"})
    assert resp.status_code == 422 and "reason is required for a pause" in resp.json()["error"]["message"]
    forged = await http.post("/guardian/pause", json={"reason": "r", "authorization": "x"})
    assert forged.status_code == 403 and forged.json()["error"]["details"]["code"] == "malformed"


async def test_readings_push_needs_its_token(http):
    resp = await http.post("/guardian/readings", json={"holder_control_percentage": 60})
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "push_disabled"


async def test_one_error_format(http):
    cases = [
        (await http.get("/nope"), 404, "not_found"),
        (await http.get("/api/v1/governance/activity", params={"days": 0}), 422, "validation_error"),
        (await http.get("/guardian/alerts", params={"limit": "many"}), 422, "validation_error"),
        (await http.delete("/api/v1/governance/status"), 405, "method_not_allowed"),
        (
            await http.post("/guardian/pause", content=b"{not json", headers={"content-type": "application/json"}),
            400,
            "invalid_json",
        ),
    ]
    for resp, status, code in cases:
        assert resp.status_code == status, resp.text
        err = resp.json()["error"]
        assert set(err) == {"code", "message", "details"} and err["code"] == code and err["message"]
    details = cases[1][0].json()["error"]
    assert details["message"].startswith("query.days:") and details["details"][0]["field"] == "query.days"


async def test_openapi_documents_every_endpoint(http):
    spec = (await http.get("/openapi.json")).json()
    paths = set(spec["paths"])
    assert {
        "/api/v1/governance/status",
        "/api/v1/governance/activity",
        "/guardian/status",
        "/guardian/governance",
        "/guardian/alerts",
        "/guardian/events",
        "/guardian/pause",
        "/guardian/resume",
        "/guardian/rules",
        "/health",
        "/guardian/readings",
        "/api/v1/payments/credits/confirm",
    } <= paths
    assert "audit log" in spec["paths"]["/guardian/events"]["get"]["description"]
    assert json.dumps(spec).count("HTTPValidationError") == 0  # every error documented as our ErrorBody


async def test_gov_page_is_served(http):
    resp = await http.get("/gov")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert "/api/v1/governance/status/extended" in resp.text and "setInterval(refresh, POLL_MS)" in resp.text


async def test_read_token_protects_reads_only(dev_env, api_db, tmp_path):
    async with (
        api_stack(
            dev_env,
            api_db,
            tmp_path,
            schedules=SCHEDULES[:1],
            worker=False,
            start_status=False,
            environ={"API_READ_TOKEN": "s3cret", "GUARDIAN_PUSH_TOKEN": "push"},
        ) as s,
        httpx.AsyncClient(base_url=s.url, timeout=10) as http,
    ):
        for path in (
            "/api/v1/governance/status",
            "/guardian/alerts",
            "/guardian/status",
            "/api/v1/governance/activity",
        ):
            resp = await http.get(path)
            assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthorized", path
            assert resp.headers["www-authenticate"] == "Bearer"
            assert (await http.get(path, headers={"Authorization": "Bearer wrong"})).status_code == 401
        # No worker answers: the status falls back to the database, still the contract.
        asked = datetime.now(UTC)
        ok = await http.get("/api/v1/governance/status", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.headers["x-govfleet-source"] == "database"
        body = assert_contract(ok.text, now=asked)
        assert [r["name"] for r in body["upcomingRuns"]] == ["Community"]  # the repo-spec's cron, estimated
        ext = await http.get("/api/v1/governance/status/extended", headers={"Authorization": "Bearer s3cret"})
        assert ext.status_code == 200 and ext.headers["x-govfleet-source"] == "database"
        [community] = ext.json()["schedules"]
        assert community["source"] == "cron-fallback" and ext.json()["schedulesSource"] == "cron-fallback"
        assert community["scheduleId"] == s.config.spec.governance.schedules[0].schedule_id
        health = await http.get("/health")  # public: answers without the token (503 here: no guardian runs)
        assert health.status_code in (200, 503) and health.json()["status"] in ("healthy", "degraded", "unhealthy")
        assert (await http.get("/openapi.json")).status_code == 200
        # Readings push: its own token, and a bad reading is named.
        reading = {
            "holder_control_percentage": 150,
            "total_votes": 10,
            "holder_votes": 6,
            "seller_votes": 3,
            "last_updated": "2025-11-16T10:00:00Z",
        }
        assert (await http.post("/guardian/readings", json=reading)).status_code == 401
        bad = await http.post("/guardian/readings", json=reading, headers={"Authorization": "Bearer push"})
        assert bad.status_code == 422, bad.text
        assert [p["field"] for p in bad.json()["error"]["details"]] == ["holder_control_percentage"]
        assert bad.json()["error"]["code"] == "invalid_reading"
        mismatch = await http.post(
            "/guardian/readings",
            json={**reading, "holder_control_percentage": 60},
            headers={"Authorization": "Bearer push"},
        )
        assert mismatch.status_code == 422
        assert mismatch.json()["error"]["message"] == (
            "body: holder_votes (6) + seller_votes (3) must equal total_votes (10)"
        )
        good = {
            **reading,
            "holder_control_percentage": 60.0,
            "seller_votes": 4,
            "last_updated": datetime.now(UTC).isoformat(),  # a stale one is answered 422
        }
        resp = await http.post("/guardian/readings", json=good, headers={"Authorization": "Bearer push"})
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "guardian_unavailable"


async def _govfleet(*args: str, env: dict) -> tuple[int, str, str]:
    import asyncio
    import os
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "govfleet.cli",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode, out.decode(), err.decode()


async def test_govfleet_status_prints_the_same_status(stack):
    env = {
        "TEMPORAL_ADDRESS": stack.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": stack.client.namespace,
        "DATABASE_URL": stack.database_url,
        "REPO_SPEC_PATH": stack.config.settings.REPO_SPEC_PATH,
        "TEMPORAL_TASK_QUEUE": stack.task_queue,
    }
    asked = datetime.now(UTC)
    code, out, err = await _govfleet("status", "--json", env=env)
    assert code == 0, err
    body = assert_contract(out, now=asked)
    assert body["systemCredits"] == "8246000000"
    code, table, err = await _govfleet("status", env=env)
    assert code == 0, err
    assert "source: workflow" in table and "System credits  8,246,000,000  (≈ $824.60)" in table
    assert "Minutely" in table and "Community — run 2" in table
    code, out, err = await _govfleet("status", "--json", "--api", stack.url, env={})
    assert code == 0, err
    assert json.loads(out)["systemCredits"] == "8246000000"
    code, out, err = await _govfleet("status", "--api", "http://127.0.0.1:9", env={})
    assert code == 2 and "did not answer" in err

"""The guardian's HTTP endpoints (docs/guardian.md) against the real guardian workflow: dev Temporal server (own
namespace), the guardian with its real activities and the loopback tracker simulator, real
PostgreSQL, the API on a free loopback port. Pause and resume go through the guardian's
updates with EIP-712 signatures (the public Hardhat development keys of the demo repo-spec)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from govfleet.simulator import TrackerSimulator, start_simulator
from tests.integration.guardian_support import (
    ADMIN_0,
    ADMIN_1,
    OUTSIDER,
    NotificationRecorder,
    guardian_worker,
    make_config,
    sign,
    start_guardian,
)
from tests.integration.test_status_support import api_stack, seed, unique

GUARDIAN_ID = "governance-guardian"
STATUS_KEYS = {
    "monitoring_active",
    "last_check",
    "check_interval_seconds",
    "current_holder_control",
    "governance_level",
    "system_status",
    "paused",
    "alerts_active",
    # beyond the seed's shape: the incident (clients ignore unknown fields)
    "paused_since",
    "pauses",
    "resume_requires",
    "open_alerts",
    "forensic_audit",
    "unreachable_targets",
}
DEMO_ADMINS = """
cogni_dao:
  name: cogni-demo
  chain_id: 8453
  dao_contract: "0x5fbdb2315678afecb367f032d93f642f64180aa3"
guardian:
  admins:
    - "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    - "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
  resume_quorum: 2
watchdog: {enabled: false}   # /health counts every declared workflow; this stack runs the guardian and status
"""


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
        tmp_path_factory.mktemp("guardian-api"),
        schedules=[],
        extra_spec=DEMO_ADMINS,
        environ={"VOTING_TRACKER_URL": sim.url, "GUARDIAN_PUSH_TOKEN": "push"},
    ) as s:
        guardian_queue = unique("tq-guardian")
        async with guardian_worker(s.client, guardian_queue, s.config, url, NotificationRecorder()):
            cfg = make_config(s.config, sim, GUARDIAN_ID)
            handle = await start_guardian(s.client, guardian_queue, cfg)
            try:
                yield s
            finally:
                await handle.terminate("test over")


@pytest.fixture
async def http(stack):
    async with httpx.AsyncClient(base_url=stack.url, timeout=20) as client:
        yield client


async def _until(get, ok, timeout: float = 20):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await get()
        if ok(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {timeout}s: {value}")
        await asyncio.sleep(0.2)


async def test_status_governance_rules_and_health_come_from_the_guardian(http):
    resp = await _until(
        lambda: http.get("/guardian/status"), lambda r: r.status_code == 200 and r.json()["last_check"] is not None
    )
    assert resp.headers["x-govfleet-source"] == "workflow"
    body = resp.json()
    assert set(body) == STATUS_KEYS
    assert body["monitoring_active"] is True and body["governance_level"] == "excellent"
    assert body["current_holder_control"] == 70.5 and body["system_status"] == "operational"
    gov = (await http.get("/guardian/governance")).json()
    assert set(gov) == {
        "holder_control_percentage",
        "total_votes",
        "holder_votes",
        "seller_votes",
        "threshold_level",
        "margin_above_critical",
        "is_stable",
        "last_updated",
    }
    assert gov["holder_control_percentage"] == 70.5 and gov["margin_above_critical"] == pytest.approx(19.5)
    rules = await http.get("/guardian/rules")
    assert rules.headers["x-govfleet-source"] == "workflow" and rules.json()["pause_system_at"] == 49.0
    health = (await http.get("/health")).json()
    assert health["status"] == "healthy", health
    assert health["monitoring_active"] and health["voting_tracker_connected"] and health["database"] == "connected"
    [g] = [w for w in health["workflows"] if w["kind"] == "guardian"]
    assert g["workflow_id"] == GUARDIAN_ID and g["running"] is True and g["status"] == "RUNNING"
    assert health["problems"] == [] and health["incidents"] == []
    events = (await http.get("/guardian/events", params={"limit": 5})).json()["events"]
    assert events and events[0]["event_type"] == "governance_check"


async def test_a_forged_signature_changes_nothing(http):
    now = datetime.now(UTC)
    forged = sign(OUTSIDER, "pause", now, reason="forged", guardian_id=GUARDIAN_ID)
    resp = await http.post("/guardian/pause", json={"reason": "forged", "authorization": forged})
    assert resp.status_code == 403, resp.text
    err = resp.json()["error"]
    assert err["code"] == "rejected" and err["message"]
    assert (await http.get("/guardian/status")).json()["paused"] is False
    garbage = await http.post("/guardian/pause", json={"reason": "x", "authorization": "not-a-token"})
    assert garbage.status_code == 403 and "not-a-token" in garbage.json()["error"]["message"]


async def test_signed_pause_and_resume(http):
    now = datetime.now(UTC)
    reason = "Manual intervention required"
    token = sign(ADMIN_0, "pause", now, reason=reason, guardian_id=GUARDIAN_ID)
    resp = await http.post("/guardian/pause", json={"reason": reason, "authorization": token})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"paused", "paused_at", "reason", "resume_requires"}
    assert body["paused"] is True and body["reason"] == reason and body["paused_at"].endswith("Z")
    status = (await http.get("/guardian/status")).json()
    assert status["paused"] is True and status["system_status"] != "operational"
    # The same token again is a replay.
    replay = await http.post("/guardian/pause", json={"reason": reason, "authorization": token})
    assert replay.status_code == 403

    tokens = [sign(k, "resume", now, guardian_id=GUARDIAN_ID) for k in (ADMIN_0, ADMIN_1)]
    resp = await http.post("/guardian/resume", json={"authorization": tokens, "governance_verified": True})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"paused", "resumed_at", "current_holder_control", "safe_to_resume"}
    assert body["paused"] is False and body["safe_to_resume"] is True and body["current_holder_control"] == 70.5
    assert (await http.get("/guardian/status")).json()["paused"] is False
    kinds = [e["event_type"] for e in (await http.get("/guardian/events", params={"limit": 200})).json()["events"]]
    assert "pause" in kinds and "resume" in kinds


async def test_pushed_readings_reach_the_guardian(http, sim):
    reading = {
        "holder_control_percentage": 65.5,
        "total_votes": 1000,
        "holder_votes": 655,
        "seller_votes": 345,
        "last_updated": datetime.now(UTC).isoformat(),
    }
    headers = {"Authorization": "Bearer push"}
    sim.sim.set_reading(65.5)  # the polled value agrees, so the pushed one is not overwritten
    resp = await http.post("/guardian/readings", json=reading, headers=headers)
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"accepted": True, "guardian": GUARDIAN_ID}
    gov = await _until(
        lambda: http.get("/guardian/governance"), lambda r: r.json()["holder_control_percentage"] == 65.5
    )
    assert gov.json()["threshold_level"] == "good"
    # An invalid reading is refused with the reason, and still audited by the guardian.
    stale = {**reading, "holder_votes": 600}
    bad = await http.post("/guardian/readings", json=stale, headers=headers)
    assert bad.status_code == 422 and "must equal total_votes" in bad.json()["error"]["message"]
    await _until(
        lambda: http.get("/guardian/events", params={"limit": 50, "event_type": "tracker_error"}),
        lambda r: len(r.json()["events"]) >= 1,
    )
    sim.sim.set_reading(70.5)


async def test_a_stale_pushed_reading_is_answered_422_with_its_age(http):
    reading = {
        "holder_control_percentage": 48.0,
        "total_votes": 10000,
        "holder_votes": 4800,
        "seller_votes": 5200,
        "last_updated": "2026-11-22T02:30:00Z",  # a fixed date: days old
    }
    resp = await http.post("/guardian/readings", json=reading, headers={"Authorization": "Bearer push"})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "stale_reading"
    assert error["message"].startswith("last_updated 2026-11-22T02:30:00Z is ")
    assert "more than the 120 s allowed" in error["message"]


async def test_govfleet_guardian_push_through_the_api(stack, http, sim):
    """The CLI's --api path: a stale reading is refused before it is sent, a fresh one is accepted."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env.update(REPO_SPEC_PATH=stack.config.settings.REPO_SPEC_PATH, GUARDIAN_PUSH_TOKEN="push")

    def push(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "govfleet.cli", "guardian", "push", "--api", stack.url, *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    fields = ["--holder-control", "64.5", "--total-votes", "1000", "--holder-votes", "645"]
    stale = await asyncio.to_thread(push, *fields, "--last-updated", "2026-11-22T02:30:00Z")
    assert stale.returncode == 1 and "stale reading" in stale.stderr and "limit of 120 s" in stale.stderr
    sim.sim.set_reading(64.5)  # the polled value agrees, so the pushed one is not overwritten
    fresh = await asyncio.to_thread(push, *fields)
    assert fresh.returncode == 0, fresh.stderr
    assert f"pushed to {GUARDIAN_ID} via {stack.url}/guardian/readings" in fresh.stderr
    await _until(lambda: http.get("/guardian/governance"), lambda r: r.json()["holder_control_percentage"] == 64.5)
    sim.sim.set_reading(70.5)


async def test_guardian_alerts_endpoint_reads_the_table(http, sim):
    sim.sim.set_reading(54.0)  # caution: an alert row (pushed, so it is checked at once)
    reading = {
        "holder_control_percentage": 54.0,
        "total_votes": 1000,
        "holder_votes": 540,
        "seller_votes": 460,
        "last_updated": datetime.now(UTC).isoformat(),
    }
    assert (
        await http.post("/guardian/readings", json=reading, headers={"Authorization": "Bearer push"})
    ).status_code == 202
    alerts = await _until(
        lambda: http.get("/guardian/alerts", params={"limit": 20}),
        lambda r: any(a["alert_type"] == "caution" for a in r.json()["alerts"]),
    )
    first = alerts.json()["alerts"][0]
    assert set(first) == {
        "id",
        "timestamp",
        "alert_type",
        "holder_control",
        "message",
        "action_taken",
        "resolved",
        "resolved_at",
    }
    assert first["resolved"] is False and first["holder_control"] == 54.0
    open_alerts = (await http.get("/guardian/alerts", params={"resolved": "false"})).json()["alerts"]
    assert [a["alert_type"] for a in open_alerts] == ["caution"]
    status = (await http.get("/guardian/status")).json()
    assert status["governance_level"] == "caution" and status["alerts_active"] == 1
    sim.sim.set_reading(70.5)

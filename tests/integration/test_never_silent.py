"""Never silent (docs/notifications.md, "Never silent"), against real PostgreSQL and real loopback
channels: an urgent notice with no channel is kept pending, said in /health and the extended
status, and delivered by the next re-send once a channel exists; a channel that fails (5xx, 4xx,
timeout) is shown with its last error until it takes a notice again; `NOTIFY_URLS=none` is a
warning, never silence; a throw-away environment and an unfunded system tenant are said too.

Before: a notification with no channel was logged once and dropped, a failing channel was only
in the worker's log, and /health said `healthy` throughout."""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest
from temporalio.exceptions import ApplicationError

import activities.notify as notify_module
from activities.notify import NotificationActivities
from govfleet.api.fleet_state import read_fleet_state
from govfleet.contracts.notifications import NotificationRequest, ResendPendingInput
from govfleet.db import create_pool
from govfleet.domain.public_keys import HARDHAT_ACCOUNTS
from govfleet.repo_spec import RepoSpec
from govfleet.settings import THROWAWAY_VARIABLE, THROWAWAY_WORDS, Config, load_settings
from tests.integration.test_status_support import api_stack
from workers.resources import Resources

GUARDIAN = "governance-guardian"
SECRET = "never-silent-webhook-secret"


def config_with(config: Config, notifications: dict, **settings: str) -> Config:
    data = config.spec.model_dump(mode="json")
    data["guardian"]["notifications"] = notifications
    return Config(settings=load_settings(settings), spec=RepoSpec.model_validate(data))


@pytest.fixture
async def fleet(config, make_database):
    """`make(notifications, environ, **settings)`: the notification activities of a worker with
    that configuration, on a database of this test's own."""
    url = make_database()
    opened: list[Resources] = []

    async def make(notifications: dict, environ: dict[str, str] | None = None, **settings: str):
        cfg = config_with(config, notifications, **settings)
        res = Resources(
            config=cfg, database_url=url, pool=await create_pool(url, max_size=2), http=httpx.AsyncClient(), client=None
        )
        opened.append(res)
        return NotificationActivities(res, environ=environ or {}), res

    make.url = url  # type: ignore[attr-defined]
    yield make
    for res in opened:
        await res.close()


def urgent_notice(kind: str = "emergency") -> NotificationRequest:
    return NotificationRequest(
        idempotency_key=f"{GUARDIAN}:1:n{uuid.uuid4().hex[:8]}",
        kind=kind,
        urgent=True,
        title=f"TIE governance alert: {kind}",
        body="Holder control 48.2% — everything paused",
        data={"guardian_id": GUARDIAN},
    )


def pending_rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT idempotency_key, delivered_at IS NOT NULL, next_attempt_at > now() + interval '50 seconds', "
            "last_error FROM notification_pending ORDER BY created_at"
        ).fetchall()


async def test_an_urgent_notice_that_reached_nobody_waits_until_a_channel_takes_it(fleet, receiver):
    nobody, res = await fleet({})  # the example's channels, unset; no channel in the environment
    notice = urgent_notice()
    result = await nobody.deliver(notice)
    assert result.pending and result.delivered == [] and result.skipped == []
    routine = await nobody.deliver(urgent_notice("caution").model_copy(update={"urgent": False}))
    assert not routine.pending  # only urgent notices are kept

    state = (await read_fleet_state(res.config, res.pool, environ={})).for_scope(GUARDIAN)
    assert state is not None and state.state == "none" and state.pending_urgent == 1
    assert any("no notification channel: its alerts reach nobody" in p for p in state.problems)
    assert any("1 urgent notice(s) reached nobody and are pending" in p for p in state.problems)

    # The heartbeat re-sends it; still nobody: it waits longer before the next try.
    again = await nobody.resend_pending(ResendPendingInput())
    assert again.still_pending == [notice.idempotency_key] and again.delivered == []
    [(key, delivered, postponed, error)] = pending_rows(fleet.url)
    assert key == notice.idempotency_key and not delivered and postponed
    assert error == "no notification channel configured"
    assert (await nobody.resend_pending(ResendPendingInput())).still_pending == []  # not due yet

    # A channel appears (a worker restarted with NOTIFY_URLS); the next re-send once it is due delivers it.
    with psycopg.connect(fleet.url, autocommit=True) as conn:
        conn.execute("UPDATE notification_pending SET next_attempt_at = now()")
    told, res = await fleet({}, NOTIFY_URLS=f"json://127.0.0.1:{receiver.port}/alerts")
    sent = await told.resend_pending(ResendPendingInput())
    assert sent.delivered == [notice.idempotency_key] and sent.still_pending == []
    assert [r.headers["x-govfleet-idempotency-key"] for r in receiver.on("/alerts")] == [notice.idempotency_key]
    assert [row[:2] for row in pending_rows(fleet.url)] == [(notice.idempotency_key, True)]
    state = (await read_fleet_state(res.config, res.pool, environ={})).for_scope(GUARDIAN)
    assert state is not None and state.state == "ok" and state.pending_urgent == 0 and state.problems == []
    assert (await told.resend_pending(ResendPendingInput())).delivered == []  # delivered once
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        ({"fail_status": 500}, "answered HTTP 500"),
        ({"fail_status": 404}, "answered HTTP 404"),
        ({"fail_delay": 2.0}, "ReadTimeout"),
    ],
)
async def test_a_failing_channel_is_retried_and_shown_with_its_last_error(fleet, receiver, monkeypatch, failure, error):
    monkeypatch.setattr(notify_module, "WEBHOOK_TIMEOUT_SECONDS", 0.5)
    hook = {"webhook": {"url": receiver.url("/hook"), "secret": "${HOOK_SECRET}"}}
    acts, res = await fleet(hook, {"HOOK_SECRET": SECRET})
    notice = urgent_notice()
    receiver.fail_first = {"/hook": 2}  # two failures, then it takes notices again
    for key, value in failure.items():
        setattr(receiver, key, value)
    for attempt in (1, 2):
        with pytest.raises(ApplicationError) as failed:
            await acts.deliver(notice, attempt=attempt)
        assert failed.value.type == "NotificationDeliveryFailed" and not failed.value.non_retryable  # retried
    state = (await read_fleet_state(res.config, res.pool, environ={"HOOK_SECRET": SECRET})).for_scope(GUARDIAN)
    assert state is not None and state.state == "failing" and state.pending_urgent == 1
    [hook_state] = state.channels
    assert hook_state.name == "webhook" and hook_state.consecutive_failures == 2
    assert error in (hook_state.last_error or ""), hook_state
    assert any("notification channel webhook is failing (2 in a row" in p and error in p for p in state.problems)

    result = await acts.deliver(notice, attempt=3)  # the channel recovered: the next retry goes through
    assert result.delivered == ["webhook"] and not result.pending
    state = (await read_fleet_state(res.config, res.pool, environ={"HOOK_SECRET": SECRET})).for_scope(GUARDIAN)
    assert state is not None and state.state == "ok" and state.problems == [] and state.pending_urgent == 0
    assert state.channels[0].last_delivered_at is not None and state.channels[0].last_error is None


async def test_health_and_the_extended_status_say_who_cannot_be_told(dev_env, make_database, tmp_path):
    url = make_database()
    admins = f'guardian:\n  admins: ["{HARDHAT_ACCOUNTS[0]}"]\n'
    charter = [{"charter": "COMMUNITY", "cron": "0 * * * *"}]
    throwaway = {THROWAWAY_VARIABLE: THROWAWAY_WORDS}
    async with (
        api_stack(dev_env, url, tmp_path, schedules=charter, environ=throwaway, extra_spec=admins) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=20) as http,
    ):
        health = (await http.get("/health")).json()
        assert health["status"] != "healthy"
        assert any(f"{GUARDIAN}: no notification channel: its alerts reach nobody" in p for p in health["problems"])
        [state] = health["notifications"]
        assert state["scope"] == GUARDIAN and state["state"] == "none"
        assert health["throwaway_environment"] is True
        assert any(
            w.startswith("THROW-AWAY ENVIRONMENT") and HARDHAT_ACCOUNTS[0].lower() in w for w in health["warnings"]
        )
        assert any(w.startswith("system tenant not funded: balance 0 credits") for w in health["warnings"])
        answer = await http.get("/api/v1/governance/status/extended")
        assert answer.status_code == 200, answer.text
        ext = answer.json()
        assert ext["throwawayEnvironment"] is True and ext["problems"] == [
            p for p in health["problems"] if p.startswith(GUARDIAN + ":")
        ]
        [guardian] = ext["guardians"]
        assert guardian["workflow_id"] == GUARDIAN and guardian["notifications"]["state"] == "none"
        assert ext["toolPolicy"]["tool_allowlist"] == []  # the migration's: no tools until a repo-spec is stored
        assert any("system tenant not funded" in w for w in ext["warnings"])

    none = {"NOTIFY_URLS": "none"}
    async with (
        api_stack(dev_env, url, tmp_path, schedules=[], environ=none, worker=False) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=20) as http,
    ):
        health = (await http.get("/health")).json()
        assert not any("notification" in p for p in health["problems"]), health["problems"]
        assert any("notifications are off on purpose (NOTIFY_URLS=none)" in w for w in health["warnings"])
        assert health["notifications"][0]["state"] == "declared_none" and health["throwaway_environment"] is False

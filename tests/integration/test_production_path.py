"""The production path, without `govfleet up`: a Temporal dev server and a PostgreSQL database of
the test's own, then `govfleet migrate`, `govfleet reconcile`, two `govfleet worker` processes and
`govfleet api`, each a separate process, with `govfleet tracker-sim` as the tracker and the breaker
targets and a loopback webhook as the operators' channel — the sequence of
tests/production_sequence.py, which docker-compose.temporal.yml runs too.

It checks, in order: the reconcile started the guardian, status and watchdog workflows; a pushed
reading below 51 % calls the redemption breaker once; kill -9 of a worker and the checks go on;
terminating the guardian is a 503 on /health naming it and one urgent notice, the next reconcile
starts it again still paused (restored from the database) with no second pause call, and a
recovery notice; the heartbeat schedule paused past interval + grace raises `heartbeat_missed`
once, /gov's heartbeat says "down", and the next heartbeat clears it with a recovery notice.
The times it measured are printed (run with -s to see them).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from govfleet.contracts.heartbeat import HEARTBEAT_SCHEDULE_ID
from govfleet.domain.public_keys import HARDHAT_ACCOUNTS
from govfleet.settings import THROWAWAY_VARIABLE, THROWAWAY_WORDS
from govfleet.temporal import connect
from tests.conftest import EXAMPLE_SPEC
from tests.integration.fleet_support import WEBHOOK_SECRET, WEBHOOK_SECRET_ENV, OwnTemporal, Receiver, wait_for
from tests.integration.guardian_support import rows
from tests.integration.production_support import Processes, listening
from tests.operator_spec import operator_spec_text
from tests.production_sequence import API, MIGRATE, RECONCILE, WORKER, WORKER_REPLICAS

pytestmark = pytest.mark.slow

GUARDIAN = "governance-guardian"
PUSH_TOKEN = "e2e-push-token"
HEARTBEAT_GRACE = 5


def production_spec(path: Path, *, tracker: str, webhook: str) -> Path:
    """The example repo-spec with the tracker and breakers at the simulator, the signed webhook as
    the only channel, a 1-minute heartbeat with 5 s grace, and a watchdog looking every 2 s."""
    data = yaml.safe_load(operator_spec_text())  # the operator's own admins, not the demo's public keys
    g = data["guardian"]
    g["tracker"]["url"] = tracker
    for b in g["breakers"]:
        b["url"] = tracker
    g["notifications"] = {"webhook": {"url": webhook, "secret": "${" + WEBHOOK_SECRET_ENV + "}"}}
    data["governance"]["heartbeat"].update(interval_minutes=1, grace_seconds=HEARTBEAT_GRACE)
    data["watchdog"] = {"check_seconds": 2}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def clean_environment() -> dict[str, str]:
    """This process's environment without anything that configures a fleet or a Temporal client."""
    ours = {"DATABASE_URL", "REPO_SPEC_PATH", "SERVICE_PORT", "SERVICE_HOST", "METRICS_PORT", "GUARDIAN_PUSH_TOKEN"}
    ours |= {"VOTING_TRACKER_URL", "REDEMPTION_ALGORITHM_URL", "TREASURY_CORE_URL", "API_READ_TOKEN"}
    return {k: v for k, v in os.environ.items() if k not in ours and not k.startswith(("TEMPORAL_", "GOVFLEET_"))}


def deployment_environment(temporal_address: str, database_url: str, spec: Path, **extra: str) -> dict[str, str]:
    """What every step of the production sequence is given: the Temporal and PostgreSQL of the
    test, the repo-spec, the API on a port the kernel picks (the API says where it listens)."""
    env = clean_environment()
    env.update(
        TEMPORAL_ADDRESS=temporal_address,
        DATABASE_URL=database_url,
        REPO_SPEC_PATH=str(spec),
        SERVICE_PORT="0",
        LOG_FORMAT="json",
        **extra,
    )
    return env


def checks(database_url: str) -> int:
    return rows(
        database_url,
        "SELECT count(*) AS n FROM governance_events WHERE guardian_id = %s AND event_type = 'governance_check'",
        GUARDIAN,
    )[0]["n"]


async def test_the_production_path(make_database, tmp_path):
    times: dict[str, float] = {}

    def mark(what: str) -> None:
        times[what] = time.monotonic()

    url = make_database(migrate=False)  # `govfleet migrate` does it
    logs = tmp_path / "logs"
    logs.mkdir()
    temporal = OwnTemporal(tmp_path / "temporal")
    receiver = await Receiver().start()
    spec = tmp_path / "repo-spec.yaml"
    procs: Processes | None = None
    try:
        await asyncio.to_thread(temporal.start)
        env = deployment_environment(
            temporal.address,
            url,
            spec,
            GUARDIAN_PUSH_TOKEN=PUSH_TOKEN,
            WORKER_SHUTDOWN_GRACE_SECONDS="5",
            **{WEBHOOK_SECRET_ENV: WEBHOOK_SECRET},
        )
        procs = Processes(env=env, logs=logs)
        tracker = procs.start("tracker-sim", "tracker-sim", "--port", "0", "--scenario", "steady")
        sim = await wait_for(
            lambda: listening(tracker, "tracker simulator on "), 60, "the tracker simulator", *procs.started
        )
        production_spec(spec, tracker=sim, webhook=receiver.url)

        migrated = procs.run("migrate", *MIGRATE)
        assert migrated.returncode == 0, migrated.stdout
        reconciled = procs.run("reconcile", *RECONCILE)
        assert reconciled.returncode == 0, reconciled.stdout
        for wid in (GUARDIAN, "governance-watchdog"):
            assert f"+ create     {wid}" in reconciled.stdout, reconciled.stdout
        # (the status read model may already run: the schedules' reconcile tells it, with signal-with-start)
        assert "governance-status" in reconciled.stdout
        workers = [procs.start(f"worker-{i}", *WORKER) for i in range(WORKER_REPLICAS)]
        api_proc = procs.start("api", *API)
        api = await wait_for(lambda: listening(api_proc, "serving on "), 60, "the API listening", *procs.started)
        client = await connect(temporal.address)
        http = httpx.AsyncClient(base_url=api, timeout=10)
        try:
            for w in workers:
                await wait_for(
                    lambda w=w: "worker polling" in w.log_tail(200_000), 90, f"{w.name} polling", *procs.started
                )

            async def health() -> dict:
                try:
                    return (await http.get("/health")).json()
                except (httpx.HTTPError, ValueError):
                    return {}

            async def all_running() -> bool:
                h = await health()
                return bool(h.get("workflows")) and all(w["running"] for w in h["workflows"])

            await wait_for(all_running, 90, "guardian, status and watchdog running (/health)", *procs.started)
            for w in workers:  # each worker's start says where its notifications go
                assert '"channels": "governance-guardian: webhook"' in w.log_tail(200_000), w.log_tail(3000)
            await client.get_schedule_handle(HEARTBEAT_SCHEDULE_ID).trigger()  # one heartbeat now

            # 1. A pushed reading below 51 %: the redemption breaker, once.
            async def sim_calls() -> list[dict]:
                return (await http.get(f"{sim}/sim/calls")).json()["calls"]

            await http.post(f"{sim}/sim/reading", json={"holder_control_percentage": 50.5})
            reading = {
                "holder_control_percentage": 50.5,
                "total_votes": 10_000,
                "holder_votes": 5_050,
                "seller_votes": 4_950,
                "last_updated": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            }
            mark("push")
            pushed = await http.post(
                "/guardian/readings", json=reading, headers={"Authorization": f"Bearer {PUSH_TOKEN}"}
            )
            assert pushed.status_code == 202, pushed.text

            async def paused_once() -> list[dict]:
                return [c for c in await sim_calls() if c["action"] == "pause"]

            [pause] = await wait_for(paused_once, 30, "the redemption breaker's pause call", *procs.started)
            mark("pause call")
            assert pause["service"] == "redemption-algorithm" and not pause["duplicate"]
            pause_key = pause["idempotency_key"]
            assert pause_key.startswith(f"{GUARDIAN}:pause-")

            # `govfleet status` where the operator runs it (the deployment's environment): each guardian.
            async def paused_status() -> str | None:
                out = procs.run("status", "status").stdout
                return out if "redemptions_paused since" in out else None

            table = await wait_for(paused_status, 60, "`govfleet status` showing the pause", *procs.started)
            guardian = table[table.index("Guardians") :]
            assert f"  {GUARDIAN}\n" in guardian and "level           critical, holder control 50.5 %" in guardian
            assert "open alerts     critical" in guardian and "forensic audit  not required" in guardian
            assert re.search(r"last check      \d+ s ago \(every 1 s\)", guardian), guardian
            assert "notifications   ok: webhook" in guardian, guardian
            said = await health()
            assert [n["state"] for n in said["notifications"]] == ["ok"], said

            # The heartbeat succeeded once; now its schedule is paused (the dead-man's switch's turn).
            await wait_for(
                lambda: rows(url, "SELECT 1 FROM heartbeat_events WHERE status <> 'failed'"),
                60,
                "a heartbeat",
                *procs.started,
            )
            last_beat = rows(url, "SELECT max(time) AS t FROM heartbeat_events")[0]["t"]
            await client.get_schedule_handle(HEARTBEAT_SCHEDULE_ID).pause(note="e2e: dead-man's switch")
            mark("heartbeat paused")

            # 2. kill -9 of a worker: the checks go on (1 s checks at the critical level).
            before = checks(url)
            workers[0].kill9()
            mark("worker killed")
            await wait_for(lambda: checks(url) >= before + 3, 60, "three checks after the kill", *procs.started)
            mark("checks after kill")

            # 3. The guardian terminated: /health names it, one urgent notice; reconcile brings it back.
            await client.get_workflow_handle(GUARDIAN).terminate("e2e: terminated by an operator")
            mark("terminated")

            async def guardian_named_down() -> dict | None:
                resp = await http.get("/health")
                body = resp.json()
                named = any(GUARDIAN in p and "TERMINATED" in p for p in body.get("problems", []))
                return body if resp.status_code == 503 and body["status"] == "unhealthy" and named else None

            await wait_for(guardian_named_down, 30, "/health 503 naming the guardian", *procs.started)
            mark("health 503")

            def notices(kind: str, incident: str | None = None) -> list:
                return [
                    d
                    for d in receiver.unique()
                    if d.body.get("kind") == kind
                    and (incident is None or d.body.get("data", {}).get("incident") == incident)
                ]

            await wait_for(lambda: notices("guardian_down"), 60, "the guardian_down notice", *procs.started)
            mark("guardian_down notice")
            [down] = notices("guardian_down")
            assert down.signed and down.body["urgent"] and down.body["data"]["subject"] == GUARDIAN

            again = procs.run("reconcile-again", *RECONCILE)
            assert again.returncode == 0, again.stdout
            assert f"+ create     {GUARDIAN}" in again.stdout and "terminated" in again.stdout, again.stdout
            assert "= unchanged  governance-watchdog" in again.stdout, again.stdout
            mark("reconciled")
            restarted = await wait_for(
                lambda: rows(
                    url,
                    "SELECT details FROM governance_events WHERE guardian_id = %s AND event_type = 'guardian_restored'",
                    GUARDIAN,
                ),
                60,
                "the guardian restored from the database",
                *procs.started,
            )
            assert pause_key in restarted[0]["details"], restarted

            async def restored_status() -> dict | None:
                body = (await http.get("/guardian/status")).json()
                return body if body.get("last_check") and body.get("paused") else None

            status = await wait_for(
                restored_status, 60, "the restarted guardian checking, still paused", *procs.started
            )
            assert status["system_status"] == "redemptions_paused" and status["governance_level"] == "critical"
            settled = checks(url)
            await wait_for(
                lambda: checks(url) >= settled + 3, 60, "three checks of the restarted guardian", *procs.started
            )
            assert [c["idempotency_key"] for c in await paused_once()] == [pause_key]  # no second pause call
            await wait_for(
                lambda: notices("recovery", "guardian_down"), 60, "the guardian's recovery notice", *procs.started
            )
            mark("guardian recovery notice")
            assert len(notices("guardian_down")) == 1

            # 4. The dead-man's switch: no successful heartbeat within interval + grace.
            await wait_for(lambda: notices("heartbeat_missed"), 150, "heartbeat_missed", *procs.started)
            mark("heartbeat_missed notice")
            heartbeat = (await http.get("/api/v1/governance/heartbeat")).json()
            assert heartbeat["state"] == "down" and heartbeat["missed_since"], heartbeat
            missed_after = (datetime.now(UTC) - last_beat).total_seconds()
            assert missed_after >= 60 + HEARTBEAT_GRACE, missed_after
            await client.get_schedule_handle(HEARTBEAT_SCHEDULE_ID).unpause(note="e2e: back")
            await client.get_schedule_handle(HEARTBEAT_SCHEDULE_ID).trigger()
            mark("heartbeat resumed")
            await wait_for(
                lambda: notices("recovery", "heartbeat_missed"), 60, "the heartbeat's recovery notice", *procs.started
            )
            mark("heartbeat recovery notice")
            assert len(notices("heartbeat_missed")) == 1
            assert (await http.get("/api/v1/governance/heartbeat")).json()["state"] != "down"
        finally:
            await http.aclose()
        # Everything stops on SIGTERM (the killed worker aside), cleanly.
        codes = {p.name: p.stop() for p in reversed(procs.started) if p.alive()}
        assert all(code == 0 for code in codes.values()), (codes, [(p.name, p.log_tail(2000)) for p in procs.started])
    finally:
        if procs is not None:
            procs.stop_all()
        await asyncio.to_thread(temporal.stop)
        await receiver.stop()
    t = times
    print(
        "\nproduction path, measured: "
        f"push -> pause call {t['pause call'] - t['push']:.2f} s; "
        f"kill -9 -> 3 more checks {t['checks after kill'] - t['worker killed']:.1f} s; "
        f"terminate -> /health 503 {t['health 503'] - t['terminated']:.1f} s, "
        f"-> guardian_down notice {t['guardian_down notice'] - t['terminated']:.1f} s; "
        f"reconcile -> recovery notice {t['guardian recovery notice'] - t['reconciled']:.1f} s; "
        f"heartbeat paused -> heartbeat_missed {t['heartbeat_missed notice'] - t['heartbeat paused']:.1f} s "
        f"(last heartbeat {missed_after:.0f} s before), resumed -> recovery "
        f"{t['heartbeat recovery notice'] - t['heartbeat resumed']:.1f} s"
    )


PUBLIC_ADMIN = HARDHAT_ACCOUNTS[0].lower()  # the example repo-spec's first admin: Hardhat/Anvil account #0


async def test_a_deployment_with_public_admin_keys_refuses_to_start(make_database, tmp_path):
    """Before: a deployment made from the example repo-spec (whose admins are the public Hardhat
    accounts 0 and 1) started, and a pause signed with Hardhat key 0 was accepted. Now each step of
    the production sequence refuses, with one line naming the address, and changes nothing —
    unless the operator declares a throw-away environment, which /health and the logs then say."""
    url = make_database(migrate=False)
    logs = tmp_path / "logs"
    logs.mkdir()
    temporal = OwnTemporal(tmp_path / "temporal")
    procs: Processes | None = None
    try:
        await asyncio.to_thread(temporal.start)
        env = deployment_environment(temporal.address, url, EXAMPLE_SPEC, GOVFLEET_DATA_DIR=str(tmp_path / "data"))
        procs = Processes(env=env, logs=logs)
        for name, args in [("migrate", MIGRATE), ("reconcile", RECONCILE), ("worker", WORKER), ("api", API)]:
            done = procs.run(f"{name}-refused", *args, timeout=60)
            lines = [line for line in done.stdout.splitlines() if line.strip()]
            assert done.returncode == 2, (name, done.stdout)
            assert len(lines) == 1 and lines[0].startswith("govfleet: error: "), (name, done.stdout)
            assert f"`govfleet {name}` refuses to start" in lines[0] and PUBLIC_ADMIN in lines[0], lines[0]
            assert "Hardhat/Anvil test account #0" in lines[0] and THROWAWAY_VARIABLE in lines[0]
        # Nothing was changed: no schema, no schedule, no workflow.
        assert rows(url, "SELECT to_regclass('public.credit_ledger') IS NULL AS empty")[0]["empty"]
        client = await connect(temporal.address)
        assert [s async for s in await client.list_schedules()] == []
        assert (await client.count_workflows()).count == 0

        # A throw-away environment, declared in so many words: they start, and say so.
        throwaway = {THROWAWAY_VARIABLE: THROWAWAY_WORDS}
        procs.env.update(throwaway)
        migrated = procs.run("migrate", *MIGRATE)
        assert migrated.returncode == 0, migrated.stdout
        assert (
            "THROW-AWAY ENVIRONMENT (GOVFLEET_THROWAWAY_ENVIRONMENT)" in migrated.stdout
            and PUBLIC_ADMIN in migrated.stdout
        )
        worker = procs.start("worker", *WORKER)
        api_proc = procs.start("api", *API)
        api = await wait_for(lambda: listening(api_proc, "serving on "), 60, "the API listening", *procs.started)
        await wait_for(lambda: "worker polling" in worker.log_tail(200_000), 90, "the worker polling", *procs.started)
        assert "THROW-AWAY ENVIRONMENT" in worker.log_tail(200_000) and "THROW-AWAY ENVIRONMENT" in api_proc.log_tail()
        # The example's channels are `${VAR}`s nobody set here: the worker's start says nobody is told.
        assert "governance-guardian: no notification channel: its alerts reach nobody" in worker.log_tail(200_000)
        async with httpx.AsyncClient(base_url=api, timeout=10) as http:
            health = (await http.get("/health")).json()
        assert health["throwaway_environment"] is True
        [said] = [w for w in health["warnings"] if w.startswith("THROW-AWAY ENVIRONMENT")]
        assert PUBLIC_ADMIN in said and HARDHAT_ACCOUNTS[1].lower() in said
        codes = {p.name: p.stop() for p in (api_proc, worker)}
        assert codes == {"api": 0, "worker": 0}, [p.log_tail(2000) for p in (api_proc, worker)]
    finally:
        if procs is not None:
            procs.stop_all()
        await asyncio.to_thread(temporal.stop)

"""The tracker simulator over real HTTP (`govfleet tracker-sim` as a process), its control
API and breaker endpoints; starting / reconfiguring the guardian the way `govfleet up` does."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
import pytest

from govfleet.commands.guardian import demo_config
from govfleet.domain.guardian.readings import InvalidReading, validate_reading
from govfleet.repo_spec import guardian_config
from govfleet.simulator import SCENARIOS, TrackerSimulator, start_simulator
from tests import processes
from tests.conftest import REPO_ROOT
from tests.integration.fleet_support import ensure_guardian
from tests.integration.guardian_support import (
    NotificationRecorder,
    eventually,
    guardian_worker,
    new_guardian_id,
    rows,
    settle,
)
from workflows.guardian import GuardianWorkflow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sim_process():
    procs = []

    def start(*args: str) -> str:
        port = free_port()
        proc = processes.spawn(
            [sys.executable, "-m", "govfleet.cli", "tracker-sim", "--port", str(port), *args],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        procs.append(proc)
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/sim/state", timeout=1)
                return f"http://127.0.0.1:{port}"
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"tracker-sim did not start: {proc.stdout.read()}") from None
                time.sleep(0.1)

    yield start
    running = [proc for proc in procs if proc.poll() is None]
    codes = [processes.stop(proc, sig=signal.SIGINT, timeout=10) for proc in procs]
    assert all(code == 0 for proc, code in zip(procs, codes, strict=True) if proc in running), (
        codes
    )  # Ctrl-C stops it cleanly


def test_tracker_sim_serves_a_scenario_and_records_breaker_calls(sim_process):
    url = sim_process("--scenario", "rapid-drop", "--per-request")
    now = datetime.now(UTC)
    values = [
        validate_reading(
            httpx.get(f"{url}/voting/governance").json(), now=now, staleness_seconds=120
        ).holder_control_percentage
        for _ in range(5)
    ]
    assert values == [70.0, 70.0, 70.0, 48.0, 48.0]

    assert httpx.post(f"{url}/admin/pause", json={"service": "redemption-algorithm"}).status_code == 400
    body = {"idempotency_key": "g:pause-1", "service": "redemption-algorithm", "scope": "redemptions"}
    first = httpx.post(f"{url}/admin/pause", json=body).json()
    again = httpx.post(f"{url}/admin/pause", json=body).json()
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    calls = httpx.get(f"{url}/sim/calls").json()["calls"]
    assert [(c["action"], c["status"], c["duplicate"]) for c in calls] == [
        ("pause", 400, False),
        ("pause", 200, False),
        ("pause", 200, True),
    ]
    assert httpx.get(f"{url}/sim/state").json()["paused_services"] == ["redemption-algorithm"]

    # Control API: hold a value, script values, inject failures, reject bad input.
    assert httpx.post(f"{url}/sim/reading", json={"holder_control_percentage": 51.25}).status_code == 200
    assert httpx.get(f"{url}/voting/governance").json()["holder_control_percentage"] == 51.25
    httpx.post(f"{url}/sim/reading", json={"values": [60, "stale"], "per_request": True})
    assert httpx.get(f"{url}/voting/governance").json()["holder_control_percentage"] == 60.0
    with pytest.raises(InvalidReading) as info:
        validate_reading(httpx.get(f"{url}/voting/governance").json(), now=datetime.now(UTC), staleness_seconds=120)
    assert info.value.code == "stale"
    bad = httpx.post(f"{url}/sim/reading", json={"values": ["nonsense"]})
    assert bad.status_code == 400 and "unknown garbage kind 'nonsense'" in bad.json()["error"]
    assert httpx.post(f"{url}/sim/scenario", json={"scenario": "sideways"}).status_code == 400
    httpx.post(f"{url}/sim/fail", json={"action": "resume", "times": 1, "status": 502})
    assert httpx.post(f"{url}/admin/resume", json=body).status_code == 502
    assert httpx.post(f"{url}/admin/resume", json=body).status_code == 200


def test_garbage_scenario_is_invalid_every_time(sim_process):
    url = sim_process("--scenario", "garbage", "--per-request")
    codes = []
    for _ in range(len(SCENARIOS["garbage"])):
        resp = httpx.get(f"{url}/voting/governance")
        if resp.status_code != 200:
            codes.append("http_error")
            continue
        try:
            validate_reading(json.loads(resp.text), now=datetime.now(UTC), staleness_seconds=120)
        except InvalidReading as exc:
            codes.append(exc.code)
        except json.JSONDecodeError:
            codes.append("not_json")
    assert codes == [
        "out_of_range",
        "votes_mismatch",
        "stale",
        "not_json",
        "http_error",
        "missing_field",
        "not_a_number",
    ]


def test_time_based_steps():
    clock = [0.0]
    sim = TrackerSimulator(scenario="gradual-decline", step_seconds=8, clock=lambda: clock[0])
    assert sim.current_value() == 70.0
    clock[0] = 8 * 16 + 1
    assert sim.current_value() == 54.5  # the caution band: 54.5 .. 52, a step each
    clock[0] = 8 * 22 + 1
    assert sim.current_value() == 51.5
    clock[0] = 10_000
    assert sim.current_value() == 48.5  # the last value is held
    osc = TrackerSimulator(scenario="oscillate", step_seconds=1, clock=lambda: clock[0])
    clock[0] += 10
    assert osc.current_value() == SCENARIOS["oscillate"][0]  # cyclic


def test_unknown_scenario_is_a_clear_error():
    proc = subprocess.run(
        [sys.executable, "-m", "govfleet.cli", "tracker-sim", "--scenario", "sideways"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--scenario 'sideways' is not a tracker scenario; use one of steady, gradual-decline" in proc.stderr


async def test_up_starts_then_reconfigures_the_guardian(dev_env, task_queue, config, database_url):
    running = await start_simulator(TrackerSimulator(scenario="steady"))
    try:
        demo = demo_config(config, running)
        cfg = guardian_config(demo.spec.guardian, guardian_id=new_guardian_id())
        assert cfg.tracker_url == running.url
        assert {b.url for b in cfg.breakers} == {running.url}  # the demo targets point at the simulator
        async with guardian_worker(dev_env.client, task_queue, config, database_url, NotificationRecorder()):
            handle = await ensure_guardian(dev_env.client, task_queue, cfg, expect="started")
            await ensure_guardian(dev_env.client, task_queue, cfg, expect="unchanged")
            faster = cfg.model_copy(update={"rules": cfg.rules.model_copy(update={"monitoring_interval_normal": 7})})
            await ensure_guardian(dev_env.client, task_queue, faster, expect="reconfigured")

            async def applied():
                return (await handle.query(GuardianWorkflow.status)).check_interval_seconds == 7

            await eventually(applied)
            # The guardian recorded the new configuration's hash: the next reconcile sends nothing.
            await eventually(lambda: _reconciled(dev_env.client, task_queue, faster))

            def config_events() -> list:
                got = rows(
                    database_url,
                    "SELECT details FROM governance_events WHERE guardian_id = %s AND event_type = 'config_changed'",
                    handle.id,
                )
                return [r["details"] for r in got]

            # The query sees the new rules as soon as the workflow applied them; the audit row is
            # written by the local activity that follows.
            await eventually(config_events)
            assert config_events() == ["changed: rules"]
            await settle(handle)
            await handle.terminate("test over")
    finally:
        await running.stop()


async def _reconciled(client, task_queue, cfg) -> bool:
    from schedules.declared import declared_guardian
    from schedules.workflows import reconcile_workflows

    report = await reconcile_workflows(
        client, None, task_queue=task_queue, declared=[declared_guardian(cfg)], dry_run=True
    )
    return report.items[0].action == "unchanged"


def test_demo_config_without_simulator_is_the_repo_spec(config):
    assert demo_config(config, None) is config
    cfg = guardian_config(demo_config(config, None).spec.guardian)
    assert cfg.guardian_id == "governance-guardian"
    assert cfg.tracker_url == config.spec.guardian.tracker.url
    assert [b.url for b in cfg.breakers] == [b.url for b in config.spec.guardian.breakers]


async def test_up_fits_the_demo_decline_to_the_guardians_rules():
    """`govfleet up` hands the guardian's rules to the simulator: with a 60 s normal interval
    the caution band of the demo lasts at least 75 s (docs/guardian.md, "The tracker simulator")."""
    import argparse
    from decimal import Decimal

    from govfleet.commands.guardian import start_simulator_for_up
    from govfleet.commands.up_services import Services
    from govfleet.domain.guardian.levels import GuardianRules

    services = Services()
    args = argparse.Namespace(no_simulator=False, scenario="gradual-decline", tracker_port=free_port())
    running = await start_simulator_for_up(args, services, GuardianRules(monitoring_interval_normal=60))
    try:
        assert running is not None
        values = running.sim.values
        caution = [v for v in values if Decimal("52") <= Decimal(str(v)) < Decimal("55")]
        assert len(caution) * running.sim.step_seconds >= 60 + 15
        assert values != SCENARIOS["gradual-decline"]  # the default one is fitted to 30 s
        async with httpx.AsyncClient() as http:  # the simulator serves in this event loop
            reading = (await http.get(f"{running.url}/voting/governance", timeout=10)).json()
        assert reading["holder_control_percentage"] == 70.0
    finally:
        await services.stop()

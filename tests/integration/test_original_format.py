"""The original system's repo-spec against the real dev server: its own files of both eras
reconcile unchanged (a second reconcile writes nothing); its schedules, as its sync creates them,
are blocked until `--adopt` takes them over by recreating them with our memo (paused state kept),
after which they are found, updated and deleted like our own; its LEDGER_INGEST keeps running on
its own workers; our own schedules under the old ids move to the new ones without a double run; a
free-word governance run reaches a loopback gateway — plain HTTP named in the file, or OpenClaw's
protocol at OPENCLAW_GATEWAY_URL."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import psycopg
import pytest
from temporalio import workflow
from temporalio.client import (
    Client,
    CreateScheduleInput,
    DeleteScheduleInput,
    Interceptor,
    OutboundInterceptor,
    PauseScheduleInput,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.worker import Worker

from govfleet.contracts.heartbeat import HEARTBEAT_SCHEDULE_ID
from govfleet.domain.status import upcoming_runs
from govfleet.repo_spec import parse_repo_spec
from schedules.desired import default_owner, desired_schedules
from schedules.observed import observe_schedules
from schedules.reconciler import (
    actual_from_description,
    build_schedule,
    describe_or_none,
    reconcile,
    schedule_memo,
)
from tests.integration.schedules_support import LoopbackServer, fleet_worker, fund_system_tenant, govfleet
from tests.openclaw_standin import openclaw_standin

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TODAY = FIXTURES / "original-cfc15e773-repo-spec.yaml"
TODAY_OPERATOR = FIXTURES / "original-cfc15e773-operator-repo-spec.yaml"
SEED_ERA = FIXTURES / "original-c18496a19-repo-spec.yaml"
LEDGER_ID = "governance:ledger_ingest"
# A file of our own in the original's format with free words for its gateway.
FREE_WORDS = """\
governance:
  schedules:
    - {charter: COMMUNITY, cron: "0 */6 * * *", timezone: UTC, entrypoint: GOVERN}
    - {charter: HEARTBEAT, cron: "0 * * * *", timezone: UTC, entrypoint: HEARTBEAT}
    - {charter: ENGINEERING, cron: "30 9 * * 1-5", timezone: Europe/Berlin, entrypoint: ENGINEERING}
"""


def original_text(tag: str, gateway: str | None = None) -> str:
    """FREE_WORDS with its charters made unique to this test (HEARTBEAT stays the heartbeat)."""
    text = FREE_WORDS
    for charter in ("COMMUNITY", "ENGINEERING"):
        text = text.replace(f"charter: {charter}", f"charter: {charter}{tag}")
    if gateway:
        text = text.replace("governance:\n", f"governance:\n  agent_gateway: {gateway}\n", 1)
    return text


async def delete_all(client: Client, ids: list[str]) -> None:
    for sid in ids:
        if await describe_or_none(client, sid) is not None:
            await client.get_schedule_handle(sid).delete()


def originals_schedule(
    sid: str, cron: str, *, paused: bool = False, note: str = "", workflow_type: str = "GraphRunWorkflow", args=None
) -> Schedule:
    """A schedule as the original system's sync creates it: its workflow, its task queue, its
    argument envelope, no memo."""
    envelope = args or {
        "nodeId": "4ff8eac1-4eba-4ed0-931b-b1fe4f64713d",
        "graphId": "sandbox:openclaw",
        "executionGrantId": "5d1c2b8e-9f4a-4c3e-8b7a-6f5e4d3c2b1a",
        "input": {"message": sid.split(":")[1].upper(), "model": "kimi-k2.5"},
        "runKind": "system_scheduled",
        "triggerSource": "temporal_schedule",
        "triggerRef": sid,
        "requestedBy": "00000000-0000-4000-a000-000000000001",
        "dbScheduleId": "0e9d8c7b-6a5f-4e3d-9c2b-1a0f9e8d7c6b",
        "temporalScheduleId": sid,
    }
    queue = "ledger-tasks" if workflow_type == "CollectEpochWorkflow" else "scheduler-tasks"
    return Schedule(
        action=ScheduleActionStartWorkflow(workflow_type, envelope, id=sid, task_queue=queue),
        spec=ScheduleSpec(cron_expressions=[cron], time_zone_name="UTC"),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(seconds=10)),
        state=ScheduleState(paused=paused, note=note),
    )


async def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def reconcile_env(client: Client, path: Path, task_queue: str, **extra: str) -> dict[str, str]:
    return {
        "REPO_SPEC_PATH": str(path),
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": task_queue,
        **extra,
    }


@pytest.mark.parametrize(
    ("path", "expected", "listed"),
    [
        (
            TODAY,
            {HEARTBEAT_SCHEDULE_ID: "GovernanceHeartbeat", LEDGER_ID: "CollectEpochWorkflow"},
            {"Heartbeat", "Ledger Ingest"},
        ),
        # No HEARTBEAT entry: our interval heartbeat, which is no charter and is not listed.
        (
            TODAY_OPERATOR,
            {HEARTBEAT_SCHEDULE_ID: "GovernanceHeartbeat", LEDGER_ID: "CollectEpochWorkflow"},
            {"Ledger Ingest"},
        ),
        (SEED_ERA, {HEARTBEAT_SCHEDULE_ID: "GovernanceHeartbeat"}, {"Heartbeat"}),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else "",
)
async def test_the_originals_own_files_reconcile_unchanged(dev_env, task_queue, path, expected, listed):
    """The file as the original has it, byte for byte: reconciled, then nothing left to do."""
    client = dev_env.client
    env = reconcile_env(client, path, task_queue)
    try:
        first = govfleet("reconcile", env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert f"Applied: {len(expected)} created ({len(expected)} writes)." in first.stdout
        assert "governance-guardian" not in first.stdout  # it declares none: none is started
        for sid, workflow_type in expected.items():
            desc = await client.get_schedule_handle(sid).describe()
            assert desc.schedule.action.workflow == workflow_type
        if LEDGER_ID in expected:
            action = (await client.get_schedule_handle(LEDGER_ID).describe()).schedule.action
            assert action.task_queue == "ledger-tasks" and action.execution_timeout is None
        # Listed as the original's status page lists them: the HEARTBEAT entry as "Heartbeat".
        spec = parse_repo_spec(path.read_text())
        seen = await observe_schedules(client, spec, task_queue)
        now = datetime.now(UTC)
        assert {r.name for r in upcoming_runs(seen.charters, now)} == listed
        second = govfleet("reconcile", env=env)
        assert second.returncode == 0 and f"Applied: {len(expected)} unchanged (0 writes)." in second.stdout, (
            second.stdout
        )
    finally:
        await delete_all(client, list(expected))


def test_a_task_queue_of_the_originals_workers_is_refused_before_anything_is_touched(tmp_path):
    path = tmp_path / "repo-spec.yaml"
    path.write_bytes(TODAY.read_bytes())
    env = {"REPO_SPEC_PATH": str(path), "TEMPORAL_ADDRESS": "127.0.0.1:9", "TEMPORAL_TASK_QUEUE": "scheduler-tasks"}
    for command in (("reconcile",), ("worker",)):
        refused = govfleet(*command, env=env)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "TEMPORAL_TASK_QUEUE: 'scheduler-tasks' is a task queue the original system's workers poll" in (
            refused.stderr
        )


async def test_reconcile_refuses_then_adopts_the_originals_schedules(dev_env, tmp_path, task_queue):
    client = dev_env.client
    tag = uuid.uuid4().hex[:8]
    community, engineering = f"governance:community{tag}", f"governance:engineering{tag}"
    ids = [HEARTBEAT_SCHEDULE_ID, community, engineering]
    path = tmp_path / "repo-spec.yaml"
    env = reconcile_env(client, path, task_queue)
    with_gateway = {**env, "OPENCLAW_GATEWAY_URL": "http://127.0.0.1:9/gateway"}
    try:
        # 1. No gateway in the file nor in the environment: refused, one line per charter, exit 2.
        path.write_text(original_text(tag))
        refused = govfleet("reconcile", env=env)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert refused.stdout == ""
        assert refused.stderr.splitlines() == [
            f"govfleet: error: governance.schedules[{i}]: charter '{charter}{tag}' has entrypoint '{word}', which is "
            "handed to the agent gateway, but neither governance.agent_gateway.url nor OPENCLAW_GATEWAY_URL is set"
            for i, charter, word in ((0, "COMMUNITY", "GOVERN"), (2, "ENGINEERING", "ENGINEERING"))
        ]
        assert all([await describe_or_none(client, sid) is None for sid in ids])

        # 2. The original's sync created its schedules (no memo); one is paused.
        await client.create_schedule(HEARTBEAT_SCHEDULE_ID, originals_schedule(HEARTBEAT_SCHEDULE_ID, "0 * * * *"))
        await client.create_schedule(community, originals_schedule(community, "0 */6 * * *"))
        await client.create_schedule(
            engineering, originals_schedule(engineering, "30 9 * * 1-5", paused=True, note="held by the DAO")
        )

        # 3. The gateway from the environment, as the original reads it; without --adopt: blocked.
        blocked = govfleet("reconcile", env=with_gateway)
        assert blocked.returncode == 1, blocked.stdout + blocked.stderr
        assert f"! blocked    {community}" in blocked.stdout and "--adopt takes it over" in blocked.stdout
        assert "--adopt takes them over" in blocked.stderr
        assert (await client.get_schedule_handle(community).describe()).schedule.action.workflow == "GraphRunWorkflow"

        # 4. --adopt --dry-run shows the takeover and changes nothing.
        dry = govfleet("reconcile", "--adopt", "--dry-run", env=with_gateway)
        assert dry.returncode == 0, dry.stderr
        assert f"^ adopt      {community}" in dry.stdout and f"^ adopt      {engineering}" in dry.stdout
        assert "Plan: 0 to create, 0 to update, 0 to delete, 0 unchanged, 0 blocked, 3 to adopt." in dry.stdout
        assert (await client.get_schedule_handle(community).describe()).schedule.action.workflow == "GraphRunWorkflow"

        # 5. --adopt: recreated as ours (both memos), the paused one still paused with its note.
        adopted = govfleet("reconcile", "--adopt", env=with_gateway)
        assert adopted.returncode == 0, adopted.stdout + adopted.stderr
        assert "Applied: 3 adopted" in adopted.stdout
        spec = parse_repo_spec(path.read_text())
        owner = default_owner(spec)
        for sid in ids:
            desc = await client.get_schedule_handle(sid).describe()
            actual = await actual_from_description(client, desc)
            assert actual.owner == owner and not actual.unlisted and actual.observed["task_queue"] == task_queue
        eng = await client.get_schedule_handle(engineering).describe()
        assert eng.schedule.state.paused and eng.schedule.state.note == "held by the DAO"
        assert eng.schedule.action.workflow == "GovernanceRun"
        hb = await client.get_schedule_handle(HEARTBEAT_SCHEDULE_ID).describe()
        assert hb.schedule.action.workflow == "GovernanceHeartbeat"
        assert all(t.minute == 0 for t in hb.info.next_action_times)

        # 6. Found as our own: by listing (what the delete step and the status surface search).
        async def listed():
            return set(ids) <= await listed_owned_ids_of_owner(client, owner)

        await wait_for(listed, 30, "the adopted schedules to be listed with our owner")
        seen = await observe_schedules(client, spec, task_queue)
        assert {e.schedule_id for e in seen.charters} >= {community, HEARTBEAT_SCHEDULE_ID}
        again = govfleet("reconcile", env=with_gateway)
        assert again.returncode == 0 and "(0 writes)" in again.stdout, again.stdout + again.stderr

        # 7. Updated like our own, then deleted like our own once the charters leave the file.
        path.write_text(original_text(tag).replace('"0 */6 * * *"', '"0 */4 * * *"'))
        edited = govfleet("reconcile", env=with_gateway)
        assert edited.returncode == 0 and f"~ update     {community}" in edited.stdout, edited.stdout
        path.write_text(FREE_WORDS.split("    - {charter: COMMUNITY")[0] + FREE_WORDS.splitlines(keepends=True)[3])
        removed = govfleet("reconcile", env=with_gateway)
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert f"- delete     {community}" in removed.stdout and f"- delete     {engineering}" in removed.stdout
        assert await describe_or_none(client, community) is None
        assert await describe_or_none(client, engineering) is None
    finally:
        await delete_all(client, ids)


@workflow.defn(name="CollectEpochWorkflow", sandboxed=False)
class OriginalsCollectEpoch:
    """Stands in for the original's worker on its ledger queue: records what it was started with."""

    @workflow.run
    async def run(self, args: dict) -> dict:
        return args


async def test_the_originals_ledger_ingestion_keeps_running_on_its_own_workers(dev_env, tmp_path, task_queue):
    """The original's LEDGER_INGEST schedule, taken over: still CollectEpochWorkflow on ledger-tasks,
    and the original's workflow gets the input it got before (its own workers run it)."""
    client = dev_env.client
    original = parse_repo_spec(TODAY.read_text())
    ours = {d.schedule_id: d for d in desired_schedules(original, task_queue)}[LEDGER_ID]
    # As the original's sync writes it: the same input, its database's ids in the envelope.
    theirs = {**ours.args, "executionGrantId": "5d1c2b8e-9f4a", "dbScheduleId": "0e9d8c7b-6a5f"}
    ids = [HEARTBEAT_SCHEDULE_ID, LEDGER_ID]
    env = reconcile_env(client, TODAY, task_queue)
    try:
        await client.create_schedule(HEARTBEAT_SCHEDULE_ID, originals_schedule(HEARTBEAT_SCHEDULE_ID, "0 * * * *"))
        await client.create_schedule(
            LEDGER_ID, originals_schedule(LEDGER_ID, "0 6 * * *", workflow_type="CollectEpochWorkflow", args=theirs)
        )
        adopted = govfleet("reconcile", "--adopt", env=env)
        assert adopted.returncode == 0, adopted.stdout + adopted.stderr
        assert "Applied: 2 adopted" in adopted.stdout
        assert 'task_queue: "scheduler-tasks" → "' in adopted.stdout  # the heartbeat moves to our queue…
        ledger_line = next(line for line in adopted.stdout.splitlines() if LEDGER_ID in line)
        assert "→ CollectEpochWorkflow on ledger-tasks" in ledger_line  # …the ingestion stays where it was
        desc = await client.get_schedule_handle(LEDGER_ID).describe()
        assert (desc.schedule.action.workflow, desc.schedule.action.task_queue) == (
            "CollectEpochWorkflow",
            "ledger-tasks",
        )
        async with Worker(client, task_queue="ledger-tasks", workflows=[OriginalsCollectEpoch]):
            await client.get_schedule_handle(LEDGER_ID).trigger()

            async def ran():
                desc = await client.get_schedule_handle(LEDGER_ID).describe()
                return desc.info.recent_actions

            (action,) = await wait_for(ran, 60, "the ingestion to start")
            got = await client.get_workflow_handle(action.action.workflow_id).result()
        assert got["input"] == theirs["input"] and got["nodeId"] == theirs["nodeId"]
        again = govfleet("reconcile", env=env)
        assert again.returncode == 0 and "Applied: 2 unchanged (0 writes)." in again.stdout, again.stdout
    finally:
        await delete_all(client, ids)


class FailFirstOwnCreate(Interceptor):
    """The first create of `schedule_id` carrying our memo fails, as a server refusal would."""

    def __init__(self, schedule_id: str) -> None:
        self.schedule_id = schedule_id
        self.failed = False

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        outer = self

        class Outbound(OutboundInterceptor):
            async def create_schedule(self, input: CreateScheduleInput):
                if input.id == outer.schedule_id and input.memo and not outer.failed:
                    outer.failed = True
                    raise RuntimeError("refused for the test")
                return await super().create_schedule(input)

        return Outbound(next)


async def test_a_takeover_that_cannot_create_puts_the_schedule_back(dev_env, task_queue):
    client = dev_env.client
    tag = uuid.uuid4().hex[:8]
    spec = parse_repo_spec(original_text(tag, "{url: 'http://127.0.0.1:9'}"))
    community = f"governance:community{tag}"
    await client.create_schedule(community, originals_schedule(community, "0 */6 * * *", paused=True, note="held"))
    try:
        config = client.config()
        config["interceptors"] = [FailFirstOwnCreate(community)]
        report = await reconcile(Client(**config), spec, task_queue=task_queue, adopt=True, notify_status=False)
        outcome = {o.schedule_id: o for o in report.outcomes}[community]
        assert outcome.outcome == "failed" and "the schedule is as it was" in outcome.detail
        desc = await client.get_schedule_handle(community).describe()
        assert desc.schedule.action.workflow == "GraphRunWorkflow"
        assert desc.schedule.state.paused and desc.schedule.state.note == "held"
        assert (await actual_from_description(client, desc)).owner is None
    finally:
        await delete_all(client, [community, HEARTBEAT_SCHEDULE_ID, f"governance:engineering{tag}"])


async def test_a_schedule_an_earlier_release_adopted_is_recreated_and_then_found(dev_env, task_queue):
    """Earlier releases adopted by rewriting the action's memo only: such a schedule is ours, but
    listing never found it. The next reconcile recreates it with the schedule memo."""
    client = dev_env.client
    tag = uuid.uuid4().hex[:8]
    spec = parse_repo_spec(original_text(tag, "{url: 'http://127.0.0.1:9'}"))
    owner = default_owner(spec)
    d = {x.schedule_id: x for x in desired_schedules(spec, task_queue)}[f"governance:community{tag}"]
    await client.create_schedule(d.schedule_id, build_schedule(d, owner))  # no schedule memo
    try:
        assert d.schedule_id not in await listed_owned_ids_of_owner(client, owner)
        report = await reconcile(client, spec, task_queue=task_queue, notify_status=False)
        assert {o.schedule_id: o.outcome for o in report.outcomes}[d.schedule_id] == "adopted", report.render()

        async def listed():
            return d.schedule_id in await listed_owned_ids_of_owner(client, owner)

        await wait_for(listed, 30, "the schedule to be listed with our owner")
        again = await reconcile(client, spec, task_queue=task_queue, notify_status=False)
        assert again.writes == 0, again.render()
    finally:
        await delete_all(client, [d.schedule_id, HEARTBEAT_SCHEDULE_ID, f"governance:engineering{tag}"])


async def listed_owned_ids_of_owner(client: Client, owner: str) -> set[str]:
    """Ids whose schedule memo names `owner` (what listing alone can tell)."""
    found = set()
    async for entry in await client.list_schedules():
        memo = dict(await entry.memo())
        if isinstance(memo.get("govfleet"), dict) and memo["govfleet"].get("owner") == owner:
            found.add(entry.id)
    return found


# --- migration from the old ids ---------------------------------------------------------------


class ScheduleCallLog(Interceptor):
    """Records the reconciler's schedule calls, and at each create of a new id whether the old one
    was already paused (described through a client without this interceptor)."""

    def __init__(self, plain: Client, old_of: dict[str, str]) -> None:
        self.calls: list[tuple] = []
        self.plain = plain
        self.old_of = old_of
        self.old_actions: dict[str, list[datetime]] = {}

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        log = self

        class Outbound(OutboundInterceptor):
            async def pause_schedule(self, input: PauseScheduleInput) -> None:
                log.calls.append(("pause", input.id))
                await super().pause_schedule(input)

            async def create_schedule(self, input: CreateScheduleInput):
                old = log.old_of.get(input.id)
                old_paused = None
                if old is not None:
                    desc = await describe_or_none(log.plain, old)
                    old_paused = None if desc is None else desc.schedule.state.paused
                log.calls.append(("create", input.id, old_paused))
                return await super().create_schedule(input)

            async def delete_schedule(self, input: DeleteScheduleInput) -> None:
                desc = await log.plain.get_schedule_handle(input.id).describe()
                log.old_actions[input.id] = [a.scheduled_at for a in desc.info.recent_actions]
                log.calls.append(("delete", input.id))
                await super().delete_schedule(input)

        return Outbound(next)


@workflow.defn(name="GovernanceRun", sandboxed=False)
class InstantRun:
    """Stands in for the governance run here: the test is about which schedule fires when."""

    @workflow.run
    async def run(self, _inp: dict) -> None:
        return None


async def test_old_ids_migrate_without_a_double_run(dev_env, task_queue):
    client = dev_env.client
    tag = uuid.uuid4().hex[:6]
    live, held = f"Live{tag}", f"Held{tag}"
    spec = parse_repo_spec(
        f"cogni_dao: {{name: mig{tag}}}\n"
        "governance:\n"
        "  catchup_window_seconds: 60\n"
        "  schedules:\n"
        f"    - {{charter: {live}, cron: '* * * * *', entrypoint: BRIEF}}\n"
        f"    - {{charter: {held}, cron: '* * * * *', entrypoint: BRIEF}}\n"
    )
    owner = default_owner(spec)
    desired = {d.schedule_id: d for d in desired_schedules(spec, task_queue)}
    new_live, new_held = f"governance:live{tag}", f"governance:held{tag}"
    old_live, old_held = f"governance:{live}", f"governance:{held}"
    ids = [HEARTBEAT_SCHEDULE_ID, new_live, new_held, old_live, old_held]
    # What the previous release created: the same schedules under the charter-case ids, ours.
    for new, old, state in (
        (new_live, old_live, None),
        (new_held, old_held, ScheduleState(paused=True, note="incident 9")),
    ):
        d = desired[new]
        d_old = d.model_copy(update={"schedule_id": old, "args": {**d.args, "schedule_id": old}})
        await client.create_schedule(old, build_schedule(d_old, owner, state=state), memo=schedule_memo(d_old, owner))
    try:
        async with Worker(client, task_queue=task_queue, workflows=[InstantRun]):
            # The old schedule has fired at least once: the hand-over has a "last action" to follow.
            async def old_fired():
                return (await client.get_schedule_handle(old_live).describe()).info.recent_actions

            await wait_for(old_fired, 150, f"{old_live} to fire")

            config = client.config()
            log = ScheduleCallLog(client, {new_live: old_live, new_held: old_held})
            config["interceptors"] = [log]
            report = await reconcile(Client(**config), spec, task_queue=task_queue, notify_status=False)
            assert report.ok, report.render()
            by = {i.schedule_id: i for i in report.plan.items}
            assert (by[new_live].action, by[new_live].from_id) == ("migrate", old_live)
            assert (by[new_held].action, by[new_held].from_id) == ("migrate", old_held)
            assert {o.schedule_id: o.outcome for o in report.outcomes}[new_live] == "migrated"
            assert "> migrate    governance:live" in report.render()

            # The order that cannot fire twice: old paused (if it was running), new created while
            # the old one was paused, old deleted after.
            live_calls = [c for c in log.calls if old_live in c or new_live in c]
            assert live_calls == [("pause", old_live), ("create", new_live, True), ("delete", old_live)]
            held_calls = [c for c in log.calls if old_held in c or new_held in c]
            assert held_calls == [("create", new_held, True), ("delete", old_held)]  # operator's pause: kept
            assert await describe_or_none(client, old_live) is None and await describe_or_none(client, old_held) is None

            held_desc = await client.get_schedule_handle(new_held).describe()
            assert held_desc.schedule.state.paused and held_desc.schedule.state.note == "incident 9"
            live_desc = await client.get_schedule_handle(new_live).describe()
            assert not live_desc.schedule.state.paused
            actual = await actual_from_description(client, live_desc)
            assert actual.owner == owner and actual.spec_hash == desired[new_live].spec_hash

            # The new schedule fires the next minute (or the backfilled gap); no minute twice, none missed.
            async def new_fired():
                return (await client.get_schedule_handle(new_live).describe()).info.recent_actions

            await wait_for(new_fired, 150, f"{new_live} to fire")
            old_times = log.old_actions[old_live]
            new_times = [
                a.scheduled_at for a in (await client.get_schedule_handle(new_live).describe()).info.recent_actions
            ]
            assert not set(old_times) & set(new_times), (old_times, new_times)
            assert min(new_times) - max(old_times) == timedelta(minutes=1), (old_times, new_times)

            # A second reconcile has nothing to do.
            again = await reconcile(client, spec, task_queue=task_queue, notify_status=False)
            assert again.writes == 0, again.render()
    finally:
        await delete_all(client, ids)


# --- a free-word run through the gateway -------------------------------------------------------


async def test_a_free_word_entrypoint_is_handed_to_the_gateway(dev_env, config, make_database, task_queue, monkeypatch):
    """The original's file with a gateway: reconcile, fire the COMMUNITY schedule, and its run
    POSTs the word to the loopback gateway with the bearer token, is charged once and succeeds."""
    url = make_database()
    fund_system_tenant(url, 5_000_000)
    client = dev_env.client
    tag = uuid.uuid4().hex[:8]
    sid = f"governance:community{tag}"
    monkeypatch.setenv("TEST_GATEWAY_TOKEN", "s3cret-token")
    with LoopbackServer() as gateway:
        gateway.reply_json = {"brief": "# Community\n\nThe gateway ran GOVERN.\n"}
        spec = parse_repo_spec(
            original_text(tag, f"{{url: '{gateway.url}/governance/run', token: '${{TEST_GATEWAY_TOKEN}}'}}")
        )
        try:
            report = await reconcile(client, spec, task_queue=task_queue, notify_status=False)
            assert report.ok, report.render()
            async with fleet_worker(client, config, url, task_queue):
                await client.get_schedule_handle(sid).trigger()

                async def finished():
                    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
                        return conn.execute(
                            "SELECT * FROM governance_runs WHERE schedule_id = %s AND status <> 'running'", (sid,)
                        ).fetchone()

                row = await wait_for(finished, 60, "the gateway run to finish")
        finally:
            await delete_all(client, [sid, f"governance:engineering{tag}", HEARTBEAT_SCHEDULE_ID])
    assert row["status"] == "success", row["reason"]
    assert row["brief"] == "# Community\n\nThe gateway ran GOVERN.\n" and row["id"].startswith(f"{sid}-")
    (received,) = gateway.received
    assert received.path == "/governance/run"
    assert received.headers["authorization"] == "Bearer s3cret-token"
    body = received.json()
    assert (body["entrypoint"], body["message"], body["charter"], body["schedule_id"]) == (
        "GOVERN",
        "GOVERN",
        f"COMMUNITY{tag}",
        sid,
    )
    assert received.headers["idempotency-key"] == body["idempotency_key"] and body["idempotency_key"].startswith(sid)
    with psycopg.connect(url) as conn:
        charged = conn.execute("SELECT amount FROM credit_ledger WHERE reference = %s", (row["id"],)).fetchall()
    assert charged == [(-1_000_000,)]


async def test_a_free_word_goes_to_the_openclaw_gateway_the_environment_names(
    dev_env, config, make_database, task_queue, monkeypatch
):
    """No gateway in the file: reconcile accepts the free word because OPENCLAW_GATEWAY_URL is set,
    and the run speaks OpenClaw's protocol to it (the stand-in follows the original's client): the
    word as the agent's message, the answer as the run's brief, charged once."""
    url = make_database()
    fund_system_tenant(url, 5_000_000)
    client = dev_env.client
    tag = uuid.uuid4().hex[:8]
    sid = f"governance:community{tag}"
    token = "o" * 40
    async with openclaw_standin(token, answer="# Community\n\nOpenClaw ran GOVERN.\n") as gateway:
        monkeypatch.setenv("OPENCLAW_GATEWAY_URL", gateway.url)
        monkeypatch.setenv("OPENCLAW_GATEWAY_TOKEN", token)
        spec = parse_repo_spec(original_text(tag))
        try:
            with pytest.raises(ValueError, match=r"neither governance\.agent_gateway\.url nor OPENCLAW_GATEWAY_URL"):
                await reconcile(client, spec, task_queue=task_queue, notify_status=False)
            report = await reconcile(
                client, spec, task_queue=task_queue, notify_status=False, gateway_in_environment=True
            )
            assert report.ok, report.render()
            async with fleet_worker(client, config, url, task_queue):
                await client.get_schedule_handle(sid).trigger()

                async def finished():
                    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
                        return conn.execute(
                            "SELECT * FROM governance_runs WHERE schedule_id = %s AND status <> 'running'", (sid,)
                        ).fetchone()

                row = await wait_for(finished, 60, "the gateway run to finish")
        finally:
            await delete_all(client, [sid, f"governance:engineering{tag}", HEARTBEAT_SCHEDULE_ID])
    assert row["status"] == "success", row["reason"]
    assert row["brief"] == "# Community\n\nOpenClaw ran GOVERN.\n"
    (agent,) = gateway.agent_calls
    assert (
        agent["params"]["message"] == "GOVERN"
        and agent["params"]["sessionKey"] == f"agent:main:cogni_system:{row['id']}"
    )
    assert agent["params"]["idempotencyKey"].startswith(f"{sid}:")
    # The tenant's tool allowlist travels with the run (none stored in this database: no tools).
    assert agent["params"]["outboundHeaders"]["x-cogni-tool-allowlist"] == ""
    assert gateway.connects[0]["params"]["auth"] == {"token": token}
    with psycopg.connect(url) as conn:
        charged = conn.execute("SELECT amount FROM credit_ledger WHERE reference = %s", (row["id"],)).fetchall()
    assert charged == [(-1_000_000,)]


async def test_the_gateway_activity_resolves_its_url_and_token_from_the_environment(monkeypatch):
    """The activity alone over real loopback HTTP: `${ENV}` URL and token are read when the run
    starts; one that is not set is a non-retryable error naming it."""
    import httpx
    from temporalio.exceptions import ApplicationError

    from activities.governance_run import GovernanceRunActivities
    from govfleet.contracts.governance_run import EntrypointInput

    inp = EntrypointInput(
        run_id="governance:community-1",
        schedule_id="governance:community",
        charter="COMMUNITY",
        title="Community — 2026-03-01",
        scheduled_at=datetime(2026, 3, 1, 6, 0).astimezone(),
        idempotency_key="governance:community:2026-03-01T06:00:00Z",
        agent_url="${TEST_GW_URL}",
        entrypoint="GOVERN",
        agent_token="${TEST_GW_TOKEN}",
    )
    with LoopbackServer() as gateway:
        async with httpx.AsyncClient(timeout=10) as http:
            acts = GovernanceRunActivities(cast(Any, SimpleNamespace(http=http)))
            monkeypatch.delenv("TEST_GW_URL", raising=False)
            with pytest.raises(ApplicationError, match=r"\$\{TEST_GW_URL\} is not set") as unset:
                await acts.entrypoint_gateway(inp)
            assert unset.value.non_retryable and gateway.received == []
            monkeypatch.setenv("TEST_GW_URL", gateway.url + "/hook")
            with pytest.raises(ApplicationError, match=r"\$\{TEST_GW_TOKEN\} is not set"):
                await acts.entrypoint_gateway(inp)
            monkeypatch.setenv("TEST_GW_TOKEN", "tok")
            gateway.responses = [404]
            with pytest.raises(ApplicationError, match=r"agent gateway .* answered 404") as refused:
                await acts.entrypoint_gateway(inp)
            assert refused.value.non_retryable
            out = await acts.entrypoint_gateway(inp)
    assert out.detail == "agent gateway answered 200" and len(gateway.received) == 2
    last = gateway.received[-1]
    assert last.path == "/hook" and last.headers["authorization"] == "Bearer tok"
    assert last.json()["message"] == "GOVERN" and last.headers["idempotency-key"] == inp.idempotency_key


async def test_govfleet_status_reads_a_newer_servers_body(config):
    """`govfleet status --api` against a (loopback) server whose governance.status.v1 has fields
    this client does not know: they are ignored, the known ones are shown."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from govfleet.commands.status import _from_api

    body = {
        "systemCredits": "1234",
        "upcomingRuns": [{"name": "Community", "nextRunAt": "2030-01-01T06:00:00.000Z", "paused": False}],
        "recentRuns": [],
        "generatedAt": "2029-12-31T23:59:59.000Z",
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            payload = json.dumps(body if self.path == "/api/v1/governance/status" else {"workflows": []}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        got, _source, _workflows, schedules = await _from_api(
            f"http://127.0.0.1:{server.server_address[1]}", config.settings, want_extended=True
        )
    finally:
        server.shutdown()
        server.server_close()
    assert got == {
        "systemCredits": "1234",
        "upcomingRuns": [{"name": "Community", "nextRunAt": "2030-01-01T06:00:00.000Z"}],
        "recentRuns": [],
    }
    assert schedules is None  # its "extended status" is not the shape this client reads: the contract alone

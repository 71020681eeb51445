"""The reconciler against the real Temporal dev server: create → edit cron → edit timezone →
operator pause preserved → remove → foreign schedule blocked; zero writes when nothing changed;
an invalid spec changes nothing; two reconcilers at once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
)

from govfleet.contracts.governance_run import schedule_id
from govfleet.contracts.heartbeat import HEARTBEAT_SCHEDULE_ID
from govfleet.repo_spec import ScheduleSpec as CharterSpec
from govfleet.repo_spec import parse_repo_spec
from schedules.reconciler import actual_from_description, describe_or_none, reconcile
from tests.integration.schedules_support import govfleet


def spec_text(dao: str, charters: list[tuple[str, str, str]], *, interval: int = 5, catchup: int = 60) -> str:
    lines = [
        f"cogni_dao: {{name: {dao}}}",
        "governance:",
        f"  heartbeat: {{interval_minutes: {interval}}}",
        f"  catchup_window_seconds: {catchup}",
        "  schedules:" + ("" if charters else " []"),
    ]
    for charter, cron, tz in charters:
        lines += [
            f"    - charter: {charter}",
            f'      cron: "{cron}"',
            f"      timezone: {tz}",
            "      entrypoint: BRIEF",
        ]
    return "\n".join(lines) + "\n"


async def owned_cleanup(client: Client, ids: list[str]) -> None:
    for sid in ids:
        if await describe_or_none(client, sid) is not None:
            await client.get_schedule_handle(sid).delete()


@pytest.fixture
async def ns(dev_env):
    """A unique dao name (hence owner) and charter suffix; deletes what the test left behind."""
    tag = uuid.uuid4().hex[:8]
    touched: list[str] = [HEARTBEAT_SCHEDULE_ID]
    yield tag, touched
    await owned_cleanup(dev_env.client, touched)


async def test_reconcile_lifecycle(dev_env, ns, task_queue):
    client = dev_env.client
    tag, touched = ns
    a, b = f"A{tag}", f"B{tag}"
    touched += [schedule_id(a), schedule_id(b)]
    owner = f"governance-fleet:dao{tag}"

    # 1. create: the heartbeat and two charters.
    spec = parse_repo_spec(spec_text(f"dao{tag}", [(a, "0 */6 * * *", "UTC"), (b, "30 9 * * 1-5", "Europe/Berlin")]))
    dry = await reconcile(client, spec, task_queue=task_queue, dry_run=True)
    assert [i.action for i in dry.plan.items] == ["create", "create", "create"]
    assert dry.writes == 0 and await describe_or_none(client, schedule_id(a)) is None
    rendered = dry.render()
    assert f"+ create     {schedule_id(a)}" in rendered and "Plan: 3 to create, 0 to update" in rendered

    first = await reconcile(client, spec, task_queue=task_queue)
    assert first.ok and first.writes == 3, first.render()
    desc = await client.get_schedule_handle(schedule_id(a)).describe()
    assert desc.schedule.policy.overlap.name == "SKIP"
    assert desc.schedule.policy.catchup_window == timedelta(seconds=60)
    assert desc.schedule.action.task_queue == task_queue
    assert (await desc.memo())["govfleet"]["owner"] == owner

    # 2. a second run: all unchanged, zero writes.
    again = await reconcile(client, spec, task_queue=task_queue)
    assert [i.action for i in again.plan.items] == ["unchanged"] * 3 and again.writes == 0, again.render()

    # 3. cron-only edit of A is detected and applied; the next fire times follow.
    before = desc.info.next_action_times
    spec = parse_repo_spec(spec_text(f"dao{tag}", [(a, "15 */4 * * *", "UTC"), (b, "30 9 * * 1-5", "Europe/Berlin")]))
    edited = await reconcile(client, spec, task_queue=task_queue)
    assert {i.schedule_id: i.action for i in edited.plan.items}[schedule_id(a)] == "update"
    assert edited.writes == 1, edited.render()
    assert "args.cron" not in edited.render() and 'cron: "0 */6 * * *" → "15 */4 * * *"' in edited.render()
    after = (await client.get_schedule_handle(schedule_id(a)).describe()).info.next_action_times
    assert after != before and all(t.minute == 15 and t.hour % 4 == 0 for t in after)
    assert (await reconcile(client, spec, task_queue=task_queue)).writes == 0

    # 4. timezone-only edit of B.
    spec = parse_repo_spec(spec_text(f"dao{tag}", [(a, "15 */4 * * *", "UTC"), (b, "30 9 * * 1-5", "Asia/Tokyo")]))
    tz = await reconcile(client, spec, task_queue=task_queue)
    assert tz.writes == 1 and {i.schedule_id: i.action for i in tz.plan.items}[schedule_id(b)] == "update"
    desc_b = await client.get_schedule_handle(schedule_id(b)).describe()
    assert desc_b.schedule.spec.time_zone_name == "Asia/Tokyo"

    # 5. an operator pauses B with a note; an update of B keeps the pause and the note.
    await client.get_schedule_handle(schedule_id(b)).pause(note="incident 42: hold the brief")
    spec = parse_repo_spec(spec_text(f"dao{tag}", [(a, "15 */4 * * *", "UTC"), (b, "45 9 * * 1-5", "Asia/Tokyo")]))
    paused = await reconcile(client, spec, task_queue=task_queue)
    assert paused.writes == 1 and "stays paused" in paused.render()
    state = (await client.get_schedule_handle(schedule_id(b)).describe()).schedule.state
    assert state.paused and state.note == "incident 42: hold the brief"
    assert (await reconcile(client, spec, task_queue=task_queue)).writes == 0

    # 6. remove A from the spec: the owned schedule is deleted, B stays.
    spec = parse_repo_spec(spec_text(f"dao{tag}", [(b, "45 9 * * 1-5", "Asia/Tokyo")]))
    removed = await reconcile(client, spec, task_queue=task_queue)
    assert {i.schedule_id: i.action for i in removed.plan.items}[schedule_id(a)] == "delete"
    assert removed.writes == 1 and await describe_or_none(client, schedule_id(a)) is None
    assert await describe_or_none(client, schedule_id(b)) is not None


async def test_foreign_schedules_are_blocked_or_ignored(dev_env, ns, task_queue):
    client = dev_env.client
    tag, touched = ns
    mine, foreign, bystander = f"M{tag}", f"F{tag}", f"governance:X{tag}"
    touched += [schedule_id(mine), schedule_id(foreign), bystander]

    def other(sid: str) -> Schedule:
        return Schedule(
            action=ScheduleActionStartWorkflow("SomeoneElses", id=sid, task_queue="elsewhere"),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
        )

    # A schedule someone else created on an id our spec declares, and one we never declare.
    await client.create_schedule(schedule_id(foreign), other(schedule_id(foreign)))
    await client.create_schedule(bystander, other(bystander), memo={"govfleet": {"owner": "another-repo"}})

    spec = parse_repo_spec(spec_text(f"dao{tag}", [(mine, "0 * * * *", "UTC"), (foreign, "0 * * * *", "UTC")]))
    report = await reconcile(client, spec, task_queue=task_queue)
    actions = {i.schedule_id: i.action for i in report.plan.items}
    assert actions[schedule_id(foreign)] == "blocked"
    assert bystander not in actions  # not ours, not declared: not even in the plan
    assert not report.ok and report.blocked == [schedule_id(foreign)]
    assert "Blocked: governance:" in report.render()
    # The rest was applied; the foreign one is untouched.
    assert await describe_or_none(client, schedule_id(mine)) is not None
    desc = await client.get_schedule_handle(schedule_id(foreign)).describe()
    assert desc.schedule.action.workflow == "SomeoneElses"
    # Removing every charter deletes ours but never the bystander.
    spec = parse_repo_spec(spec_text(f"dao{tag}", []))
    await reconcile(client, spec, task_queue=task_queue)
    assert await describe_or_none(client, schedule_id(mine)) is None
    assert await describe_or_none(client, bystander) is not None


async def snapshot(client: Client, ids: list[str]) -> dict[str, dict | None]:
    """What Temporal holds for each id: owner, spec hash and stored spec, described fields, state."""
    out: dict[str, dict | None] = {}
    for sid in ids:
        desc = await describe_or_none(client, sid)
        out[sid] = None if desc is None else (await actual_from_description(client, desc)).model_dump()
    return out


async def test_invalid_spec_changes_nothing(dev_env, ns, task_queue, tmp_path):
    """`govfleet reconcile` with a file that has valid edits and one invalid schedule refuses the
    whole file (exit 2) and Temporal keeps exactly what it had. The same edits without validation
    do reach Temporal, so "nothing changed" is the validation's doing."""
    client = dev_env.client
    tag, touched = ns
    dao, kept, added, bad = f"dao{tag}", f"K{tag}", f"N{tag}", f"H{tag}"
    ids = [HEARTBEAT_SCHEDULE_ID] + [schedule_id(c) for c in (kept, added, bad)]
    touched += ids[1:]
    first = await reconcile(
        client, parse_repo_spec(spec_text(dao, [(kept, "0 * * * *", "UTC")])), task_queue=task_queue
    )
    assert first.ok and first.writes == 2, first.render()
    before = await snapshot(client, ids)
    assert before[schedule_id(kept)] is not None and before[schedule_id(added)] is None

    # Edit the kept charter's cron, add a charter, and add one with an impossible cron.
    edits = [(kept, "30 * * * *", "UTC"), (added, "0 * * * *", "UTC")]
    path = tmp_path / "repo-spec.yaml"
    path.write_text(spec_text(dao, [*edits, (bad, "61 * * * *", "UTC")]))
    env = {
        "REPO_SPEC_PATH": str(path),
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": task_queue,
    }
    refused = govfleet("reconcile", env=env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "governance.schedules[2].cron: '61 * * * *' is not a valid 5-field cron expression" in refused.stderr
    assert await snapshot(client, ids) == before

    path.write_text(spec_text(dao, [*edits, (bad, "0 * * * *", "Mars/Olympus")]))
    refused = govfleet("reconcile", env=env)
    assert refused.returncode == 2 and "'Mars/Olympus' is not a known IANA timezone" in refused.stderr
    assert await snapshot(client, ids) == before

    # Control: the same file past validation (the bad entry built without its checks) changes Temporal.
    valid = parse_repo_spec(spec_text(dao, edits))
    unchecked = CharterSpec.model_construct(
        charter=bad, cron="61 * * * *", timezone="UTC", entrypoint="BRIEF", agent_url=None, credits_per_run=None
    )
    governance = valid.governance.model_copy(update={"schedules": [*valid.governance.schedules, unchecked]})
    await reconcile(client, valid.model_copy(update={"governance": governance}), task_queue=task_queue)
    after = await snapshot(client, ids)
    assert after[schedule_id(added)] is not None
    assert after[schedule_id(kept)]["spec_hash"] != before[schedule_id(kept)]["spec_hash"]


async def test_out_of_band_edit_is_put_back(dev_env, ns, task_queue):
    client = dev_env.client
    tag, touched = ns
    c = f"O{tag}"
    touched.append(schedule_id(c))
    spec = parse_repo_spec(spec_text(f"dao{tag}", [(c, "0 * * * *", "UTC")]))
    await reconcile(client, spec, task_queue=task_queue)

    def hand_edit(inp):
        s = inp.description.schedule
        s.spec.time_zone_name = "Asia/Kolkata"
        from temporalio.client import ScheduleUpdate

        return ScheduleUpdate(schedule=s)

    await client.get_schedule_handle(schedule_id(c)).update(hand_edit)
    report = await reconcile(client, spec, task_queue=task_queue)
    item = {i.schedule_id: i for i in report.plan.items}[schedule_id(c)]
    assert item.action == "update" and "changed outside repo-spec" in item.reason
    assert (await client.get_schedule_handle(schedule_id(c)).describe()).schedule.spec.time_zone_name == "UTC"


async def test_two_reconcilers_at_once(dev_env, ns, task_queue):
    client = dev_env.client
    tag, touched = ns
    names = [f"C{i}{tag}" for i in range(6)]
    touched += [schedule_id(n) for n in names]
    spec = parse_repo_spec(spec_text(f"dao{tag}", [(n, "0 * * * *", "UTC") for n in names]))
    r1, r2 = await asyncio.gather(
        reconcile(client, spec, task_queue=task_queue), reconcile(client, spec, task_queue=task_queue)
    )
    assert r1.ok and r2.ok, (r1.render(), r2.render())
    # Every schedule exists once, owned, with the right hash; a third run has nothing to do.
    third = await reconcile(client, spec, task_queue=task_queue)
    assert third.writes == 0 and {i.action for i in third.plan.items} == {"unchanged"}, third.render()
    # Concurrent edits with the same new spec converge too.
    spec2 = parse_repo_spec(spec_text(f"dao{tag}", [(n, "5 * * * *", "UTC") for n in names]))
    r1, r2 = await asyncio.gather(
        reconcile(client, spec2, task_queue=task_queue), reconcile(client, spec2, task_queue=task_queue)
    )
    assert r1.ok and r2.ok
    assert (await reconcile(client, spec2, task_queue=task_queue)).writes == 0

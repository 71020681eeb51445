"""`govfleet reconcile [--dry-run]` as a user runs it, against the dev server: edit the example
repo-spec's cron, dry-run (nothing changes), apply (the next fire times follow), re-run (zero
writes); an invalid spec exits 2 having changed nothing; a foreign schedule exits 1."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.client import Schedule, ScheduleActionStartWorkflow, ScheduleIntervalSpec, ScheduleSpec

from govfleet.contracts.governance_run import schedule_id
from govfleet.contracts.heartbeat import HEARTBEAT_SCHEDULE_ID
from schedules.reconciler import describe_or_none
from tests.integration.schedules_support import govfleet
from tests.operator_spec import operator_spec, operator_spec_text


async def test_reconcile_command(dev_env, tmp_path, task_queue):
    client = dev_env.client
    tag = uuid.uuid4().hex[:8]
    text = operator_spec_text().replace("name: cogni-demo", f"name: cli-{tag}")
    for charter in ("COMMUNITY", "ENGINEERING", "TREASURY"):
        text = text.replace(f"charter: {charter}", f"charter: {charter}{tag}")
    ids = [HEARTBEAT_SCHEDULE_ID] + [schedule_id(f"{c}{tag}") for c in ("COMMUNITY", "ENGINEERING", "TREASURY")]
    spec = tmp_path / "repo-spec.yaml"
    spec.write_text(text)
    env = {
        "REPO_SPEC_PATH": str(spec),
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": task_queue,
    }
    try:
        dry = govfleet("reconcile", "--dry-run", env=env)
        assert dry.returncode == 0, dry.stderr
        assert "Plan: 4 to create, 0 to update, 0 to delete, 0 unchanged, 0 blocked." in dry.stdout
        assert "dry run: nothing was changed" in dry.stdout
        assert await describe_or_none(client, ids[1]) is None

        applied = govfleet("reconcile", env=env)
        assert applied.returncode == 0, applied.stderr
        assert "Applied: 4 created (4 writes)." in applied.stdout
        before = (await client.get_schedule_handle(ids[1]).describe()).info.next_action_times

        # The maintainer edits COMMUNITY's cron, previews, applies.
        spec.write_text(text.replace('cron: "0 */6 * * *"', 'cron: "20 */3 * * *"'))
        dry = govfleet("reconcile", "--dry-run", env=env)
        assert dry.returncode == 0 and f"~ update     governance:community{tag}" in dry.stdout
        assert 'cron: "0 */6 * * *" → "20 */3 * * *"' in dry.stdout
        assert "Plan: 0 to create, 1 to update, 0 to delete, 3 unchanged, 0 blocked." in dry.stdout
        applied = govfleet("reconcile", env=env)
        assert applied.returncode == 0 and "Applied: 1 updated, 3 unchanged (1 writes)." in applied.stdout
        after = (await client.get_schedule_handle(ids[1]).describe()).info.next_action_times
        assert after != before and all(t.minute == 20 and t.hour % 3 == 0 for t in after)

        again = govfleet("reconcile", env=env)
        assert again.returncode == 0 and "(0 writes)" in again.stdout

        # An invalid file: exit 2, one line naming the problem, nothing changed.
        spec.write_text(text.replace('cron: "0 */6 * * *"', 'cron: "0 */6 * *"'))
        bad = govfleet("reconcile", env=env)
        assert bad.returncode == 2 and bad.stdout == ""
        assert "governance.schedules[0].cron: '0 */6 * *' is not a valid 5-field cron expression" in bad.stderr
        assert (await client.get_schedule_handle(ids[1]).describe()).info.next_action_times[0].minute == 20

        # A foreign schedule on a declared id: exit 1, reported, untouched.
        extra = f'    - charter: FOREIGN{tag}\n      cron: "0 0 * * *"\n\nguardian:'
        assert text.count("\n\nguardian:") == 1
        spec.write_text(text.replace("\n\nguardian:", "\n" + extra))
        ids.append(f"governance:foreign{tag}")
        await client.create_schedule(
            ids[-1],
            Schedule(
                action=ScheduleActionStartWorkflow("NotOurs", id=ids[-1], task_queue="elsewhere"),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
            ),
        )
        blocked = govfleet("reconcile", env=env)
        assert blocked.returncode == 1
        assert f"! blocked    governance:foreign{tag}" in blocked.stdout
        assert f"blocked: governance:foreign{tag}" in blocked.stderr
        assert (await client.get_schedule_handle(ids[-1]).describe()).schedule.action.workflow == "NotOurs"
    finally:
        for sid in ids:
            if await describe_or_none(client, sid) is not None:
                await client.get_schedule_handle(sid).delete()


def test_reconcile_without_temporal_says_where_it_looked(tmp_path):
    result = govfleet(
        "reconcile", "--dry-run", env={"REPO_SPEC_PATH": str(operator_spec()), "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    )
    assert result.returncode == 2
    assert result.stderr.startswith("govfleet: error: Temporal unreachable at 127.0.0.1:1")

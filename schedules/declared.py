"""The long-lived workflows a repo-spec declares (pure: no I/O, no Temporal), in the order they
are started: every guardian (`guardian` block, then `guardians`), the `governance-status` read
model, then the `governance-watchdog` that watches them (see docs/declared-workflows.md).

Each comes with its start input and, when it can be reconfigured, the payload of its
`configure` signal; the configuration hash covers exactly that payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel

from govfleet.contracts.guardian import (
    GUARDIAN_TASK_TIMEOUT,
    GUARDIAN_WORKFLOW,
    GuardianConfig,
    GuardianConfigureInput,
    GuardianInput,
)
from govfleet.contracts.status import STATUS_WORKFLOW, STATUS_WORKFLOW_ID, StatusWorkflowInput
from govfleet.contracts.watchdog import (
    WATCHDOG_WORKFLOW,
    WATCHDOG_WORKFLOW_ID,
    HeartbeatWatch,
    WatchdogConfig,
    WatchdogInput,
    WatchedWorkflow,
)
from govfleet.domain.declared import DesiredWorkflow, config_hash
from govfleet.repo_spec import RepoSpec, guardian_config


@dataclass(frozen=True)
class DeclaredWorkflow:
    desired: DesiredWorkflow
    start_input: BaseModel
    configure: BaseModel | None = None  # the `configure` signal's payload; None: not reconfigurable
    task_timeout: timedelta | None = None

    @property
    def workflow_id(self) -> str:
        return self.desired.workflow_id


def watchdog_config(spec: RepoSpec) -> WatchdogConfig:
    guardians = spec.declared_guardians()
    primary = spec.primary_guardian_id
    hb = spec.governance.heartbeat
    return WatchdogConfig(
        check_seconds=spec.watchdog.check_seconds,
        workflows=[
            *(
                WatchedWorkflow(workflow_id=g.workflow_id, kind="guardian", notify_guardian=g.workflow_id)
                for g in guardians
            ),
            WatchedWorkflow(workflow_id=STATUS_WORKFLOW_ID, kind="status", notify_guardian=primary),
        ],
        heartbeat=HeartbeatWatch(interval_seconds=hb.interval_minutes * 60, grace_seconds=hb.grace_seconds),
        notify_guardian=primary,
    )


def declared_guardian(cfg: GuardianConfig) -> DeclaredWorkflow:
    return DeclaredWorkflow(
        desired=DesiredWorkflow(
            workflow_id=cfg.guardian_id,
            workflow_type=GUARDIAN_WORKFLOW,
            kind="guardian",
            config_hash=config_hash(cfg),
            reconfigurable=True,
            summary=f"tracker {cfg.tracker_url} · {len(cfg.breakers)} breakers · {len(cfg.admins)} admins",
            memo_extra={"tracker_url": cfg.tracker_url},
        ),
        start_input=GuardianInput(config=cfg),
        # The whole configuration with its hash: the guardian refuses anything else (docs/security.md).
        configure=GuardianConfigureInput(config=cfg, config_hash=config_hash(cfg)),
        task_timeout=GUARDIAN_TASK_TIMEOUT,
    )


def declared_workflows(spec: RepoSpec) -> list[DeclaredWorkflow]:
    out = [declared_guardian(guardian_config(g, spec.cogni_dao)) for g in spec.declared_guardians()]
    status = StatusWorkflowInput.model_validate({})  # what every signal-with-start sends
    out.append(
        DeclaredWorkflow(
            desired=DesiredWorkflow(
                workflow_id=STATUS_WORKFLOW_ID,
                workflow_type=STATUS_WORKFLOW,
                kind="status",
                config_hash=config_hash(status),
                reconfigurable=False,
                summary="status read model",
            ),
            start_input=status,
        )
    )
    if spec.watchdog.enabled:
        wd = watchdog_config(spec)
        out.append(
            DeclaredWorkflow(
                desired=DesiredWorkflow(
                    workflow_id=WATCHDOG_WORKFLOW_ID,
                    workflow_type=WATCHDOG_WORKFLOW,
                    kind="watchdog",
                    config_hash=config_hash(wd),
                    reconfigurable=True,
                    summary=f"every {wd.check_seconds} s · {len(wd.workflows)} workflows + heartbeat",
                ),
                start_input=WatchdogInput(config=wd),
                configure=wd,
            )
        )
    return out

"""What arrives at the guardian workflow, before the core sees it: signals and updates are taken
as raw payloads and decoded here, so that a payload that cannot be decoded (a lone surrogate,
nesting past the decoder's limit) is still audited instead of being dropped by the data
converter; admin bodies are checked by the same rules as the HTTP endpoints; and what is still
in the inbox at continue-as-new is carried in `PendingCommand`s. See docs/guardian.md and
docs/security.md, "Temporal access"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from govfleet.contracts.guardian import (
        CommandKind,
        ForensicAuditInput,
        PauseInput,
        PendingCommand,
        ResumeInput,
    )
    from govfleet.domain.admin_auth import AuthorizationError, parse_admin_body
    from govfleet.domain.guardian.models import AdminRejected
    from govfleet.domain.text import clip

ADMIN_INPUTS: dict[str, type[BaseModel]] = {
    "pause": PauseInput,
    "resume": ResumeInput,
    "forensic_audit": ForensicAuditInput,
}
ADMIN_ACTIONS = {"pause": "pause", "resume": "resume", "forensic_audit": "complete_forensic_audit"}


@dataclass
class Command:
    kind: CommandKind
    payload: Any
    via: str  # "signal" | "update"
    undecodable: str | None = None  # why the payload could not be decoded (audited by the loop)
    done: bool = False
    result: Any = None
    error: AdminRejected | None = None


def decode(raw: RawValue) -> tuple[Any, str | None]:
    """The JSON value of a raw payload, or (None, why) when it cannot be decoded."""
    try:
        return workflow.payload_converter().from_payload(raw.payload), None
    except Exception as exc:  # any decoding failure: what is wrong is audited, nothing is raised
        return None, clip(f"the payload cannot be decoded: {type(exc).__name__}: {exc}", 200)


def legacy_parse(model: type[BaseModel], body: Any) -> BaseModel | str:
    """The body as `model`, or the validation problem as text (audited as malformed): the check of
    runs from before the EIP-712 admin bodies (docs/patches.md, `guardian-admin-eip712`)."""
    if isinstance(body, model):
        return body
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
        return f"malformed {model.__name__} body: {problems}"


def admin_input(kind: str, body: Any) -> PauseInput | ResumeInput | ForensicAuditInput | str:
    """The body checked by the same rules as the HTTP endpoints (`parse_admin_body`), or the
    problem as text (audited as malformed)."""
    if isinstance(body, BaseModel):  # carried across continue-as-new by runs from before raw payloads
        body = body.model_dump(exclude_none=True)
    try:
        fields = parse_admin_body(ADMIN_ACTIONS[kind], body)
    except AuthorizationError as exc:
        return exc.message
    if kind == "forensic_audit":
        return ForensicAuditInput(report=fields["report"], authorization=fields["authorization"])
    return PauseInput(**fields) if kind == "pause" else ResumeInput(**fields)


def carried(pc: PendingCommand) -> Command:
    """A command carried across continue-as-new, back in the inbox."""
    if pc.undecodable is not None:
        return Command(pc.kind, None, "signal", undecodable=pc.undecodable)
    if pc.raw is not None:
        return Command(pc.kind, pc.raw, "signal")
    typed = {"reading": pc.reading, "pause": pc.pause, "resume": pc.resume, "configure": pc.configure}
    return Command(pc.kind, typed.get(pc.kind), "signal")


def to_carry(cmd: Command) -> PendingCommand:
    """An unprocessed command for the next run's input."""
    payload = cmd.payload.model_dump(mode="json") if isinstance(cmd.payload, BaseModel) else cmd.payload
    return PendingCommand(kind=cmd.kind, raw=payload, undecodable=cmd.undecodable)

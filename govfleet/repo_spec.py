"""`.cogni/repo-spec.yaml` parsed into typed models.

Pure: no I/O beyond reading the file in `load_repo_spec`. Every validation error
names the dotted path and the offending value, e.g.
``governance.schedules[1].cron: '61 * * * *' is not a valid 5-field cron expression``.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import croniter
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from govfleet.contracts.governance_run import legacy_schedule_id, schedule_id
from govfleet.contracts.guardian import guardian_workflow_id
from govfleet.contracts.ledger_ingest import LEDGER_INGEST_CHARTER, LEDGER_INGEST_CRON
from govfleet.domain.admin_signing import SIGNING_VERSION, SigningDomain
from govfleet.domain.governance_run import BUILTIN_ENTRYPOINTS
from govfleet.domain.grant_renewal import GrantRenewalPolicy
from govfleet.domain.guardian.levels import GuardianRules
from govfleet.domain.guardian.models import BreakerTarget, GuardianConfig
from govfleet.domain.secret_ref import SECRET_REF, SecretRef

CHARTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
ETH_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class RepoSpecError(ValueError):
    """The repo-spec is invalid; `problems` lists every `path: reason` found."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def validate_cron(expr: str) -> str:
    """A 5-field cron expression (minute hour day-of-month month day-of-week)."""
    if not isinstance(expr, str) or len(expr.split()) != 5 or not croniter.is_valid(expr):
        raise ValueError(f"{expr!r} is not a valid 5-field cron expression")
    return " ".join(expr.split())


def validate_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a known IANA timezone") from None
    return name


def _address(value: Any) -> str:
    if not isinstance(value, str) or not ETH_ADDRESS.match(value):
        raise ValueError(f"{value!r} is not an Ethereum address (0x followed by 40 hex digits)")
    return value.lower()


EthAddress = Annotated[str, BeforeValidator(_address)]


def _address_as_written(value: Any) -> str:
    _address(value)
    return value


# Checked like EthAddress, kept as written (the original's ledger passes its approvers on verbatim).
EthAddressAsWritten = Annotated[str, BeforeValidator(_address_as_written)]
URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$")


def _http_url(value: Any) -> str:
    if not isinstance(value, str) or not URL.match(value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


HttpUrl = Annotated[str, BeforeValidator(_http_url)]


# --- cogni_dao -------------------------------------------------------------------------


class CogniDao(_Model):
    """The DAO: admin signatures are bound to it (EIP-712 domain: `name`, `version`, `chain_id`,
    `dao_contract` as verifyingContract; docs/admin-actions.md). The original system today keeps
    `dao_contract`, `plugin_contract`, `signal_contract`, `chain_id` and `base_url` under
    `governance:`; written there they mean the same (RepoSpec merges them into this block)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str = "cogni"
    version: str = SIGNING_VERSION
    chain_id: int | None = Field(default=None, ge=0)  # a number or a string of digits ("8453")
    dao_contract: EthAddress | None = None
    plugin_contract: EthAddress | None = None
    signal_contract: EthAddress | None = None
    base_url: HttpUrl | None = None

    def signing_domain(self) -> SigningDomain:
        return SigningDomain(
            name=self.name, version=self.version, chain_id=self.chain_id, verifying_contract=self.dao_contract
        )


# --- governance ------------------------------------------------------------------------


class HeartbeatSpec(_Model):
    interval_minutes: int = Field(default=5, ge=1, le=1440)
    low_balance_threshold_credits: int = Field(default=1_000_000, ge=0)
    grant_expiry_warning_hours: int = Field(default=24, ge=0)
    grace_seconds: int = Field(default=60, ge=0)
    sink_url: str | None = None
    # The governance grant, renewed by the heartbeat (docs/heartbeat.md, "The governance grant").
    grant_auto_renew: bool = True
    grant_renew_within_days: int = Field(default=30, ge=1, le=3650)
    grant_renew_for_days: int = Field(default=365, ge=1, le=3650)

    @model_validator(mode="after")
    def _grant_renewal(self) -> HeartbeatSpec:
        self.grant_renewal_policy()  # the policy's own rule, named with the fields'
        return self

    def grant_renewal_policy(self) -> GrantRenewalPolicy:
        return GrantRenewalPolicy(
            auto_renew=self.grant_auto_renew,
            renew_within_days=self.grant_renew_within_days,
            renew_for_days=self.grant_renew_for_days,
        )


class SystemTenantSpec(_Model):
    id: str = "cogni_system"
    tool_allowlist: list[str] = Field(default_factory=list)
    budget_credits_per_day: int = Field(default=100_000_000, ge=0)
    credits_per_run: int = Field(default=1_000_000, ge=0)

    @field_validator("id")
    @classmethod
    def _fixed_id(cls, v: str) -> str:
        if v != "cogni_system":
            raise ValueError(f"{v!r} must be 'cogni_system' (the system tenant id is a protocol constant)")
        return v


ENTRYPOINTS = BUILTIN_ENTRYPOINTS
ENTRYPOINT_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
HEARTBEAT_CHARTER = "heartbeat"  # compared lowercased: the charter whose entry is the heartbeat
GATEWAY_URL = re.compile(r"^(https?|wss?)://[^\s/?#]+[^\s]*$")


class ScheduleSpec(_Model):
    """One `governance.schedules[]` entry. The entrypoint is a built-in (HEARTBEAT, BRIEF,
    HTTP) or any other single word, which is handed to `governance.agent_gateway` (see
    docs/schedules.md, "Entrypoints")."""

    charter: str
    cron: str
    timezone: str = "UTC"
    entrypoint: str = "BRIEF"
    agent_url: str | None = None
    credits_per_run: int | None = Field(default=None, ge=0)

    @field_validator("charter")
    @classmethod
    def _charter(cls, v: str) -> str:
        if not CHARTER_NAME.match(v):
            raise ValueError(f"{v!r} is not a valid charter name (letters, digits, '_', '-', '.'; at most 63)")
        return v

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        return validate_cron(v)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return validate_timezone(v)

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint(cls, v: str) -> str:
        if not ENTRYPOINT_WORD.match(v):
            raise ValueError(
                f"{v!r} is not an entrypoint: one of {', '.join(ENTRYPOINTS)}, or a single word "
                "(letters, digits, '_', '-', '.'; at most 63) handed to governance.agent_gateway"
            )
        return v

    @model_validator(mode="after")
    def _http_needs_url(self) -> ScheduleSpec:
        if self.entrypoint == "HTTP" and not self.agent_url:
            raise ValueError(f"entrypoint 'HTTP' needs agent_url (charter {self.charter!r})")
        return self

    @property
    def is_ledger_ingest(self) -> bool:
        """The original's `LEDGER_INGEST` charter: its ledger ingestion, scheduled for the
        original's workers (govfleet/contracts/ledger_ingest.py), never a governance run."""
        return self.charter.upper() == LEDGER_INGEST_CHARTER

    @property
    def uses_gateway(self) -> bool:
        """A free-word entrypoint: the run is handed to the agent gateway."""
        return self.entrypoint not in ENTRYPOINTS and not self.is_ledger_ingest

    @property
    def is_heartbeat(self) -> bool:
        """The original's `HEARTBEAT` entry: it is the heartbeat (its cron is the heartbeat's cadence)."""
        return self.charter.lower() == HEARTBEAT_CHARTER

    @property
    def schedule_id(self) -> str:
        """`governance:<charter lowercased>`, as the original system names it."""
        return schedule_id(self.charter)

    @property
    def legacy_schedule_id(self) -> str | None:
        """The id earlier releases gave this charter (its case kept), when it differs: reconcile
        migrates a schedule of ours found there (docs/schedules.md, "Migrating our schedules from the old ids")."""
        old = legacy_schedule_id(self.charter)
        return old if old != self.schedule_id else None


GATEWAY_PROTOCOLS = ("http", "openclaw")


class AgentGatewaySpec(_Model):
    """Where free-word entrypoints go: `url` is an http(s) or ws(s) URL or a `${ENV_VAR}`
    reference (resolved by the worker when a run starts); `token`, if set, is the gateway's
    credential. `protocol` says how the gateway is spoken to (docs/schedules.md, "Entrypoints"):
    `http` (one POST per run, the token as a bearer token) or `openclaw` (OpenClaw's WebSocket
    protocol, as the original system speaks to its gateway; needs `token`). Unset, it is
    `openclaw` for a ws(s) URL and `http` otherwise."""

    url: str
    token: SecretRef | None = None
    timeout_seconds: float = Field(default=120, gt=0, le=3600)
    protocol: Literal["http", "openclaw"] | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not isinstance(v, str) or not (SECRET_REF.match(v) or GATEWAY_URL.match(v)):
            raise ValueError(f"{v!r} is not an http(s) or ws(s) URL or a ${{ENV_VAR}} reference")
        return v

    @model_validator(mode="after")
    def _protocol_fits(self) -> AgentGatewaySpec:
        if self.protocol == "http" and self.url.startswith(("ws://", "wss://")):
            raise ValueError(f"protocol 'http' cannot reach the WebSocket URL {self.url!r} (use protocol: openclaw)")
        if self.effective_protocol == "openclaw" and self.token is None:
            raise ValueError("protocol 'openclaw' needs token (a ${ENV_VAR} reference): the gateway authenticates it")
        return self

    @property
    def effective_protocol(self) -> str:
        if self.protocol is not None:
            return self.protocol
        return "openclaw" if self.url.startswith(("ws://", "wss://")) else "http"


# A free word with no `governance.agent_gateway` in the file goes, as in the original system, to
# the gateway its environment names: OPENCLAW_GATEWAY_URL, authenticated with
# OPENCLAW_GATEWAY_TOKEN, in OpenClaw's protocol. Both are read by the worker when a run starts.
ENVIRONMENT_GATEWAY_URL_VARIABLE = "OPENCLAW_GATEWAY_URL"
ENVIRONMENT_GATEWAY = AgentGatewaySpec(
    url="${OPENCLAW_GATEWAY_URL}", token="${OPENCLAW_GATEWAY_TOKEN}", protocol="openclaw"
)


def _cron_field(values: list, full: range) -> list[int]:
    return list(full) if values == ["*"] else sorted({int(v) for v in values})


@functools.lru_cache(maxsize=64)
def cron_max_gap_minutes(cron: str, tz: str) -> int:
    """The longest gap between two consecutive fires of `cron` in `tz`: how long the heartbeat
    may be silent when its cadence is a cron expression rather than an interval. Computed from
    the expanded fields (no stepping through fire times, so parsing stays fast): the longest gap
    on the wall clock over eight years of days (leap days included), plus the zone's
    daylight-saving shift when it has one (a fall-back night makes a gap that much longer)."""
    fields = croniter.expand(cron)[0]
    minutes, hours = _cron_field(fields[0], range(60)), _cron_field(fields[1], range(24))
    doms, months = _cron_field(fields[2], range(1, 32)), _cron_field(fields[3], range(1, 13))
    dows = {d % 7 for d in _cron_field(fields[4], range(7))}
    times = sorted(h * 60 + m for h in hours for m in minutes)
    longest = max((b - a for a, b in itertools.pairwise(times)), default=0)
    previous: date | None = None
    day = date(2024, 1, 1)
    for _ in range(366 * 8):
        # As Temporal fires a cron: the day of the month and the day of the week must both match
        # (classic cron's "either one, when both are restricted" is not what it does).
        fires = day.month in months and day.day in doms and (day.weekday() + 1) % 7 in dows
        if fires:
            if previous is not None:
                longest = max(longest, (day - previous).days * 1440 - times[-1] + times[0])
            previous = day
        day += timedelta(days=1)
    zone = ZoneInfo(tz)
    offsets = {(datetime(2026, month, 1, tzinfo=zone).utcoffset() or timedelta(0)) for month in range(1, 13)}
    shift = (max(offsets) - min(offsets)).total_seconds() / 60
    return max(1, math.ceil(longest + shift))


class GovernanceSpec(_Model):
    """`heartbeat` supplies the heartbeat's thresholds; its cadence is `heartbeat.interval_minutes`
    or, in the original system's form, the cron of a `HEARTBEAT` entry in `schedules` (then
    `heartbeat.interval_minutes` is the longest gap between two fires of that cron, and setting
    both is an error)."""

    heartbeat: HeartbeatSpec = HeartbeatSpec()
    system_tenant: SystemTenantSpec = SystemTenantSpec()
    agent_gateway: AgentGatewaySpec | None = None
    schedules: list[ScheduleSpec] = Field(default_factory=list)
    catchup_window_seconds: int = Field(default=60, ge=0)
    # The DAO's on-chain identity where the original system keeps it today (it moved the first
    # five from `cogni_dao`): the same meaning as under `cogni_dao` (RepoSpec merges them).
    dao_contract: EthAddress | None = None
    plugin_contract: EthAddress | None = None
    signal_contract: EthAddress | None = None
    chain_id: int | None = Field(default=None, ge=0)
    base_url: HttpUrl | None = None
    token_contract: EthAddress | None = None  # kept, unused here
    emissions_holder: EthAddress | None = None  # kept, unused here
    _heartbeat_entry: ScheduleSpec | None = PrivateAttr(default=None)

    @field_validator("schedules")
    @classmethod
    def _unique_charters(cls, v: list[ScheduleSpec]) -> list[ScheduleSpec]:
        seen: dict[str, int] = {}
        for i, s in enumerate(v):
            key = s.charter.lower()
            if key in seen:
                raise ValueError(f"duplicate charter {s.charter!r} at schedules[{i}] (first at schedules[{seen[key]}])")
            if s.is_heartbeat and s.entrypoint != "HEARTBEAT":
                raise ValueError(
                    f"schedules[{i}]: charter {s.charter!r} is the heartbeat; its entrypoint must be HEARTBEAT, "
                    f"not {s.entrypoint!r} (rename the charter to schedule a governance run)"
                )
            if s.entrypoint.upper() == LEDGER_INGEST_CHARTER and not s.is_ledger_ingest:
                raise ValueError(
                    f"schedules[{i}]: entrypoint {s.entrypoint!r} is the original system's ledger ingestion, which "
                    f"it starts for the charter {LEDGER_INGEST_CHARTER} only; name the charter "
                    f"{LEDGER_INGEST_CHARTER}, or choose another word for the agent gateway"
                )
            seen[key] = i
        return v

    @model_validator(mode="after")
    def _heartbeat_cadence(self) -> GovernanceSpec:
        entry = next(((i, s) for i, s in enumerate(self.schedules) if s.is_heartbeat), None)
        if entry is None:
            return self
        i, s = entry
        if "interval_minutes" in self.heartbeat.model_fields_set:
            raise ValueError(
                f"heartbeat.interval_minutes ({self.heartbeat.interval_minutes}) and schedules[{i}] "
                f"(charter {s.charter!r}, cron {s.cron!r}) both set the heartbeat's cadence; keep one"
            )
        # The cadence comes from the entry: interval_minutes becomes the longest gap between fires.
        # Built with the block's own fields-set, so a dump(exclude_unset=True) re-validates the same.
        hb = HeartbeatSpec.model_construct(
            _fields_set=set(self.heartbeat.model_fields_set),
            **{**self.heartbeat.__dict__, "interval_minutes": cron_max_gap_minutes(s.cron, s.timezone)},
        )
        object.__setattr__(self, "heartbeat", hb)
        self._heartbeat_entry = s
        return self

    @property
    def heartbeat_entry(self) -> ScheduleSpec | None:
        """The `HEARTBEAT` entry of `schedules`, if the file has one."""
        return self._heartbeat_entry

    @property
    def charter_schedules(self) -> list[ScheduleSpec]:
        """The entries that start governance runs (and the original's LEDGER_INGEST): `schedules`
        without the heartbeat's entry."""
        return [s for s in self.schedules if not s.is_heartbeat]

    @property
    def gateway(self) -> AgentGatewaySpec:
        """The gateway free words go to: the file's, else the one the environment names."""
        return self.agent_gateway or ENVIRONMENT_GATEWAY

    def gateway_problems(self, *, gateway_in_environment: bool = False) -> list[str]:
        """One line per charter with a free-word entrypoint while no agent gateway is configured,
        neither in the file nor (`gateway_in_environment`) by OPENCLAW_GATEWAY_URL."""
        if self.agent_gateway is not None or gateway_in_environment:
            return []
        return [
            f"governance.schedules[{i}]: charter {s.charter!r} has entrypoint {s.entrypoint!r}, which is handed to "
            f"the agent gateway, but neither governance.agent_gateway.url nor {ENVIRONMENT_GATEWAY_URL_VARIABLE} "
            "is set"
            for i, s in enumerate(self.schedules)
            if s.uses_gateway
        ]


# --- guardian --------------------------------------------------------------------------


class TrackerSpec(_Model):
    url: str = "http://127.0.0.1:8922"
    timeout_seconds: float = Field(default=2.0, gt=0)
    staleness_seconds: int = Field(default=120, ge=1)
    failures_before_alert: int = Field(default=3, ge=1)
    push_token: SecretRef | None = None


class WebhookSpec(_Model):
    url: str
    secret: SecretRef


class NotificationsSpec(_Model):
    admin_urls: list[SecretRef] = Field(default_factory=list)
    urgent_urls: list[SecretRef] = Field(default_factory=list)
    webhook: WebhookSpec | None = None


GUARDIAN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class GuardianSpec(_Model):
    name: str | None = None
    tracker: TrackerSpec = TrackerSpec()
    rules: GuardianRules = GuardianRules()
    breakers: list[BreakerTarget] = Field(default_factory=list)
    notifications: NotificationsSpec = NotificationsSpec()
    admins: list[EthAddress] = Field(default_factory=list)
    resume_quorum: int = Field(default=2, ge=1)
    signature_max_age_seconds: int = Field(default=900, ge=1)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not GUARDIAN_NAME.match(v):
            raise ValueError(f"{v!r} is not a valid guardian name (letters, digits, '_', '-', '.'; at most 63)")
        return v

    @field_validator("admins")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("admin addresses must be distinct")
        return v

    @property
    def workflow_id(self) -> str:
        return guardian_workflow_id(self.name)


class WatchdogSpec(_Model):
    """The `governance-watchdog` workflow (docs/watchdog.md): how often it looks at the declared
    workflows and the heartbeat."""

    enabled: bool = True
    check_seconds: int = Field(default=15, ge=1, le=60)


def guardian_config(spec: GuardianSpec, dao: CogniDao | None = None, **overrides: Any) -> GuardianConfig:
    """The guardian workflow's configuration from repo-spec's `guardian` block (and `cogni_dao`,
    the domain of its admin signatures)."""
    data: dict[str, Any] = dict(
        signing_domain=(dao or CogniDao()).signing_domain(),
        guardian_id=spec.workflow_id,
        rules=spec.rules,
        tracker_url=spec.tracker.url,
        tracker_timeout_seconds=spec.tracker.timeout_seconds,
        staleness_seconds=spec.tracker.staleness_seconds,
        failures_before_alert=spec.tracker.failures_before_alert,
        breakers=list(spec.breakers),
        admins=list(spec.admins),
        resume_quorum=spec.resume_quorum,
        signature_max_age_seconds=spec.signature_max_age_seconds,
    )
    data.update(overrides)
    return GuardianConfig(**data)


# --- the original system's ledger -------------------------------------------------------------


class ActivitySourceSpec(_Model):
    model_config = ConfigDict(extra="allow", frozen=True)
    attribution_pipeline: str = Field(min_length=1)
    source_refs: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    excluded_logins: list[Annotated[str, Field(min_length=1)]] | None = None


class PoolConfigSpec(_Model):
    model_config = ConfigDict(extra="allow", frozen=True)
    base_issuance_credits: str = Field(pattern=r"^[0-9]+$")  # a string of digits, as the original writes it


class ActivityLedgerSpec(_Model):
    """The original system's `activity_ledger`: what its ledger ingestion (`LEDGER_INGEST`)
    collects. Checked as the original checks it; the fleet only passes it on to the original's
    workers (govfleet/contracts/ledger_ingest.py)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    epoch_length_days: int = Field(ge=1, le=90)
    approvers: list[EthAddressAsWritten] = Field(default_factory=list)
    activity_sources: dict[str, ActivitySourceSpec]
    pool_config: PoolConfigSpec | None = None


UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
SCOPE_KEY = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def _uuid(value: Any) -> str:
    if not isinstance(value, str) or not UUID.match(value):
        raise ValueError(f"{value!r} is not a UUID")
    return value


def _scope_key(value: Any) -> str:
    if not isinstance(value, str) or not SCOPE_KEY.match(value):
        raise ValueError(f"{value!r} is not a scope key (a lowercase letter, then letters, digits, '-'; at most 32)")
    return value


# The DAO identity keys the original moved from `cogni_dao` into `governance`.
MOVED_DAO_KEYS = ("dao_contract", "plugin_contract", "signal_contract", "chain_id", "base_url")


class RepoSpec(_Model):
    """`guardian` is the default guardian (`governance-guardian`, or `governance-guardian-<name>`);
    `guardians` declares more, one per DAO, each with its own name. A file that writes neither
    declares no guardian (see `declared_guardians`).

    The original system's sections are kept; the ones the fleet reads are typed here:
    `node_id`, `scope_id`, `scope_key` and `activity_ledger` (its ledger ingestion), and the DAO
    identity it keeps under `governance` (merged into `cogni_dao`)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    cogni_dao: CogniDao = CogniDao()
    governance: GovernanceSpec = GovernanceSpec()
    guardian: GuardianSpec = GuardianSpec()
    guardians: list[GuardianSpec] = Field(default_factory=list)
    watchdog: WatchdogSpec = WatchdogSpec()
    node_id: Annotated[str, BeforeValidator(_uuid)] | None = None
    scope_id: Annotated[str, BeforeValidator(_uuid)] | None = None
    scope_key: Annotated[str, BeforeValidator(_scope_key)] | None = None
    activity_ledger: ActivityLedgerSpec | None = None
    _ledger_ingest_entry: ScheduleSpec | None = PrivateAttr(default=None)

    @field_validator("guardians")
    @classmethod
    def _named(cls, v: list[GuardianSpec]) -> list[GuardianSpec]:
        seen: dict[str, int] = {}
        for i, g in enumerate(v):
            if not g.name:
                raise ValueError(f"entry [{i}] has no name (its workflow id is governance-guardian-<name>)")
            if g.workflow_id in seen:
                raise ValueError(
                    f"duplicate guardian name {g.name!r} at guardians[{i}] (first at guardians[{seen[g.workflow_id]}])"
                )
            seen[g.workflow_id] = i
        return v

    @model_validator(mode="after")
    def _distinct_ids(self) -> RepoSpec:
        if self.declares_default_guardian and self.guardian.workflow_id in {g.workflow_id for g in self.guardians}:
            raise ValueError(
                f"{self.guardian.workflow_id!r} is both the `guardian` block's workflow id and one in `guardians`; "
                "rename one"
            )
        return self

    @model_validator(mode="after")
    def _one_dao_identity(self) -> RepoSpec:
        """`governance.<key>` and `cogni_dao.<key>` name the same thing: written in one place it
        counts for both; written in both with different values it is an error naming both."""
        g, dao = self.governance, self.cogni_dao
        update: dict[str, Any] = {}
        conflicts = []
        for key in MOVED_DAO_KEYS:
            if key not in g.model_fields_set or getattr(g, key) is None:
                continue
            value = getattr(g, key)
            if key in dao.model_fields_set and getattr(dao, key) is not None:
                if getattr(dao, key) != value:
                    conflicts.append(
                        f"cogni_dao.{key} ({getattr(dao, key)!r}) and governance.{key} ({value!r}) disagree"
                    )
                continue
            update[key] = value
        if conflicts:
            raise ValueError(
                "; ".join(conflicts) + " (the original system moved these keys from cogni_dao into governance; "
                "both places mean the same: keep one, or give both the same value)"
            )
        if update:
            object.__setattr__(self, "cogni_dao", dao.model_copy(update=update))
        return self

    @model_validator(mode="after")
    def _ledger_ingest(self) -> RepoSpec:
        """A LEDGER_INGEST charter is the original's ledger ingestion: it needs the ledger's
        sections, and without them it is an error (the original would quietly hand the word to
        its agent instead). A ledger without the charter gets the original's daily entry."""
        missing = [
            name for name in ("node_id", "scope_id", "scope_key", "activity_ledger") if getattr(self, name) is None
        ]
        for i, s in enumerate(self.governance.schedules):
            if s.is_ledger_ingest and missing:
                raise ValueError(
                    f"governance.schedules[{i}]: charter {s.charter!r} is the original system's ledger ingestion "
                    "(CollectEpochWorkflow on the ledger-tasks queue, run by the original's workers), which needs "
                    f"{', '.join(missing)}; it is never handed to the agent gateway"
                )
        declared = any(s.is_ledger_ingest for s in self.governance.schedules)
        if not declared and self.activity_ledger is not None and self.scope_id and self.scope_key and self.node_id:
            self._ledger_ingest_entry = ScheduleSpec(
                charter=LEDGER_INGEST_CHARTER, cron=LEDGER_INGEST_CRON, entrypoint=LEDGER_INGEST_CHARTER
            )
        return self

    @property
    def declares_default_guardian(self) -> bool:
        """The `guardian` block counts when the file writes it: no guardian unless one is declared."""
        return "guardian" in self.model_fields_set

    def declared_guardians(self) -> list[GuardianSpec]:
        """Every guardian this repo-spec declares: the `guardian` block first, then `guardians`."""
        return [*([self.guardian] if self.declares_default_guardian else []), *self.guardians]

    def guardian_by_id(self, workflow_id: str) -> GuardianSpec | None:
        return next((g for g in self.declared_guardians() if g.workflow_id == workflow_id), None)

    @property
    def primary_guardian_id(self) -> str:
        """The first declared guardian's workflow id (the single-guardian endpoints address it,
        and its channels hear the heartbeat's incidents); `governance-guardian` when none is."""
        guardians = self.declared_guardians()
        return guardians[0].workflow_id if guardians else guardian_workflow_id(None)

    @property
    def charter_schedules(self) -> list[ScheduleSpec]:
        """Every schedule entry but the heartbeat's: the file's, then the LEDGER_INGEST entry the
        original adds for a file with a ledger and no such charter."""
        extra = [self._ledger_ingest_entry] if self._ledger_ingest_entry is not None else []
        return [*self.governance.charter_schedules, *extra]

    def listed_schedules(self) -> list[ScheduleSpec]:
        """What the status surface lists as upcoming runs, as the original's status page does:
        every schedule entry, the `HEARTBEAT` entry included (`Heartbeat`)."""
        hb = self.governance.heartbeat_entry
        return [*([hb] if hb is not None else []), *self.charter_schedules]


# --- loading ---------------------------------------------------------------------------


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _lookup(data: Any, loc: tuple[Any, ...]) -> Any:
    cur = data
    for part in loc:
        try:
            cur = cur[part]
        except (KeyError, IndexError, TypeError):
            return None
    return cur


def format_validation_error(err: ValidationError, data: Any = None) -> list[str]:
    problems = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = e["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            if msg.startswith(prefix):
                msg = msg[len(prefix) :]
        path = _format_loc(loc)
        if e["type"] == "value_error" or "must" in msg or "is not" in msg:
            problems.append(f"{path}: {msg}" if path else msg)
        else:
            value = e.get("input", _lookup(data, loc))
            problems.append(f"{path}: {value!r}: {msg}" if path else msg)
    return problems


def parse_repo_spec(text: str, source: str = "repo-spec") -> RepoSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RepoSpecError(source, [f"invalid YAML{where}: {problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RepoSpecError(source, [f"top level must be a mapping, got {type(data).__name__}"])
    try:
        return RepoSpec.model_validate(data)
    except ValidationError as err:
        raise RepoSpecError(source, format_validation_error(err, data)) from None


def load_repo_spec(path: str | Path) -> RepoSpec:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RepoSpecError(str(p), ["file not found"]) from None
    return parse_repo_spec(text, str(p))

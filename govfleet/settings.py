"""The one place that reads configuration.

Environment variables (12-factor) override `.cogni/repo-spec.yaml`,
which holds the declarative, DAO-auditable part. `load_config()` returns both, with the
overrides already applied to the repo-spec models.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from govfleet.domain.billing import DEFAULT_MAX_PURCHASE_USD_CENTS, parse_max_purchase
from govfleet.domain.email_channel import SmtpServer, parse_addresses, parse_smtp_url
from govfleet.domain.payment_signature import DEFAULT_TOLERANCE_SECONDS

if TYPE_CHECKING:
    from govfleet.repo_spec import RepoSpec

# The repo-spec's models are imported when a repo-spec is loaded, not with the settings:
# commands that need only the environment start faster (docs/cli.md).

DEFAULT_TASK_QUEUE = "governance-fleet"
MIN_SIGNING_SECRET_LENGTH = 16
# The operator's declaration that this deployment is a throw-away one, in so many words: only
# then do `migrate`, `reconcile`, `worker` and `api` accept publicly known keys as admins
# (docs/security.md, "Publicly known keys").
THROWAWAY_VARIABLE = "GOVFLEET_THROWAWAY_ENVIRONMENT"
THROWAWAY_WORDS = "yes-public-keys-are-fine"
# NOTIFY_URLS=none: the operator says on purpose that nobody is notified (docs/notifications.md,
# "Never silent").
NOTIFY_NONE = "none"


class ConfigError(ValueError):
    """Configuration from the environment is invalid."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=True, extra="ignore")

    # Where things are. Unset TEMPORAL_ADDRESS / DATABASE_URL means "start embedded" (govfleet up).
    TEMPORAL_ADDRESS: str | None = None
    # Unset: the namespace of the Temporal profile file, else "default" (the SDK's environment
    # configuration decides; govfleet/temporal.py). A default here would override the profile's.
    TEMPORAL_NAMESPACE: str | None = None
    TEMPORAL_TASK_QUEUE: str = DEFAULT_TASK_QUEUE
    DATABASE_URL: str | None = None
    DATABASE_CONNECT_TIMEOUT_SECONDS: float = Field(10.0, gt=0)
    REPO_SPEC_PATH: str = ".cogni/repo-spec.yaml"
    GOVFLEET_DATA_DIR: str = ".govfleet"

    # HTTP surface.
    SERVICE_HOST: str = "127.0.0.1"
    SERVICE_PORT: int = 8926
    API_READ_TOKEN: str | None = None  # when set, read endpoints require `Authorization: Bearer <token>`
    GUARDIAN_PUSH_TOKEN: str | None = None  # bearer token for POST /guardian/readings
    # The API's sockets (docs/security.md, "Sockets"): open connections past the cap are answered
    # 503; headers and body must arrive within their timeouts; an idle keep-alive connection is closed.
    API_MAX_CONNECTIONS: int = Field(1000, ge=1)
    API_HEADER_TIMEOUT_SECONDS: float = Field(10.0, gt=0)
    API_BODY_TIMEOUT_SECONDS: float = Field(10.0, gt=0)
    API_KEEP_ALIVE_SECONDS: float = Field(5.0, gt=0)
    # Refused admin requests (docs/security.md, "Admin actions"): per minute, this many client
    # addresses get a row of their own in admin_rejections, the others share one; rows older than
    # the retention are deleted by the heartbeat.
    ADMIN_REJECTIONS_SOURCES_PER_MINUTE: int = Field(20, ge=1, le=10_000)
    ADMIN_REJECTIONS_RETENTION_DAYS: int = Field(14, ge=1)
    METRICS_PORT: int | None = None  # when set, workers serve Prometheus metrics on it
    METRICS_HOST: str = "0.0.0.0"
    # On SIGTERM a worker stops polling and lets running activities finish this long
    # (compose's stop_grace_period must be longer); docs/deployment.md.
    WORKER_SHUTDOWN_GRACE_SECONDS: float = Field(20.0, ge=0)

    # The guardian's integration and monitoring variables (override repo-spec guardian.*).
    VOTING_TRACKER_URL: str | None = None
    REDEMPTION_ALGORITHM_URL: str | None = None
    TREASURY_CORE_URL: str | None = None
    MONITORING_INTERVAL_NORMAL: int | None = Field(None, ge=1)
    MONITORING_INTERVAL_CAUTION: int | None = Field(None, ge=1)
    MONITORING_INTERVAL_CRITICAL: int | None = Field(None, ge=1)
    CAUTION_THRESHOLD: Decimal | None = None
    WARNING_THRESHOLD: Decimal | None = None
    CRITICAL_THRESHOLD: Decimal | None = None
    EMERGENCY_THRESHOLD: Decimal | None = None

    # The ledger (docs/ledger.md).
    SYSTEM_TENANT_REVENUE_SHARE: Decimal = Decimal("0.75")
    PAYMENT_MAX_USD_CENTS: int = DEFAULT_MAX_PURCHASE_USD_CENTS  # per purchase, in cents
    # Payment confirmations are signed by the payment backend (docs/ledger.md, "Authentication").
    # Unset: the payment endpoint refuses every confirmation. While a secret is being rotated, the
    # old one goes in PAYMENT_SIGNING_SECRET_PREVIOUS and both are accepted.
    PAYMENT_SIGNING_SECRET: str | None = Field(None, repr=False)
    PAYMENT_SIGNING_SECRET_PREVIOUS: str | None = Field(None, repr=False)
    PAYMENT_SIGNATURE_TOLERANCE_SECONDS: int = Field(DEFAULT_TOLERANCE_SECONDS, ge=1, le=3600)

    # Notification channels from the environment, beside repo-spec's guardian.notifications
    # (docs/guardian.md, "Notifications"): a Slack incoming webhook gets every notification;
    # ADMIN_EMAIL (comma-separated) gets the urgent ones, through the SMTP server of SMTP_URL.
    SLACK_WEBHOOK_URL: str | None = Field(None, repr=False)
    ADMIN_EMAIL: str | None = None
    SMTP_URL: str | None = Field(None, repr=False)  # smtp://[user:password@]host[:port], smtp+starttls://, smtps://
    SMTP_FROM: str = "governance-fleet@localhost"
    # Apprise URLs (comma- or space-separated) that get every notification of every guardian, the
    # heartbeat and the watchdog; or `none`: no channel, on purpose (a warning, never silence).
    NOTIFY_URLS: str | None = Field(None, repr=False)
    GOVFLEET_THROWAWAY_ENVIRONMENT: str | None = None

    LOG_FORMAT: str | None = None  # "json" | "console"; default: console on a terminal, else json
    LOG_LEVEL: str = "INFO"

    # The original system's agent gateway: free-word charters go there when the repo-spec names
    # no governance.agent_gateway (docs/schedules.md, "Entrypoints"). Workers read it (and
    # OPENCLAW_GATEWAY_TOKEN) when a run starts; reconcile only checks that it is set.
    OPENCLAW_GATEWAY_URL: str | None = None

    @field_validator("TEMPORAL_TASK_QUEUE")
    @classmethod
    def _not_the_originals_queue(cls, v: str) -> str:
        from govfleet.contracts.ledger_ingest import original_task_queue

        if original_task_queue(v):
            raise ValueError(
                f"{v!r} is a task queue the original system's workers poll (scheduler-tasks, scheduler-tasks-<node>, "
                "ledger-tasks): on a shared queue each side's workers take the other's tasks and fail them; "
                "use a queue of the fleet's own (unset: governance-fleet)"
            )
        return v

    @field_validator("SYSTEM_TENANT_REVENUE_SHARE")
    @classmethod
    def _share(cls, v: Decimal) -> Decimal:
        if not v.is_finite() or not (Decimal(0) <= v <= Decimal(1)):
            raise ValueError(f"{v} must be a decimal between 0 and 1 (e.g. 0.75)")
        return v

    @field_validator("PAYMENT_MAX_USD_CENTS")
    @classmethod
    def _max_purchase(cls, v: int) -> int:
        return parse_max_purchase(v)

    @field_validator("PAYMENT_SIGNING_SECRET", "PAYMENT_SIGNING_SECRET_PREVIOUS")
    @classmethod
    def _signing_secret(cls, v: str | None) -> str | None:
        if not v:
            return None  # an empty variable is an unset one
        if len(v) < MIN_SIGNING_SECRET_LENGTH or v != v.strip():
            # The value itself is never echoed.
            raise ValueError(
                f"must be at least {MIN_SIGNING_SECRET_LENGTH} characters without surrounding whitespace "
                "(e.g. the output of `openssl rand -hex 32`)"
            )
        return v

    @field_validator(
        "SLACK_WEBHOOK_URL", "ADMIN_EMAIL", "SMTP_URL", "NOTIFY_URLS", "GOVFLEET_THROWAWAY_ENVIRONMENT", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("SLACK_WEBHOOK_URL")
    @classmethod
    def _slack_url(cls, v: str | None) -> str | None:
        if v is not None:
            parts = urlsplit(v.strip())
            if parts.scheme not in ("https", "http") or not parts.hostname:
                # The value is a secret (its path is the token): never echoed.
                raise ValueError("must be the webhook's http(s) URL (e.g. https://hooks.slack.com/services/T…/B…/…)")
            return v.strip()
        return v

    @field_validator("NOTIFY_URLS")
    @classmethod
    def _notify_urls(cls, v: str | None) -> str | None:
        if v is None:
            return v
        urls = split_urls(v)
        if [u.lower() for u in urls] == [NOTIFY_NONE]:
            return NOTIFY_NONE
        for i, url in enumerate(urls, 1):
            if url.lower() == NOTIFY_NONE:
                raise ValueError(f"`{NOTIFY_NONE}` must stand alone (it says: no channel at all)")
            if "://" not in url or not url.split("://", 1)[0]:
                # The value may hold a secret (a token in the URL): only its position is named.
                raise ValueError(
                    f"URL #{i} is not an apprise URL (scheme://…, e.g. slack://…, mailto://…, json://host/path), "
                    f"nor the word `{NOTIFY_NONE}`"
                )
        return " ".join(urls)

    @field_validator("GOVFLEET_THROWAWAY_ENVIRONMENT")
    @classmethod
    def _throwaway(cls, v: str | None) -> str | None:
        if v is not None and v.strip() != THROWAWAY_WORDS:
            raise ValueError(
                f"must be exactly {THROWAWAY_WORDS!r} to declare a throw-away environment (publicly known keys "
                "accepted as admins), or unset"
            )
        return None if v is None else THROWAWAY_WORDS

    @field_validator("ADMIN_EMAIL")
    @classmethod
    def _admin_email(cls, v: str | None) -> str | None:
        if v is not None:
            parse_addresses(v)
        return v

    @field_validator("SMTP_URL")
    @classmethod
    def _smtp_url(cls, v: str | None) -> str | None:
        if v is not None:
            parse_smtp_url(v.strip())
            return v.strip()
        return v

    @field_validator("SMTP_FROM")
    @classmethod
    def _smtp_from(cls, v: str) -> str:
        parse_addresses(v)
        return v

    @model_validator(mode="after")
    def _email_needs_a_server(self) -> Settings:
        if self.ADMIN_EMAIL and not self.SMTP_URL:
            raise ValueError(
                "ADMIN_EMAIL is set but SMTP_URL is not: set SMTP_URL to the mail server "
                "(e.g. smtp://mail.example.org:25), or unset ADMIN_EMAIL"
            )
        return self

    def admin_emails(self) -> list[str]:
        """ADMIN_EMAIL's addresses (none when unset)."""
        return parse_addresses(self.ADMIN_EMAIL) if self.ADMIN_EMAIL else []

    def smtp_server(self) -> SmtpServer | None:
        return parse_smtp_url(self.SMTP_URL) if self.SMTP_URL else None

    @property
    def throwaway_environment(self) -> bool:
        """The operator declared this a throw-away environment (GOVFLEET_THROWAWAY_ENVIRONMENT)."""
        return self.GOVFLEET_THROWAWAY_ENVIRONMENT == THROWAWAY_WORDS

    @property
    def notifications_declared_none(self) -> bool:
        """NOTIFY_URLS=none: the operator runs without a notification channel on purpose."""
        return self.NOTIFY_URLS == NOTIFY_NONE

    def notify_urls(self) -> list[str]:
        """NOTIFY_URLS's apprise URLs (none when unset or `none`)."""
        return [] if not self.NOTIFY_URLS or self.notifications_declared_none else split_urls(self.NOTIFY_URLS)

    def payment_signing_secrets(self) -> list[str]:
        """The secrets a payment confirmation may be signed with (none: payments are refused)."""
        return [s for s in (self.PAYMENT_SIGNING_SECRET, self.PAYMENT_SIGNING_SECRET_PREVIOUS) if s]


def split_urls(value: str) -> list[str]:
    """URLs separated by commas and/or whitespace."""
    return [u for u in value.replace(",", " ").split() if u]


@dataclass(frozen=True)
class Config:
    settings: Settings
    spec: RepoSpec


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    try:
        # Passing values explicitly keeps tests independent of the process environment.
        fields = Settings.model_fields
        return Settings.model_validate({k: v for k, v in env.items() if k in fields})
    except ValidationError as err:
        from govfleet.repo_spec import format_validation_error

        raise ConfigError("invalid environment: " + "; ".join(format_validation_error(err))) from None


def apply_env_overrides(spec: RepoSpec, s: Settings) -> RepoSpec:
    """The guardian's environment variables win over the repo-spec (12-factor deploys)."""
    from govfleet.repo_spec import RepoSpec, RepoSpecError, format_validation_error

    g = spec.guardian
    rules = g.rules.model_dump()
    for env_name, field in [
        ("MONITORING_INTERVAL_NORMAL", "monitoring_interval_normal"),
        ("MONITORING_INTERVAL_CAUTION", "monitoring_interval_caution"),
        ("MONITORING_INTERVAL_CRITICAL", "monitoring_interval_critical"),
        ("CAUTION_THRESHOLD", "caution_threshold"),
        ("WARNING_THRESHOLD", "warning_threshold"),
        ("CRITICAL_THRESHOLD", "critical_threshold"),
        ("EMERGENCY_THRESHOLD", "emergency_threshold"),
    ]:
        value = getattr(s, env_name)
        if value is not None:
            rules[field] = value
    tracker = g.tracker.model_dump()
    if s.VOTING_TRACKER_URL:
        tracker["url"] = s.VOTING_TRACKER_URL
    breakers = [b.model_dump() for b in g.breakers]
    for env_url, name in [
        (s.REDEMPTION_ALGORITHM_URL, "redemption-algorithm"),
        (s.TREASURY_CORE_URL, "sol-treasury-core"),
    ]:
        if env_url:
            for b in breakers:
                if b["name"] == name:
                    b["url"] = env_url
    # exclude_unset keeps which blocks the file wrote (a file with only `guardians` declares no
    # default guardian); the overrides apply to the `guardian` block alone.
    data = spec.model_dump(exclude_unset=True)
    if spec.declares_default_guardian:
        data.setdefault("guardian", {}).update(rules=rules, tracker=tracker, breakers=breakers)
    try:
        return RepoSpec.model_validate(data)
    except ValidationError as err:
        raise RepoSpecError("environment overrides", format_validation_error(err, data)) from None


def load_config(environ: dict[str, str] | None = None, repo_spec_path: str | Path | None = None) -> Config:
    from govfleet.repo_spec import load_repo_spec

    settings = load_settings(environ)
    spec = load_repo_spec(repo_spec_path or settings.REPO_SPEC_PATH)
    return Config(settings=settings, spec=apply_env_overrides(spec, settings))

-- governance-fleet schema: tenants, append-only credit ledger, grants, governance runs,
-- guardian audit tables (docs/guardian.md), heartbeat CloudEvents.
-- Safe to re-run: yoyo records applied migrations, and every statement is idempotent too.

CREATE TABLE IF NOT EXISTS users (
    id             TEXT PRIMARY KEY,
    wallet_address TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS billing_accounts (
    id               TEXT PRIMARY KEY,
    owner_user_id    TEXT NOT NULL REFERENCES users(id),
    is_system_tenant BOOLEAN NOT NULL DEFAULT false,
    balance_credits  BIGINT NOT NULL DEFAULT 0 CHECK (balance_credits >= 0),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS billing_accounts_owner_uidx ON billing_accounts(owner_user_id);
-- At most one system tenant.
CREATE UNIQUE INDEX IF NOT EXISTS billing_accounts_one_system_tenant_uidx
    ON billing_accounts(is_system_tenant) WHERE is_system_tenant;

CREATE TABLE IF NOT EXISTS credit_ledger (
    id                 BIGSERIAL PRIMARY KEY,
    billing_account_id TEXT NOT NULL REFERENCES billing_accounts(id),
    amount             BIGINT NOT NULL CHECK (amount <> 0),
    balance_after      BIGINT NOT NULL CHECK (balance_after >= 0),
    reason             TEXT NOT NULL,
    reference          TEXT NOT NULL CHECK (reference <> ''),
    metadata           JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT credit_ledger_once UNIQUE (billing_account_id, reason, reference)
);
CREATE INDEX IF NOT EXISTS credit_ledger_account_created_idx ON credit_ledger(billing_account_id, created_at);

-- The ledger is append-only: the database itself refuses UPDATE, DELETE and TRUNCATE.
CREATE OR REPLACE FUNCTION credit_ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'credit_ledger is append-only: % is not allowed (write a correcting entry instead)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
DROP TRIGGER IF EXISTS credit_ledger_no_update_delete ON credit_ledger;
CREATE TRIGGER credit_ledger_no_update_delete BEFORE UPDATE OR DELETE ON credit_ledger
    FOR EACH ROW EXECUTE FUNCTION credit_ledger_refuse_change();
DROP TRIGGER IF EXISTS credit_ledger_no_truncate ON credit_ledger;
CREATE TRIGGER credit_ledger_no_truncate BEFORE TRUNCATE ON credit_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION credit_ledger_refuse_change();

CREATE TABLE IF NOT EXISTS execution_grants (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users(id),
    billing_account_id TEXT NOT NULL REFERENCES billing_accounts(id),
    scopes             TEXT[] NOT NULL DEFAULT '{}',
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at         TIMESTAMPTZ,
    revoked_at         TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS execution_grants_user_idx ON execution_grants(user_id);

-- One row per governance run; its id is the status contract's run id (docs/status.md).
CREATE TABLE IF NOT EXISTS governance_runs (
    id              TEXT PRIMARY KEY,
    owner_user_id   TEXT NOT NULL REFERENCES users(id),
    title           TEXT,
    schedule_id     TEXT,
    charter         TEXT,
    entrypoint      TEXT,
    scheduled_at    TIMESTAMPTZ,
    started_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at      TIMESTAMPTZ,
    status          TEXT NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'success', 'error', 'refused')),
    reason          TEXT,
    brief           TEXT,
    credits_charged BIGINT NOT NULL DEFAULT 0,
    metadata        JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS governance_runs_owner_updated_idx ON governance_runs(owner_user_id, updated_at);

-- The guardian's audit tables (guardian_id so several guardians can share one database;
-- idempotency keys so a retried activity never writes a row twice).
CREATE TABLE IF NOT EXISTS governance_alerts (
    id              SERIAL PRIMARY KEY,
    guardian_id     TEXT NOT NULL DEFAULT 'governance-guardian',
    timestamp       TIMESTAMPTZ NOT NULL DEFAULT now(),
    alert_type      VARCHAR(30) NOT NULL,
    holder_control  DECIMAL(5,2),
    message         TEXT NOT NULL,
    action_taken    VARCHAR(50) NOT NULL,
    resolved        BOOLEAN NOT NULL DEFAULT FALSE,
    resolved_at     TIMESTAMPTZ,
    idempotency_key TEXT UNIQUE
);
CREATE INDEX IF NOT EXISTS idx_alert_timestamp ON governance_alerts(timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_alert_resolved ON governance_alerts(resolved);

CREATE TABLE IF NOT EXISTS governance_events (
    id              SERIAL PRIMARY KEY,
    guardian_id     TEXT NOT NULL DEFAULT 'governance-guardian',
    timestamp       TIMESTAMPTZ NOT NULL DEFAULT now(),
    event_type      VARCHAR(30) NOT NULL,
    holder_control  DECIMAL(5,2),
    threshold_level VARCHAR(20) NOT NULL,
    action          VARCHAR(50) NOT NULL,
    details         TEXT,
    idempotency_key TEXT UNIQUE
);
CREATE INDEX IF NOT EXISTS idx_event_timestamp ON governance_events(timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_event_type ON governance_events(event_type);

CREATE TABLE IF NOT EXISTS system_pauses (
    id                      SERIAL PRIMARY KEY,
    guardian_id             TEXT NOT NULL DEFAULT 'governance-guardian',
    paused_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    resumed_at              TIMESTAMPTZ,
    pause_reason            TEXT NOT NULL,
    pause_type              VARCHAR(20) NOT NULL CHECK (pause_type IN ('automatic', 'manual')),
    scope                   VARCHAR(20) NOT NULL DEFAULT 'redemptions',
    holder_control_at_pause DECIMAL(5,2),
    resumed_by              VARCHAR(100),
    resume_reason           TEXT,
    pause_key               TEXT UNIQUE
);
CREATE INDEX IF NOT EXISTS idx_pause_timestamp ON system_pauses(paused_at DESC);

-- governance.heartbeat CloudEvents (specversion 1.0), stored whole.
CREATE TABLE IF NOT EXISTS heartbeat_events (
    id     TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    type   TEXT NOT NULL,
    time   TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL,
    data   JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS heartbeat_events_time_idx ON heartbeat_events(time DESC);

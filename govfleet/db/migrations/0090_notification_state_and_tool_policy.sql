-- depends: 0025_notification_deliveries 0080_status_version
-- Never silent (docs/notifications.md, "Never silent"): how each notification channel fared the last
-- time it was used, and the urgent notices that reached nobody, kept until one channel takes them.
-- The system tenant's tool allowlist, stored as its policy (docs/heartbeat.md, "Tool allowlist").

-- One row per (guardian whose channels were used, channel); channel names never hold a secret.
CREATE TABLE IF NOT EXISTS notification_channel_state (
    scope                TEXT NOT NULL CHECK (scope <> ''),
    channel              TEXT NOT NULL CHECK (channel <> ''),
    last_attempt_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_delivered_at    TIMESTAMPTZ,
    last_failed_at       TIMESTAMPTZ,
    last_error           TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    PRIMARY KEY (scope, channel)
);

-- An urgent notice no channel accepted (none configured, or every one failed). `request` is the
-- notification as it was asked for, re-sent under its own idempotency key by the heartbeat
-- (activity `resend_pending_notifications`) until a channel accepts it.
CREATE TABLE IF NOT EXISTS notification_pending (
    idempotency_key TEXT PRIMARY KEY CHECK (idempotency_key <> ''),
    scope           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    title           TEXT NOT NULL,
    request         JSONB NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts        INTEGER NOT NULL DEFAULT 1,
    resends         INTEGER NOT NULL DEFAULT 0,
    last_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT NOT NULL,
    delivered_at    TIMESTAMPTZ,
    delivered_to    TEXT[]
);
CREATE INDEX IF NOT EXISTS notification_pending_due_idx
    ON notification_pending (next_attempt_at) WHERE delivered_at IS NULL;

-- The system tenant's policy: the tools its governance runs may use (repo-spec
-- governance.system_tenant.tool_allowlist), written by `govfleet migrate` and `govfleet reconcile`,
-- read by every agent run and by the status surface.
CREATE TABLE IF NOT EXISTS tenant_policies (
    billing_account_id TEXT PRIMARY KEY REFERENCES billing_accounts(id) ON DELETE CASCADE,
    tool_allowlist     TEXT[] NOT NULL,
    source             TEXT NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Read as the tenant sees it (row-level security, application role), like its grant.
GRANT SELECT ON tenant_policies TO govfleet_app;
ALTER TABLE tenant_policies ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_tenant_policies ON tenant_policies;
CREATE POLICY tenant_tenant_policies ON tenant_policies
    USING (billing_account_id IN (
        SELECT id FROM billing_accounts WHERE owner_user_id = current_setting('app.current_user_id', true)));

-- Until a repo-spec's allowlist is stored (`govfleet migrate`, `reconcile`, a worker's start): no tools.
INSERT INTO tenant_policies (billing_account_id, tool_allowlist, source)
    SELECT id, '{}', 'migration 0090 (no repo-spec stored yet: no tools)' FROM billing_accounts WHERE id = 'cogni_system'
    ON CONFLICT (billing_account_id) DO NOTHING;

-- depends: 0002_rls_and_system_tenant
-- Which notification channels already received a notification (activity `send_notification`).
-- Keyed by the notification's idempotency key and the channel: a retried activity skips the
-- channels that already got it and re-sends only to the ones that failed. Channel names never
-- hold a secret: 'apprise:${ENV_VAR}' (the reference, not its value) or 'webhook'.

CREATE TABLE IF NOT EXISTS notification_deliveries (
    idempotency_key TEXT NOT NULL CHECK (idempotency_key <> ''),
    channel         TEXT NOT NULL CHECK (channel <> ''),
    kind            TEXT NOT NULL,
    urgent          BOOLEAN NOT NULL DEFAULT FALSE,
    attempt         INTEGER NOT NULL DEFAULT 1,
    delivered_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (idempotency_key, channel)
);
CREATE INDEX IF NOT EXISTS idx_notification_deliveries_at ON notification_deliveries(delivered_at DESC);

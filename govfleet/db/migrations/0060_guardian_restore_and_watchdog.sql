-- depends: 0002_rls_and_system_tenant
-- What a guardian started again after it was terminated reads back (docs/guardian.md,
-- "Restart after terminate"), and the watchdog's incidents (docs/watchdog.md).

-- The targets a pause called and whether it was an emergency pause: restored with the pause.
ALTER TABLE system_pauses ADD COLUMN IF NOT EXISTS targets TEXT[];
ALTER TABLE system_pauses ADD COLUMN IF NOT EXISTS emergency BOOLEAN;
CREATE INDEX IF NOT EXISTS system_pauses_guardian_active_idx
    ON system_pauses (guardian_id, paused_at) WHERE resumed_at IS NULL;

-- Admin signature nonces a guardian accepted, kept until the signature expires: a restarted
-- guardian refuses them as replays too.
CREATE TABLE IF NOT EXISTS admin_nonces (
    guardian_id TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (guardian_id, nonce)
);

-- Breaker calls a target acknowledged (2xx), by idempotency key (`<guardian id>:<pause id>`):
-- a restored pause calls again only the targets that never acknowledged it.
CREATE TABLE IF NOT EXISTS breaker_acks (
    idempotency_key TEXT NOT NULL,
    target          TEXT NOT NULL,
    action          TEXT NOT NULL CHECK (action IN ('pause', 'resume')),
    acknowledged_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (idempotency_key, target, action)
);

-- The watchdog's incidents: a declared workflow not running, a missed heartbeat. Open while
-- resolved_at is NULL; the idempotency key makes a retried write harmless.
CREATE TABLE IF NOT EXISTS watchdog_incidents (
    id              SERIAL PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    opened_at       TIMESTAMPTZ NOT NULL,
    details         TEXT NOT NULL DEFAULT '',
    resolved_at     TIMESTAMPTZ,
    resolution      TEXT
);
CREATE INDEX IF NOT EXISTS watchdog_incidents_open_idx ON watchdog_incidents (opened_at DESC) WHERE resolved_at IS NULL;

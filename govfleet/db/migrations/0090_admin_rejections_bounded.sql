-- depends: 0080_status_version
-- Bounded rejection log (docs/security.md, "Admin actions"). Per guardian and minute, the API gives
-- rows of their own to the first ADMIN_REJECTIONS_SOURCES_PER_MINUTE client addresses and counts the
-- others together under the source '*'; `sources` says how many distinct addresses a row counts (1
-- for an address's own row). Rows older than ADMIN_REJECTIONS_RETENTION_DAYS are deleted by the
-- heartbeat; the index serves that delete.
ALTER TABLE admin_rejections ADD COLUMN IF NOT EXISTS sources BIGINT NOT NULL DEFAULT 1 CHECK (sources >= 0);
CREATE INDEX IF NOT EXISTS admin_rejections_window_idx ON admin_rejections (window_start);

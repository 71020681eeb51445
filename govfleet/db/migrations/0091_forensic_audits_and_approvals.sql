-- depends: 0060_guardian_restore_and_watchdog
-- The forensic audit an emergency pause requires, until an admin signs its completion, and the
-- governance approval signed into a resume (docs/guardian.md, "Forensic audit"; docs/admin-actions.md).

CREATE TABLE IF NOT EXISTS forensic_audits (
    guardian_id  TEXT NOT NULL,
    pause_key    TEXT NOT NULL PRIMARY KEY,   -- the emergency pause that required it
    required_at  TIMESTAMPTZ NOT NULL,
    completed_at TIMESTAMPTZ,
    completed_by TEXT,
    report       TEXT
);
CREATE INDEX IF NOT EXISTS forensic_audits_open_idx ON forensic_audits (guardian_id, required_at) WHERE completed_at IS NULL;

ALTER TABLE system_pauses ADD COLUMN IF NOT EXISTS resume_approval TEXT;

-- depends: 0040_status_indexes
-- Rejected admin requests (pause, resume) at the HTTP API, counted per guardian, client address,
-- minute, action and rejection code: one row per combination, its `count` growing, never one row
-- per request, so a flood of forged requests writes a handful of rows. `limited` counts those of
-- them answered 429 (the address was over its rate limit); `sample` is the first message of the
-- window, cut to 200 characters. See docs/admin-actions.md.
CREATE TABLE IF NOT EXISTS admin_rejections (
    guardian_id  TEXT NOT NULL,
    source       TEXT NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    action       TEXT NOT NULL,
    code         TEXT NOT NULL,
    count        BIGINT NOT NULL CHECK (count > 0),
    limited      BIGINT NOT NULL DEFAULT 0 CHECK (limited >= 0),
    first_at     TIMESTAMPTZ NOT NULL,
    last_at      TIMESTAMPTZ NOT NULL,
    sample       TEXT NOT NULL,
    PRIMARY KEY (guardian_id, window_start, source, action, code)
);
CREATE INDEX IF NOT EXISTS admin_rejections_last_idx ON admin_rejections (guardian_id, last_at DESC);

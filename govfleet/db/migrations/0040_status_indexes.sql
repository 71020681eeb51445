-- depends: 0002_rls_and_system_tenant
-- Indexes for the status surface's reads of the guardian's audit log: the holder-control
-- chart, the last check (health, /guardian/status fallback) and the activity series all ask
-- for one guardian's `governance_check` events in a time range. At one check a second that
-- table grows by 86,400 rows a day; this index lets those reads touch only the rows they need
-- (INCLUDE makes the chart and the daily min/avg/max index-only scans).
CREATE INDEX IF NOT EXISTS governance_events_guardian_type_time_idx
    ON governance_events (guardian_id, event_type, timestamp DESC) INCLUDE (holder_control);
-- Open alerts of one guardian (the page's "open alerts", alerts_active).
CREATE INDEX IF NOT EXISTS governance_alerts_guardian_open_idx
    ON governance_alerts (guardian_id, timestamp DESC) WHERE NOT resolved;

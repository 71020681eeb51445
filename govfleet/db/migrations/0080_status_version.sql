-- depends: 0002_rls_and_system_tenant
-- The status surface's change counter (docs/status.md, "Read your writes"). Every committed
-- change that the governance status shows bumps it in the same transaction: the system
-- tenant's balance, a governance run, a heartbeat; the status workflow bumps it after it has
-- read Temporal's schedules again. An API process keeps its read model only while this number
-- is unchanged, so a read that starts after a commit never answers from before it.
CREATE TABLE IF NOT EXISTS status_version (
    id      SMALLINT PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    version BIGINT NOT NULL DEFAULT 0
);
INSERT INTO status_version (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;

-- SECURITY DEFINER: writers that run as the application role bump it too.
CREATE OR REPLACE FUNCTION bump_status_version() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    UPDATE status_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS system_balance_status_version ON billing_accounts;
CREATE TRIGGER system_balance_status_version AFTER UPDATE OF balance_credits ON billing_accounts
    FOR EACH ROW WHEN (NEW.is_system_tenant AND NEW.balance_credits IS DISTINCT FROM OLD.balance_credits)
    EXECUTE FUNCTION bump_status_version();

DROP TRIGGER IF EXISTS governance_runs_status_version ON governance_runs;
CREATE TRIGGER governance_runs_status_version AFTER INSERT OR UPDATE OR DELETE ON governance_runs
    FOR EACH STATEMENT EXECUTE FUNCTION bump_status_version();

DROP TRIGGER IF EXISTS heartbeat_events_status_version ON heartbeat_events;
CREATE TRIGGER heartbeat_events_status_version AFTER INSERT ON heartbeat_events
    FOR EACH STATEMENT EXECUTE FUNCTION bump_status_version();

GRANT SELECT ON status_version TO govfleet_app;

-- depends: 0001_schema
-- Row-level security on the tenant tables (read through tenant_scope, docs/architecture.md)
-- and the system tenant's rows (docs/ledger.md).

-- The application role: no BYPASSRLS. Tenant-scoped sessions `SET LOCAL ROLE govfleet_app`
-- and set `app.current_user_id`; policies then show only that tenant's rows.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'govfleet_app') THEN
        CREATE ROLE govfleet_app NOLOGIN NOBYPASSRLS;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO govfleet_app;
GRANT SELECT ON users, billing_accounts, credit_ledger, execution_grants, governance_runs TO govfleet_app;

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE billing_accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE credit_ledger ENABLE ROW LEVEL SECURITY;
ALTER TABLE execution_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE governance_runs ENABLE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_users ON users;
CREATE POLICY tenant_users ON users
    USING (id = current_setting('app.current_user_id', true));
DROP POLICY IF EXISTS tenant_billing_accounts ON billing_accounts;
CREATE POLICY tenant_billing_accounts ON billing_accounts
    USING (owner_user_id = current_setting('app.current_user_id', true));
DROP POLICY IF EXISTS tenant_credit_ledger ON credit_ledger;
CREATE POLICY tenant_credit_ledger ON credit_ledger
    USING (billing_account_id IN (
        SELECT id FROM billing_accounts WHERE owner_user_id = current_setting('app.current_user_id', true)));
DROP POLICY IF EXISTS tenant_execution_grants ON execution_grants;
CREATE POLICY tenant_execution_grants ON execution_grants
    USING (user_id = current_setting('app.current_user_id', true));
DROP POLICY IF EXISTS tenant_governance_runs ON governance_runs;
CREATE POLICY tenant_governance_runs ON governance_runs
    USING (owner_user_id = current_setting('app.current_user_id', true));

-- Seeds, idempotently: the system principal, the system tenant with 0 credits, and an
-- active governance execution grant.
INSERT INTO users (id, wallet_address) VALUES ('cogni_system_principal', NULL)
    ON CONFLICT (id) DO NOTHING;
INSERT INTO billing_accounts (id, owner_user_id, is_system_tenant, balance_credits)
    VALUES ('cogni_system', 'cogni_system_principal', true, 0)
    ON CONFLICT (id) DO NOTHING;
INSERT INTO execution_grants (id, user_id, billing_account_id, scopes, expires_at)
    VALUES ('cogni_system_governance', 'cogni_system_principal', 'cogni_system',
            ARRAY['governance:HEARTBEAT', 'governance:BRIEF', 'governance:HTTP'],
            now() + interval '365 days')
    ON CONFLICT (id) DO NOTHING;

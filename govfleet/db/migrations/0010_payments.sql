-- depends: 0002_rls_and_system_tenant
-- Confirmed credit purchases (docs/ledger.md): one row per client_payment_id, written in the
-- same transaction as its two ledger entries. The primary key is the idempotency key: a
-- retried or racing confirmation finds the first row and returns its result.

CREATE TABLE IF NOT EXISTS payments (
    client_payment_id    TEXT PRIMARY KEY CHECK (client_payment_id <> ''),
    user_id              TEXT NOT NULL REFERENCES users(id),
    billing_account_id   TEXT NOT NULL REFERENCES billing_accounts(id),
    amount_usd_cents     BIGINT NOT NULL CHECK (amount_usd_cents > 0),
    user_credits         BIGINT NOT NULL CHECK (user_credits > 0),
    bonus_credits        BIGINT NOT NULL CHECK (bonus_credits >= 0),
    revenue_share        NUMERIC NOT NULL CHECK (revenue_share >= 0 AND revenue_share <= 1),
    user_balance_after   BIGINT NOT NULL,
    system_balance_after BIGINT NOT NULL,
    confirmed_by         TEXT,            -- the workflow run (or caller) that wrote it
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS payments_user_created_idx ON payments(user_id, created_at);

-- Like the ledger, confirmed payments are facts: never updated or deleted.
CREATE OR REPLACE FUNCTION payments_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'payments is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
DROP TRIGGER IF EXISTS payments_no_update_delete ON payments;
CREATE TRIGGER payments_no_update_delete BEFORE UPDATE OR DELETE ON payments
    FOR EACH ROW EXECUTE FUNCTION payments_refuse_change();
DROP TRIGGER IF EXISTS payments_no_truncate ON payments;
CREATE TRIGGER payments_no_truncate BEFORE TRUNCATE ON payments
    FOR EACH STATEMENT EXECUTE FUNCTION payments_refuse_change();

GRANT SELECT ON payments TO govfleet_app;
ALTER TABLE payments ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_payments ON payments;
CREATE POLICY tenant_payments ON payments
    USING (user_id = current_setting('app.current_user_id', true));

-- Lets one SQL statement refuse to finish (and so abort its transaction) when what it wrote
-- is not what it had to write; used by the confirmation statement.
CREATE OR REPLACE FUNCTION ledger_assert(ok BOOLEAN, message TEXT) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION '%', message USING ERRCODE = 'check_violation';
    END IF;
    RETURN true;
END;
$$;

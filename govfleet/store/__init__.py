"""All SQL of the fleet, grouped by table family: `ledger` (accounts, credit_ledger, payments),
`guardian` (governance_events, governance_alerts, system_pauses), `runs` (governance runs, the
execution grant, the daily budget), `heartbeat` (heartbeat_events and the checks' reads),
`status` (the status surface's reads) and `notifications` (notification_deliveries).

Activities and the API's reads call these functions; connections come from `govfleet.db`.
Tenant data is read through `govfleet.db.tenant_scope` (row-level security, no BYPASSRLS).
"""

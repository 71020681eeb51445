-- depends: 0002_rls_and_system_tenant
-- Entrypoints that are not built in (any single word, as the original system's repo-spec uses)
-- are handed to the agent gateway and need the scope `governance:GATEWAY` (docs/schedules.md,
-- "Entrypoints"). The seeded governance grant gets it once; a grant without it refuses such runs.
UPDATE execution_grants
   SET scopes = array_append(scopes, 'governance:GATEWAY')
 WHERE id = 'cogni_system_governance'
   AND NOT ('governance:GATEWAY' = ANY (scopes));

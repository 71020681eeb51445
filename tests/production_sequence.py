"""The production start-up sequence, as `govfleet` arguments: what the production-path test runs
(tests/integration/test_production_path.py) and what docker-compose.temporal.yml's services run
(tests/unit/test_compose.py compares them), so the two cannot drift apart. Ports and addresses
come from the environment in both (SERVICE_PORT, TEMPORAL_ADDRESS, DATABASE_URL)."""

MIGRATE = ["migrate"]
RECONCILE = ["reconcile"]
WORKER = ["worker"]
API = ["api"]

# (compose service, its command, one-shot: runs to completion before the next step)
SEQUENCE = [
    ("migrate", MIGRATE, True),
    ("reconcile", RECONCILE, True),
    ("worker", WORKER, False),
    ("api", API, False),
]
WORKER_REPLICAS = 2

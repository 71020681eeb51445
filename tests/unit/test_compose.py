"""The compose deployment is wired by the same variables the settings read.

No Docker engine runs in CI; this checks the file, it does not run it.
"""

from __future__ import annotations

import yaml

from govfleet.settings import Settings
from tests.conftest import REPO_ROOT

OUR_SERVICES = {"migrate": "migrate", "reconcile": "reconcile", "worker": "worker", "api": "api"}
REQUIRED_BY_ROLE = {
    "migrate": {"DATABASE_URL", "REPO_SPEC_PATH"},
    "reconcile": {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_TASK_QUEUE", "REPO_SPEC_PATH"},
    "worker": {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_TASK_QUEUE", "DATABASE_URL", "REPO_SPEC_PATH"},
    "api": {
        "TEMPORAL_ADDRESS",
        "TEMPORAL_TASK_QUEUE",
        "DATABASE_URL",
        "SERVICE_HOST",
        "SERVICE_PORT",
        "REPO_SPEC_PATH",
    },
}


def load_compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.temporal.yml").read_text())


def test_every_required_setting_is_provided_to_each_role():
    services = load_compose()["services"]
    for service, command in OUR_SERVICES.items():
        assert services[service]["command"] == [command]
        env = services[service]["environment"]
        missing = REQUIRED_BY_ROLE[service] - set(env)
        assert not missing, f"{service} lacks {sorted(missing)}"


def test_every_variable_given_to_our_services_is_a_setting():
    services = load_compose()["services"]
    known = set(Settings.model_fields)
    for service in OUR_SERVICES:
        unknown = set(services[service]["environment"]) - known
        assert not unknown, f"{service} sets unknown variables {sorted(unknown)}"


def test_workers_are_replicated_and_services_point_at_each_other():
    compose = load_compose()
    services = compose["services"]
    assert services["worker"]["deploy"]["replicas"] >= 2
    env = services["worker"]["environment"]
    assert env["TEMPORAL_ADDRESS"].split(":")[0] == "temporal"
    assert "@app-db:" in env["DATABASE_URL"]
    assert services["temporal"]["environment"]["POSTGRES_SEEDS"] == "temporal-db"
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["REPO_SPEC_PATH"].endswith(".cogni/repo-spec.yaml")

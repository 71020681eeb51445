"""The Temporal connection settings as the SDK's environment configuration reads them: a profile
file, the TEMPORAL_* variables over it, an API key meaning TLS, and one clear error for a file
that cannot be read."""

from __future__ import annotations

import pytest

from govfleet.settings import ConfigError
from govfleet.temporal import client_config, configured_address, describe_connection

PROFILES = """
[profile.default]
address = "default.example:7233"
namespace = "dao-a"

[profile.cloud]
address = "dao.a1b2c.tmprl.cloud:7233"
namespace = "dao.a1b2c"
api_key = "from-the-file"
"""


@pytest.fixture
def profile_file(tmp_path):
    path = tmp_path / "temporal.toml"
    path.write_text(PROFILES)
    return path


def test_nothing_configured_means_no_address():
    env = {"TEMPORAL_CONFIG_FILE": "/nonexistent/temporal.toml"}
    assert configured_address(env) is None and client_config(env) == {}


def test_the_default_profile_gives_address_and_namespace(profile_file):
    cfg = client_config({"TEMPORAL_CONFIG_FILE": str(profile_file)})
    assert cfg["target_host"] == "default.example:7233" and cfg["namespace"] == "dao-a"
    assert describe_connection(cfg) == "plaintext"


def test_a_named_profile_with_an_api_key_is_tls(profile_file):
    cfg = client_config({"TEMPORAL_CONFIG_FILE": str(profile_file), "TEMPORAL_PROFILE": "cloud"})
    assert cfg["target_host"] == "dao.a1b2c.tmprl.cloud:7233" and cfg["api_key"] == "from-the-file"
    assert describe_connection(cfg) == "TLS + API key"


def test_variables_win_over_the_file(profile_file):
    cfg = client_config(
        {
            "TEMPORAL_CONFIG_FILE": str(profile_file),
            "TEMPORAL_ADDRESS": "env.example:7233",
            "TEMPORAL_NAMESPACE": "from-env",
            "TEMPORAL_GRPC_META_X_TENANT": "dao-a",
        }
    )
    assert (cfg["target_host"], cfg["namespace"]) == ("env.example:7233", "from-env")
    assert cfg["rpc_metadata"] == {"x-tenant": "dao-a"}


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"TEMPORAL_TLS_SERVER_CA_CERT_PATH": "/nonexistent/ca.pem"}, "cannot read '/nonexistent/ca.pem'"),
        ({"TEMPORAL_TLS_CLIENT_CERT_DATA": "-----BEGIN CERTIFICATE-----"}, "needs its key"),
    ],
)
def test_unusable_settings_are_one_configuration_error(env, problem):
    with pytest.raises(ConfigError) as info:
        client_config({"TEMPORAL_CONFIG_FILE": "/nonexistent/temporal.toml", "TEMPORAL_ADDRESS": "a:1", **env})
    assert problem in str(info.value) and "\n" not in str(info.value)

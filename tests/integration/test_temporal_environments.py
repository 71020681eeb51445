"""`ensure_search_attributes` against a dev server (from the pip-installed binary) started without
our search attributes: absent before, registered as keywords after, usable in a list query, and
a second call changes nothing. (Time skipping is exercised by the guardian scenario tests.)"""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from govfleet.temporal import SEARCH_ATTRIBUTES, ensure_search_attributes, temporal_cli_path

NAMES = {key.name for key in SEARCH_ATTRIBUTES}


async def custom_attributes(client: Client) -> dict[str, int]:
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    return dict(listed.custom_attributes)


async def test_ensure_search_attributes_registers_them_on_a_server_without_them():
    # A server of its own: the session's dev server is started with the attributes already.
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        data_converter=pydantic_data_converter,
        ui=False,
        dev_server_log_level="error",
    )
    try:
        client = env.client
        assert NAMES.isdisjoint(await custom_attributes(client))

        await ensure_search_attributes(client)
        after = await custom_attributes(client)
        assert {name: after.get(name) for name in NAMES} == dict.fromkeys(
            NAMES, IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        )
        # A list query on them is accepted now (an unknown attribute is refused as invalid).
        counted = await client.count_workflows('GovernanceLevel = "critical" AND SystemStatus = "fully_paused"')
        assert counted.count == 0

        await ensure_search_attributes(client)  # already there: nothing to add, no error
        assert await custom_attributes(client) == after
    finally:
        await env.shutdown()

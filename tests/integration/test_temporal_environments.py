"""The session's Temporal environments come from the pip-installed binaries and know our search attributes."""

from __future__ import annotations

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

from govfleet.temporal import SEARCH_ATTRIBUTES, ensure_search_attributes


async def test_dev_server_has_governance_search_attributes(dev_env):
    client = dev_env.client
    await ensure_search_attributes(client)  # idempotent on a server that already has them
    listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=client.namespace))
    for key in SEARCH_ATTRIBUTES:
        assert key.name in listed.custom_attributes


async def test_time_skipping_server_skips_time(time_skipping_env):
    before = await time_skipping_env.get_current_time()
    await time_skipping_env.sleep(3600)
    after = await time_skipping_env.get_current_time()
    assert (after - before).total_seconds() >= 3600

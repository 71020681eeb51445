"""The session's dev server comes from the pip-installed binary and knows our search attributes.
(Time skipping is exercised by the guardian scenario tests.)"""

from __future__ import annotations

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

from govfleet.temporal import SEARCH_ATTRIBUTES, ensure_search_attributes


async def test_dev_server_has_governance_search_attributes(dev_env):
    client = dev_env.client
    await ensure_search_attributes(client)  # idempotent on a server that already has them
    listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=client.namespace))
    for key in SEARCH_ATTRIBUTES:
        assert key.name in listed.custom_attributes

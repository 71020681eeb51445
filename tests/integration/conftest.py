from collections.abc import Iterator

import pytest

from tests.integration.notify_support import Receiver, serve_receiver


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback notification channel (tests/integration/notify_support.py)."""
    yield from serve_receiver()

"""The status API's version gate (govfleet/api/service.py, docs/status.md "Read your writes"):
one read of the status version serves every caller that arrived before it started; a caller that
arrives while a read runs waits for the next one, so it never rides on a read begun before it."""

from __future__ import annotations

import asyncio

import pytest

from govfleet.api.service import _VersionGate


class Counter:
    """A version source whose reads are slow and count where they started."""

    def __init__(self) -> None:
        self.value = 0
        self.reads = 0
        self.release = asyncio.Event()

    async def read(self) -> int:
        self.reads += 1
        seen = self.value  # the value at the moment the read starts
        await self.release.wait()
        return seen


async def test_callers_that_arrive_during_a_read_wait_for_the_next_one():
    c = Counter()
    gate = _VersionGate(c.read)
    first = [asyncio.create_task(gate.current()) for _ in range(5)]
    await asyncio.sleep(0)  # the first read starts, with value 0
    await asyncio.sleep(0)
    assert c.reads == 1
    c.value = 1  # a write commits while the first read is running
    late = [asyncio.create_task(gate.current()) for _ in range(5)]
    await asyncio.sleep(0)
    c.release.set()
    assert await asyncio.gather(*first) == [0] * 5
    assert await asyncio.gather(*late) == [1] * 5  # a second read, started after they arrived
    assert c.reads == 2  # and only two reads for ten callers


async def test_a_failed_read_reaches_its_callers_and_the_next_read_runs():
    calls = 0

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("database gone")
        return 7

    gate = _VersionGate(flaky)
    with pytest.raises(OSError, match="database gone"):
        await gate.current()
    assert await gate.current() == 7

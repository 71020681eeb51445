"""The fleet benchmark's baseline workflow (a module of its own so that the workflow
sandbox imports nothing else): a no-op local activity and a 1 s timer, forever."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench_bare_check")
async def bare_check() -> int:
    return 1


@workflow.defn(name="BenchBareLoop")
class BareLoop:
    def __init__(self) -> None:
        self.times: list[float] = []

    @workflow.run
    async def run(self) -> None:
        while True:
            await workflow.execute_local_activity(bare_check, start_to_close_timeout=timedelta(seconds=5))
            self.times.append(workflow.now().timestamp())
            del self.times[:-600]
            await workflow.sleep(timedelta(seconds=1))

    @workflow.query
    def times_query(self) -> list[float]:
        return self.times

"""Property-based API tests: schemathesis generates requests from `/openapi.json` (valid and
invalid) against a running stack and checks every response against the documented status
codes, content types and schemas, that nothing answers 5xx, and that invalid input is refused.
The API runs with API_READ_TOKEN and GUARDIAN_PUSH_TOKEN set; each operation is called with the
token it needs (tests/integration/schemathesis.toml). Bounded: a fixed number of examples per
operation and a fixed seed (another seed: GOVFLEET_SCHEMATHESIS_SEED=<n>)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import httpx

from govfleet.simulator import TrackerSimulator, start_simulator
from tests.integration.guardian_support import NotificationRecorder, guardian_worker, make_config, start_guardian
from tests.integration.test_api_status import SCHEDULES, seed_history
from tests.integration.test_status_support import api_stack, unique, wait_status_ready
from tests.payment_signing import schemathesis_env, signing_environ

READ_TOKEN = "read-token"
PUSH_TOKEN = "push-token"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "unsupported_method",
        "missing_required_header",
    ]
)


def _st() -> list[str]:
    found = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    return [found] if found else [sys.executable, "-m", "schemathesis.cli"]


async def test_openapi_contract_holds_for_generated_requests(dev_env, make_database, tmp_path):
    url = make_database()
    seed_history(url)
    sim = await start_simulator(TrackerSimulator(per_request=True))
    sim.sim.set_reading(70.0)
    try:
        async with api_stack(
            dev_env,
            url,
            tmp_path,
            schedules=SCHEDULES,
            environ={
                "API_READ_TOKEN": READ_TOKEN,
                "GUARDIAN_PUSH_TOKEN": PUSH_TOKEN,
                "VOTING_TRACKER_URL": sim.url,
                **signing_environ(),
            },
        ) as stack:
            await wait_status_ready(stack)
            queue = unique("tq-guardian")
            async with guardian_worker(stack.client, queue, stack.config, url, NotificationRecorder()):
                guardian = await start_guardian(
                    stack.client, queue, make_config(stack.config, sim, "governance-guardian")
                )
                try:
                    async with httpx.AsyncClient(timeout=30) as http:  # the API runs on this event loop
                        paths = (await http.get(f"{stack.url}/openapi.json")).json()["paths"]
                    operations = sum(1 for item in paths.values() for method in item if method in HTTP_METHODS)
                    report, code = await _schemathesis(stack.url, tmp_path)
                finally:
                    await guardian.terminate("test over")
    finally:
        await sim.stop()
    # Exit 0: no check failed. (A warning that payment confirmation "mostly rejected" generated
    # data is expected: random ids collide into 409 conflicts and huge amounts overflow the
    # system tenant's bigint balance into 422s, both by design.)
    assert code == 0, report[-6000:]
    assert operations >= 18  # every operation of the API is generated and tested
    assert f"Selected: {operations}/{operations}" in report and f"Tested: {operations}" in report, report[-3000:]


HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


async def _schemathesis(url: str, cwd: Path) -> tuple[str, int]:
    args = [
        *_st(),
        "--config-file",
        str(Path(__file__).with_name("schemathesis.toml")),
        "run",
        f"{url}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        "15",
        "--seed",
        os.environ.get("GOVFLEET_SCHEMATHESIS_SEED", "6"),
        "--workers",
        "1",
        "--phases",
        "examples,coverage,fuzzing",
        "--no-shrink",
        "--request-timeout",
        "40",
        "--suppress-health-check",
        "all",
    ]
    tokens = {"GOVFLEET_TEST_READ_TOKEN": READ_TOKEN, "GOVFLEET_TEST_PUSH_TOKEN": PUSH_TOKEN}
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=cwd,
        env={**os.environ, **tokens, **schemathesis_env()},  # tokens; payment signing (tests/payment_signing.py)
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=600)
    return out.decode(errors="replace"), proc.returncode

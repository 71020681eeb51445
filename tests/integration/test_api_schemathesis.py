"""Property-based API tests: schemathesis generates requests from `/openapi.json` (valid and
invalid) against a running stack and checks every response against the documented status
codes, content types and schemas, that nothing answers 5xx, and that invalid input is refused.
Bounded: a fixed number of examples per operation and a fixed seed."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from govfleet.contracts import GUARDIAN_WORKFLOW
from tests.integration.test_api_status import SCHEDULES, seed_history
from tests.integration.test_status_support import api_stack, wait_status_ready
from workers.registry import workflows

CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
    "response_schema_conformance", "negative_data_rejection", "unsupported_method", "missing_required_header",
])


def _st() -> list[str]:
    found = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    return [found] if found else [sys.executable, "-m", "schemathesis.cli"]


def _guardian_registered() -> bool:
    return any(getattr(w, "__temporal_workflow_definition").name == GUARDIAN_WORKFLOW for w in workflows())


async def _start_guardian(stack) -> None:
    from workflows.guardian import GuardianInput

    await stack.client.start_workflow(GUARDIAN_WORKFLOW, GuardianInput(), id=stack.config.spec.guardian.workflow_id,
                                      task_queue=stack.task_queue)


async def test_openapi_contract_holds_for_generated_requests(dev_env, make_database, tmp_path):
    url = make_database()
    seed_history(url)
    guardian = _guardian_registered()
    async with api_stack(dev_env, url, tmp_path, schedules=SCHEDULES,
                         environ={"GUARDIAN_PUSH_TOKEN": "push-token"}) as stack:
        await wait_status_ready(stack)
        excluded: list[str] = []
        if guardian:
            await _start_guardian(stack)
        else:  # these answer 503 until the guardian workflow exists
            excluded = ["/guardian/governance", "/guardian/pause", "/guardian/resume", "/guardian/readings"]
        args = [*_st(), "run", f"{stack.url}/openapi.json", "--checks", CHECKS, "--max-examples", "15",
                "--seed", "6", "--workers", "1", "--phases", "examples,coverage,fuzzing", "--no-shrink",
                "--request-timeout", "40", "-H", "Authorization: Bearer push-token",
                "--suppress-health-check", "all"]
        for path in excluded:
            args += ["--exclude-path", path]
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path)
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=600)
        report = out.decode(errors="replace")
        assert proc.returncode == 0, report[-6000:]
        assert "passed" in report.lower()
        if not guardian:
            pytest.skip("guardian endpoints excluded: the guardian workflow is not registered (checked the rest)")

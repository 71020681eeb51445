"""One log format per process (docs/cli.md, "Logs"): `govfleet api` with LOG_FORMAT=json writes
nothing but JSON lines on stderr, uvicorn's access log and its own start line included, and not
uvicorn's life-cycle chatter ("Started server process ...")."""

from __future__ import annotations

import asyncio
import json
import os

import httpx

from tests.integration.fleet_support import wait_for
from tests.integration.production_support import Processes, listening
from tests.operator_spec import operator_spec


async def test_api_log_lines_are_all_json(dev_env, database_url, tmp_path):
    address = dev_env.client.service_client.config.target_host
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    procs = Processes(
        env={
            **base,
            "TEMPORAL_ADDRESS": address,
            "DATABASE_URL": database_url,
            "LOG_FORMAT": "json",
            "GOVFLEET_DATA_DIR": str(tmp_path / "data"),
            "REPO_SPEC_PATH": str(operator_spec()),  # a deployment's admins, not the demo's
        },
        logs=tmp_path,
    )
    try:
        api = procs.start("api", "api", "--port", "0")
        url = await wait_for(lambda: listening(api, "serving on "), 60, "the API listening", api)
        async with httpx.AsyncClient(timeout=30) as http:
            assert (await http.get(f"{url}/health")).status_code in (200, 503)
            await http.get(f"{url}/no-such-page")
    finally:
        procs.stop_all()
    lines = [line for line in api.log_tail(1_000_000).splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON log line: {line!r}\n--- whole log:\n" + "\n".join(lines)) from None
    assert all({"event", "level", "timestamp"} <= r.keys() for r in records), records
    assert any(r["event"].startswith("govfleet api: serving on ") for r in records)
    access = [r for r in records if r.get("logger") == "uvicorn.access"]
    assert any("/no-such-page" in r["event"] for r in access), records  # stdlib logging, same format
    assert not any("Started server process" in r["event"] for r in records)


def json_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON log line: {line!r}\n--- whole log:\n" + "\n".join(lines)) from None
    return out


async def test_worker_log_lines_are_all_json_sdk_included(dev_env, database_url, tmp_path):
    # The SDK logs through the standard library (and its core's warnings are forwarded there:
    # govfleet/temporal.py); whatever it says comes in the one format.
    address = dev_env.client.service_client.config.target_host
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    procs = Processes(
        env={
            **base,
            "TEMPORAL_ADDRESS": address,
            "DATABASE_URL": database_url,
            "LOG_FORMAT": "json",
            "GOVFLEET_DATA_DIR": str(tmp_path / "data"),
            "REPO_SPEC_PATH": str(operator_spec()),  # a deployment's admins, not the demo's
        },
        logs=tmp_path,
    )
    try:
        worker = procs.start("worker", "worker", "--no-reconcile")
        await wait_for(lambda: "worker polling" in worker.log_tail(), 90, "the worker polling", worker)
        await asyncio.sleep(1)  # let any start-up line of the SDK arrive
    finally:
        procs.stop_all()
    records = json_lines(worker.log_tail(1_000_000))
    assert all({"event", "level", "timestamp"} <= r.keys() for r in records), records
    loggers = {r.get("logger") for r in records}
    assert "temporalio.worker._worker" in loggers, records  # the SDK's stdlib logger, same format

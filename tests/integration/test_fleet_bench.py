"""Smoke tests of the fleet benchmarks (`--quick`): each runs with a handful of guardians on two
worker processes, prints its table and writes its JSON figures. No timing is asserted (the
machine is shared); only that the figures exist and that what is counted is sane."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests import processes
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # they start and kill worker processes


def _run(module: str, tmp_path, database_server_url: str, *extra: str) -> tuple[str, dict]:
    out = tmp_path / f"{module}.json"
    env = {**os.environ, "DATABASE_URL": database_server_url}
    proc = processes.spawn(
        [sys.executable, "-m", f"bench.{module}", "--quick", "--json", str(out), *extra],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        stdout, _ = proc.communicate(timeout=240)
    finally:
        processes.stop(proc)
    assert proc.returncode == 0, stdout[-4000:]
    return stdout, json.loads(out.read_text())


def test_fleet_scale_bench_quick(tmp_path, database_server_url):
    stdout, f = _run("fleet_scale", tmp_path, database_server_url)
    assert "worker memory KiB/guardian" in stdout and "history events/check" in stdout
    assert f["guardians"] == {"at_30s": 20, "at_1s": 4}
    assert f["checks_per_second"] > 0 and f["worker_cpu_ms_per_check"] > 0
    assert sum(f["cached_workflows"]) >= 1
    assert f["history"]["at_1s"]["sampled"] >= 1 and 4 <= f["history"]["at_1s"]["events_per_check"] <= 12
    assert f["persistence_bytes_per_check"]["postgres_audit"] > 0


def test_failover_bench_quick(tmp_path, database_server_url):
    stdout, f = _run("guardian_failover", tmp_path, database_server_url, "--no-breaker")
    assert "next check after kill p50 s" in stdout
    [setting] = f["settings"]
    kills = setting["next_check_after_kill_s"]
    assert kills["all"]["n"] + len(setting["failed_trials"]) == 3  # two kills between checks, one during
    assert all(gap > 0 for gap in kills["trials"])
    assert setting["under_load"]["checks"] > 0


def test_breaker_latency_bench_quick(tmp_path, database_server_url):
    stdout, f = _run("breaker_latency", tmp_path, database_server_url)
    assert "push -> breaker p50 / p99 ms" in stdout and "signal_to_task" in stdout
    assert f["trials"] == 5 and f["total_ms"]["p50"] > 0
    stages = f["stages_ms"]
    assert set(stages) == {"http_to_signal", "signal_to_task", "task", "task_to_activity", "activity_to_target"}
    assert all(d["n"] == 5 for d in stages.values())

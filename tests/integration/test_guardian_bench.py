"""Smoke tests of the guardian benchmarks (`--quick`): each runs, prints its table and writes
its JSON figures. No timing is asserted (the machine is shared); only that the figures exist
and that what is counted is sane."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT


def _run(module: str, tmp_path, database_server_url: str) -> tuple[str, dict]:
    out = tmp_path / f"{module}.json"
    env = {**os.environ, "DATABASE_URL": database_server_url}
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", "--quick", "--json", str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout, json.loads(out.read_text())


def test_latency_bench_quick(tmp_path, database_server_url):
    stdout, f = _run("guardian_latency", tmp_path, database_server_url)
    assert "push p50 ms" in stdout and "poll_1s seed loop max ms" in stdout
    assert f["push"]["trials"] == 5 and f["push"]["p50_ms"] > 0
    for key in ("poll_5s", "poll_1s"):
        assert f[key]["guardian_max_ms"] > 0 and f[key]["seed_loop_max_ms"] > 0


def test_history_bench_quick(tmp_path, database_server_url):
    stdout, f = _run("guardian_history", tmp_path, database_server_url)
    assert "events per check" in stdout
    assert f["poll"]["checks"] >= 100  # 2 simulated minutes of 1 s checks
    assert 5 <= f["poll"]["events_per_check"] <= 8
    assert f["push"]["pushes"] == 100


def test_fleet_bench_quick(tmp_path, database_server_url):
    stdout, f = _run("guardian_fleet", tmp_path, database_server_url)
    assert "n10: ratio to bare loop" in stdout
    size = f["n10"]
    assert size["guardian"]["workflows"] == 10 and size["bare_loop"]["workflows"] == 10
    assert size["guardian"]["checks_per_second"] > 0 and size["bare_loop"]["checks_per_second"] > 0

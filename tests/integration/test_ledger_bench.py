"""Smoke test of the ledger benchmark (`--quick`): it runs every measurement (direct, raw SQL, the
workflow path, over HTTP, the designs not chosen) on the test PostgreSQL server, prints its table,
writes its JSON, and leaves the invariant intact. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_ledger_bench_quick(tmp_path, database_server_url):
    out = tmp_path / "ledger.json"
    env = {**os.environ, "DATABASE_URL": database_server_url}
    result = subprocess.run(
        [sys.executable, "-m", "bench.ledger_bench", "--quick", "--seconds", "1", "--json", str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ratio_project_to_raw_sql" in result.stdout and "workflow_confirmations_per_s" in result.stdout
    figures = json.loads(out.read_text())
    assert figures["clients"] == 8
    assert figures["invariant_ok"] is True
    assert figures["raw_sql_failed"] == 0
    for key in (
        "project_confirmations_per_s",
        "raw_sql_pgbench_tps",
        "raw_one_statement_pgbench_tps",
        "workflow_confirmations_per_s",
    ):
        assert figures[key] > 0, key
    paths = figures["paths"]
    measured = [paths["workflow"], paths["http"], *paths["not_chosen"].values()]
    assert set(paths["not_chosen"]) == {
        "eager_start_same_client",
        "regular_activity",
        "sandboxed_workflow",
        "update_with_start",
        "without_status_notification",
    }
    for path in measured:
        assert path["count"] > 0 and path["p50_ms"] > 0
        assert path["cpu_ms_per_confirmation"]["bench_process"] > 0
    assert figures["workflow_target"] == {"p50_ms": 60, "per_second": 200}
    ratio = figures["project_confirmations_per_s"] / figures["raw_sql_pgbench_tps"]
    assert abs(figures["ratio_project_to_raw_sql"] - ratio) < 0.01

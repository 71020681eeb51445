"""Smoke test of the reconcile benchmark (`--quick`): it runs, prints its table and writes its
JSON. No timing is asserted; the write counts are correctness, not speed."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_reconcile_bench_quick(tmp_path):
    out = tmp_path / "reconcile.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.reconcile_bench", "--quick", "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "noop_seconds" in result.stdout and "first_apply_seconds" in result.stdout
    figures = json.loads(out.read_text())
    assert figures["schedules"] == 20
    assert figures["first_apply_writes"] == figures["first_apply_rpc_writes"] == 20
    assert figures["noop_writes"] == figures["noop_rpc_writes"] == 0
    assert figures["one_edit_writes"] == figures["one_edit_rpc_writes"] == 1

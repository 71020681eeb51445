"""Smoke test of the CLI start-up benchmark: it runs every command it times (each exits as
expected, or the benchmark fails), prints its table and writes its JSON. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_cli_start_bench_runs_each_command_once(tmp_path):
    out = tmp_path / "cli.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.cli_start_bench", "--runs", "1", "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "CLI cold start" in result.stdout
    figures = json.loads(out.read_text())
    for name in ("baseline", "help", "status", "status_local", "status_temporal_unreachable", "sign"):
        assert figures[name]["median_ms"] > 0, figures
        assert figures[name]["ratio_to_baseline"] > 0
    assert isinstance(figures["target_met"], bool)

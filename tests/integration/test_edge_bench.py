"""Smoke test of the edge benchmark (`--seconds 1`): it runs, the server survives the abuse with no
5xx, every abusive request is refused with a 4xx (or a reset of a refused body), and the figures
are written. No timing is asserted (the latency figures are the benchmark's to print)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_edge_bench_runs_and_the_server_survives(tmp_path):
    out = tmp_path / "edge.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.edge_bench", "--seconds", "1", "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["server_alive_after_abuse"] is True and figures["server_errors_5xx"] == 0
    assert figures["health_baseline"]["requests"] > 0 and figures["health_during_abuse"]["requests"] > 0
    expected = {
        "declared_11mb": {413},
        "chunked_3_6mb": {413, 0},
        "deep_json": {400},
        "forged_flood": {403},
        "forged_one_address": {403, 429},
    }
    for kind, statuses in expected.items():
        got = {int(s) for s in figures["abusers"][kind]["statuses"]}
        assert got and got <= statuses, (kind, got)

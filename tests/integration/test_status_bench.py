"""Smoke test of the status API benchmark (`--quick`): it runs, prints its table and writes its
JSON. No timing is asserted; the correctness figures are (no errors, no upcoming run in the past)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_status_bench_quick(tmp_path):
    out = tmp_path / "status.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.status_bench", "--quick", "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "status / static throughput" in result.stdout
    figures = json.loads(out.read_text())
    for name in ("static", "status", "status_uncached"):
        assert figures[name]["requests"] > 0 and figures[name]["errors"] == 0, figures[name]
    for name in ("status", "status_uncached"):
        assert figures[name]["upcoming_checked"] >= figures[name]["requests"]  # at least one run per answer
        assert figures[name]["upcoming_in_past"] == 0
    assert figures["ratio_status_to_static"] > 0

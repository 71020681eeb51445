"""Smoke test of the admin-authorization benchmark (`--quick`): it runs, prints its table and
writes its JSON. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_admin_auth_bench_quick(tmp_path):
    out = tmp_path / "admin_auth.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.admin_auth_bench", "--quick", "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "verify_quorum_2_ms_p50" in result.stdout
    figures = json.loads(out.read_text())
    assert figures["samples"] == 30
    assert figures["verify_1_sig_ms_p50"] > 0 and figures["verify_quorum_2_ms_p50"] > 0
    assert figures["recover_pure_python_ms_p50"] > 0 and "recover_within_1_ms" in figures

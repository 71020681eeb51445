"""`govfleet grant show|renew` against a migrated database: the seeded grant is active for a
year; renew moves an expiring one out and never brings one closer; an expired grant is exit 1
with the command to run; a revoked one is not renewed."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import psycopg

from tests.conftest import REPO_ROOT


def grant(*args: str, url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GOVFLEET_DATA_DIR")}
    return subprocess.run(
        [sys.executable, "-m", "govfleet.cli", "grant", *args, "--database-url", url],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def expires(url: str) -> datetime:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT expires_at FROM execution_grants WHERE id = 'cogni_system_governance'").fetchone()
    assert row is not None
    return row[0]


def execute(url: str, sql: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(sql)


def test_grant_show_and_renew(make_database):
    url = make_database()
    shown = grant("show", url=url)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("grant cogni_system_governance is active until ") and "days left" in shown.stdout
    assert abs((expires(url) - datetime.now(UTC)) - timedelta(days=365)) < timedelta(hours=1)

    execute(url, "UPDATE execution_grants SET expires_at = now() + interval '2 hours'")  # the warning's window
    renewed = grant("renew", "--days", "30", url=url)
    assert renewed.returncode == 0, renewed.stderr
    assert abs((expires(url) - datetime.now(UTC)) - timedelta(days=30)) < timedelta(minutes=5)
    before = expires(url)
    assert grant("renew", "--days", "1", url=url).returncode == 0
    assert expires(url) == before  # never brought closer

    execute(url, "UPDATE execution_grants SET expires_at = now() - interval '1 minute'")
    expired = grant("show", url=url)
    assert expired.returncode == 1 and "EXPIRED" in expired.stdout and "govfleet grant renew" in expired.stdout
    assert grant("renew", url=url).returncode == 0
    assert grant("show", "--json", url=url).returncode == 0

    execute(url, "UPDATE execution_grants SET revoked_at = now()")
    refused = grant("renew", url=url)
    assert refused.returncode == 1 and "REVOKED" in refused.stdout
    assert refused.stderr.strip() == (
        "govfleet: error: a revoked grant is not renewed; revocation is deliberate (see docs/heartbeat.md)"
    )
    bad = grant("renew", "--days", "0", url=url)
    assert bad.returncode == 2 and "--days 0 must be between 1 and 3650" in bad.stderr

"""`govfleet admin-key new`: a fresh secp256k1 key in a 0600 file, never overwritten, whose
printed address is the key's; `govfleet sign` accepts the file and signs as that address
(checked by verifying the token with that address as the only admin). Real CLI, subprocesses."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from eth_account import Account

from govfleet.domain.admin_auth import verify_admin_action
from govfleet.settings import load_config
from tests.conftest import EXAMPLE_SPEC, REPO_ROOT


def govfleet(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return subprocess.run(
        [sys.executable, "-m", "govfleet.cli", *args],
        cwd=cwd,
        env={**env, "REPO_SPEC_PATH": str(EXAMPLE_SPEC)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_new_key_file_is_private_refuses_overwrite_and_signs(tmp_path):
    made = govfleet("admin-key", "new", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    key_file = tmp_path / "admin.key"  # the default name, in the working directory
    address = made.stdout.strip()
    assert address.startswith("0x") and len(address) == 42
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert f"Add {address} to repo-spec guardian.admins" in made.stderr
    # The file holds the key of that address (checked with eth-account, an independent implementation).
    hexkey = next(ln for ln in key_file.read_text().splitlines() if ln and not ln.startswith("#"))
    assert Account.from_key(hexkey).address.lower() == address

    before = key_file.read_bytes()
    again = govfleet("admin-key", "new", cwd=tmp_path)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        "govfleet admin-key: error: admin.key exists; refusing to overwrite a key (choose another file name)"
    ]
    assert key_file.read_bytes() == before

    signed = govfleet("sign", "pause", "--key-file", str(key_file), "--reason", "drill", cwd=REPO_ROOT)
    assert signed.returncode == 0, signed.stderr
    assert f"signed pause of governance-guardian by {address}" in signed.stderr
    config = load_config(repo_spec_path=EXAMPLE_SPEC)
    verified = verify_admin_action(
        signed.stdout.strip(),
        domain=config.spec.cogni_dao.signing_domain(),
        action="pause",
        guardian_id="governance-guardian",
        reason="drill",
        now=datetime.now(UTC),
        admins=[address],
        used_nonces=set(),
        quorum=1,
        max_age_seconds=900,
    )
    assert verified is not None


def test_two_keys_differ_and_a_missing_directory_is_one_line(tmp_path):
    a = govfleet("admin-key", "new", "a.key", cwd=tmp_path)
    b = govfleet("admin-key", "new", "b.key", cwd=tmp_path)
    assert a.returncode == b.returncode == 0
    assert a.stdout != b.stdout
    bad = govfleet("admin-key", "new", "no/such/dir/c.key", cwd=tmp_path)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().startswith("govfleet admin-key: error: cannot create no/such/dir/c.key")


def test_key_files_are_git_ignored():
    lines = (REPO_ROOT / ".gitignore").read_text().splitlines()
    assert "*.key" in lines


def test_out_option_names_the_file_as_the_docs_write_it(tmp_path):
    made = govfleet("admin-key", "new", "--out", "ops.key", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "ops.key").exists() and not (tmp_path / "admin.key").exists()
    assert made.stdout.strip() in (tmp_path / "ops.key").read_text()
    both = govfleet("admin-key", "new", "x.key", "--out", "y.key", cwd=tmp_path)
    assert both.returncode == 2 and "once" in both.stderr
    assert not (tmp_path / "x.key").exists() and not (tmp_path / "y.key").exists()

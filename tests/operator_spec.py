"""The repo-spec an operator deploys: the example's, with admins of the operator's own (keys made
here from fixed seeds, listed nowhere) instead of the public Hardhat demo keys, which `migrate`,
`reconcile`, `worker` and `api` refuse. For the tests that run those commands as a deployment
does; `govfleet up` (the demo) keeps the example as it is."""

from __future__ import annotations

import atexit
import functools
import hashlib
import shutil
import tempfile
from pathlib import Path

from govfleet.domain.eth import Account
from govfleet.domain.public_keys import HARDHAT_ACCOUNTS
from tests.conftest import EXAMPLE_SPEC

OPERATOR_ADMIN_KEYS = [
    "0x" + hashlib.sha256(f"governance-fleet test operator admin {i}".encode()).hexdigest() for i in range(2)
]
OPERATOR_ADMINS = [Account.from_key(key).address for key in OPERATOR_ADMIN_KEYS]


def operator_spec_text(text: str | None = None) -> str:
    """`text` (default: the example repo-spec) with each Hardhat demo admin replaced by the
    operator's; every other line (comments included) as it was."""
    text = EXAMPLE_SPEC.read_text() if text is None else text
    for public, own in zip(HARDHAT_ACCOUNTS, OPERATOR_ADMINS, strict=False):
        text = text.replace(public, own).replace(public.lower(), own.lower())
    return text


@functools.cache
def operator_spec() -> Path:
    """The operator's repo-spec as a file (one per test process, removed at exit)."""
    folder = Path(tempfile.mkdtemp(prefix="govfleet-operator-spec-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "repo-spec.yaml"
    path.write_text(operator_spec_text())
    return path

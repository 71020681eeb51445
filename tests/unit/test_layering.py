"""The layering of docs/architecture.md, checked on every `make test`: the import-linter
contracts of pyproject.toml (the same ones `make check` runs with `lint-imports`)."""

from __future__ import annotations

import tomllib

from importlinter import configuration
from importlinter.application import use_cases

from tests.conftest import REPO_ROOT

PYPROJECT = REPO_ROOT / "pyproject.toml"
LAYERING = {"domain-pure", "contracts-only-domain", "workflows-no-io", "clients-not-adapters"}


def test_the_layering_contracts_are_declared():
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    assert {c["id"] for c in contracts} >= LAYERING


def test_imports_follow_the_layering(capsys):
    configuration.configure()
    kept = use_cases.lint_imports(config_filename=str(PYPROJECT), cache_dir=None, no_logo=True)
    report = capsys.readouterr().out
    assert kept, f"import-linter found imports across the layering (docs/architecture.md):\n{report}"

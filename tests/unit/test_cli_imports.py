"""The command line starts fast because it imports lazily (docs/cli.md): building the parser
(`govfleet --help`) loads no heavy module, and `govfleet sign` none it does not use. Checked
in a fresh interpreter's `sys.modules`, not by timing (which a busy machine would break)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

# What a command that does not talk to a server must not pay for.
HEAVY = ["temporalio", "eth_account", "eth_utils", "httpx", "psycopg", "psycopg_pool", "fastapi", "uvicorn"]
HEAVY += ["starlette", "structlog", "pydantic", "yoyo", "apprise", "croniter", "govfleet.db", "govfleet.settings"]


def modules_after(code: str) -> set[str]:
    """The modules loaded in a fresh interpreter after running `code`."""
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def loaded(modules: set[str], names: list[str]) -> list[str]:
    return [n for n in names if n in modules or any(m.startswith(n + ".") for m in modules)]


def test_building_the_parser_imports_nothing_heavy():
    modules = modules_after("from govfleet.cli import build_parser\nbuild_parser().format_help()")
    assert "govfleet.commands.sign" in modules  # the parser really was built
    assert loaded(modules, HEAVY) == []


def test_help_of_every_command_imports_nothing_heavy():
    code = (
        "import argparse\nfrom govfleet.cli import build_parser\np = build_parser()\n"
        "sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))\n"
        "[c.format_help() for c in sub.choices.values()]"
    )
    assert loaded(modules_after(code), HEAVY) == []


def test_govfleet_help_runs_without_temporal_or_eth_account():
    # The real entry point, `--help` included: argparse exits from inside `main`.
    code = (
        "import sys, os\nfrom govfleet import cli\nos._exit = lambda code: None\nsys.argv = ['govfleet', '--help']\n"
        "import contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()) as out:\n    cli.main()\n"
        "assert 'COMMAND' in out.getvalue()"
    )
    modules = modules_after(code)
    assert "temporalio" not in modules and "eth_account" not in modules
    assert loaded(modules, HEAVY) == []


def test_sign_loads_the_signing_code_but_no_server_client(tmp_path):
    key = tmp_path / "admin.key"
    key.write_text("0x" + "11" * 32 + "\n")
    code = (
        "import argparse, datetime\nfrom govfleet.cli import build_parser\n"
        "from govfleet.commands.sign import sign_command\n"
        f"args = build_parser().parse_args(['sign', 'pause', '--key-file', {str(key)!r}, '--reason', 'r'])\n"
        "sign_command(args, datetime.datetime.now(datetime.UTC))"
    )
    modules = modules_after(code)
    assert "govfleet.domain.admin_auth" in modules
    assert loaded(modules, ["temporalio", "eth_account", "eth_utils", "httpx", "psycopg", "fastapi", "uvicorn"]) == []


@pytest.mark.parametrize(
    ("light", "module", "name"),
    [
        ("govfleet.commands.sign:DEFAULT_GUARDIAN_WORKFLOW_ID", "govfleet.contracts.guardian", "GUARDIAN_WORKFLOW_ID"),
        (
            "govfleet.commands.sign:DEFAULT_SIGNATURE_MAX_AGE_SECONDS",
            "govfleet.domain.admin_auth",
            "DEFAULT_MAX_AGE_SECONDS",
        ),
        ("govfleet.commands.guardian:DEFAULT_STEP_SECONDS", "govfleet.simulator", "DEFAULT_STEP_SECONDS"),
    ],
)
def test_constants_repeated_for_the_help_text_match_their_originals(light, module, name):
    import importlib

    light_module, light_name = light.split(":")
    assert getattr(importlib.import_module(light_module), light_name) == getattr(importlib.import_module(module), name)


def test_scenario_names_in_the_help_are_the_simulators():
    from govfleet.commands.guardian import SCENARIO_NAMES
    from govfleet.simulator import SCENARIOS

    assert tuple(SCENARIOS) == SCENARIO_NAMES

"""The documented commands work as pasted: every shell block of README.md and docs/*.md marked
`<!-- doc-test -->` runs with bash against a running `govfleet up`, in a second shell set up
the way the banner of `govfleet up` says (its "Another shell" lines, pasted as they are), from
a directory laid out like a fresh clone.

A marker is a line right before the block's fence:

    <!-- doc-test -->                 the block exits 0
    <!-- doc-test expect: TEXT -->    ... and its output holds TEXT
    <!-- doc-test expect-fail: TEXT --> the block exits non-zero and its output holds TEXT

In a `console` block the commands are the lines after `$ ` (with their `\\` continuation
lines); the other lines are output and are not run. A `sh` block runs whole. The marked blocks
of one file run in order in the same directory (a block may use a file an earlier one wrote).

Which blocks are covered (`COVERED`, files in the order they run): the README's second shell,
schedules and payments (the secret, then pay and the ledger); admin-actions' whole `temporal`
flow (status, sign, pause, replay, resume, the two-admin resume, a foreign key refused) and its
typed data for a wallet, and a new admin key file; declared-workflows' plan; heartbeat's grant; ledger's secret, its
signing example and a signed confirmation sent now; patches' listing and stats; the guardian's
queries and pushed readings, by signal (50 %: redemptions paused) and over HTTP (48 %:
everything paused; last, as nothing resumes by itself). Left
unmarked: what needs what this test cannot give (a production Temporal and PostgreSQL, Temporal
Cloud, Docker Compose), the README's guardian walk-through with a new key (it would have to be
listed in the repo-spec's admins first), and the notification variables (placeholders).

The fleet is started on free ports with its tracker simulator (scenario steady) on a free port;
since a second-shell `govfleet reconcile` configures the guardian from the repo-spec plus the
environment, the shells get the same `VOTING_TRACKER_URL` and breaker URLs as the fleet (on the
default ports they would not need them), and the fleet's `PAYMENT_SIGNING_SECRET` and
`GUARDIAN_PUSH_TOKEN`, as the docs say to export.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from govfleet.temporal import connect
from tests import processes
from tests.conftest import EXAMPLE_SPEC, REPO_ROOT
from tests.integration.fleet_support import free_port
from tests.integration.guardian_support import eventually

# Every file with marked blocks, in the order they run, and how many marked blocks it has.
COVERED = {
    "README.md": 4,
    "docs/admin-actions.md": 9,
    "docs/declared-workflows.md": 1,
    "docs/heartbeat.md": 1,
    "docs/ledger.md": 3,
    "docs/patches.md": 2,
    "docs/guardian.md": 2,  # last: its pushed readings pause everything
}
MARKER = re.compile(r"^<!-- doc-test(?: (expect|expect-fail): (.*?))? -->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")
SECRET = "doc-test-payment-secret-0123456789"
PUSH_TOKEN = "doc-test-push-token"


@dataclass
class DocBlock:
    path: str
    line: int  # of the fence
    lang: str
    script: str
    expect: str | None
    fails: bool

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


def console_commands(lines: list[str]) -> list[str]:
    """The commands of a console block: `$ ` lines and the lines continuing them."""
    commands: list[str] = []
    continuing = False
    for line in lines:
        if continuing:
            commands.append(line)
        elif line.startswith("$ "):
            commands.append(line[2:])
        else:
            continue
        continuing = line.rstrip().endswith("\\")
    return commands


def marked_blocks(rel: str) -> list[DocBlock]:
    lines = (REPO_ROOT / rel).read_text(encoding="utf-8").splitlines()
    blocks: list[DocBlock] = []
    for i, line in enumerate(lines):
        m = MARKER.match(line)
        if not m:
            continue
        fence = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        if fence is None or fence.group(1) not in ("sh", "bash", "console"):
            raise AssertionError(f"{rel}:{i + 1}: a doc-test marker must stand right before a sh or console block")
        end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
        body = lines[i + 2 : end]
        lang = fence.group(1)
        script = "\n".join(console_commands(body) if lang == "console" else body)
        assert script.strip(), f"{rel}:{i + 2}: a marked block without a command"
        kind, text = m.group(1), m.group(2)
        blocks.append(DocBlock(rel, i + 2, lang, script, text, kind == "expect-fail"))
    return blocks


def all_doc_files() -> list[str]:
    return ["README.md", *sorted(f"docs/{p.name}" for p in (REPO_ROOT / "docs").glob("*.md"))]


def test_the_marked_blocks_are_the_covered_ones():
    """A marker lost in an edit (or a new one not listed here) fails: the doc test must not
    quietly run fewer blocks than it claims."""
    found = {rel: len(marked_blocks(rel)) for rel in all_doc_files()}
    assert {rel: n for rel, n in found.items() if n} == COVERED


def test_console_commands_take_continuations_and_skip_output():
    block = ["$ echo a \\", "    b", "output line", "$ true", "Query result:"]
    assert console_commands(block) == ["echo a \\", "    b", "true"]


# --- against a running fleet -------------------------------------------------------------------


@dataclass
class RunningUp:
    proc: subprocess.Popen
    lines: list[str]
    env: dict[str, str]

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def second_shell(self) -> str:
        """The banner's "Another shell" lines, as a user would paste them."""
        out = self.output.splitlines()
        start = next(i for i, line in enumerate(out) if line.startswith("  Another shell: "))
        hints = [out[start].split("Another shell: ", 1)[1]]
        for line in out[start + 1 :]:
            if not line.startswith(" " * 17) or not line.strip():
                break
            hints.append(line.strip())
        return "\n".join(hints)


@pytest.fixture
def running_up(tmp_path, make_database):
    tracker = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if k not in ("TEMPORAL_ADDRESS", "DATABASE_URL", "TEST_DATABASE_URL")}
    env.update(
        {
            "REPO_SPEC_PATH": str(EXAMPLE_SPEC),
            "SERVICE_PORT": str(free_port()),
            "DATABASE_URL": make_database(),
            "LOG_FORMAT": "json",
            "PAYMENT_SIGNING_SECRET": SECRET,
            "GUARDIAN_PUSH_TOKEN": PUSH_TOKEN,
            "VOTING_TRACKER_URL": tracker,
            "REDEMPTION_ALGORITHM_URL": tracker,
            "TREASURY_CORE_URL": tracker,
        }
    )
    proc = processes.spawn(
        [
            sys.executable,
            "-m",
            "govfleet.cli",
            "up",
            "--data-dir",
            str(tmp_path / "data"),
            "--temporal-port",
            str(free_port()),
            "--ui-port",
            str(free_port()),
            "--tracker-port",
            tracker.rsplit(":", 1)[1],
            "--scenario",
            "steady",
        ],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.extend(iter(stdout.readline, "")), daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while not re.search(r"Another shell: .*?\n\n", "".join(lines), re.DOTALL):  # the banner's end
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("govfleet up did not come up:\n" + "".join(lines))
            time.sleep(0.2)
        yield RunningUp(proc, lines, env)
    finally:
        processes.stop(proc, sig=signal.SIGINT, timeout=30)


def clone_like(root: Path) -> Path:
    """A directory where the documented relative paths resolve as in a clone after `make install`."""
    root.mkdir()
    (root / ".venv").symlink_to(Path(sys.prefix))
    (root / ".cogni").symlink_to(REPO_ROOT / ".cogni")
    return root


def shell_env(up: RunningUp) -> dict[str, str]:
    """A new shell's environment: nothing of the fleet's but what the test's non-default ports
    need (see the module's docstring); the venv not on PATH (the banner's first line does that)."""
    venv_bin = str(Path(sys.prefix) / "bin")
    drop = {"TEMPORAL_ADDRESS", "DATABASE_URL", "TEST_DATABASE_URL", "GOVFLEET_DATA_DIR", "SERVICE_PORT"}
    env = {k: v for k, v in os.environ.items() if k not in drop and k != "VIRTUAL_ENV"}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin]
    env["PATH"] = os.pathsep.join(path if sys.prefix != sys.base_prefix else [venv_bin, *path])
    for name in (
        "PAYMENT_SIGNING_SECRET",
        "GUARDIAN_PUSH_TOKEN",
        "VOTING_TRACKER_URL",
        "REDEMPTION_ALGORITHM_URL",
        "TREASURY_CORE_URL",
    ):
        env[name] = up.env[name]
    return env


def run_block(script: str, prologue: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", f"{prologue}\nset -eo pipefail\n{script}\n"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


async def test_documented_commands_work_as_pasted(running_up, tmp_path):
    up = running_up
    banner = up.second_shell()
    assert "export TEMPORAL_ADDRESS=127.0.0.1:" in banner  # the fleet runs on a non-default port
    # Each block's shell is set up by the banner's `. activate` and `export` lines.
    prologue = "\n".join(line for line in banner.splitlines() if line.startswith((". ", "export ")))
    env = shell_env(up)
    if sys.prefix != sys.base_prefix:
        # Without the banner's lines a new shell does not find the commands (the docs' old fault).
        bare = run_block("command -v govfleet", "", tmp_path, env)
        assert bare.returncode != 0, bare.stdout

    ran: list[str] = []
    # The banner's lines themselves, as pasted (they end with commands to try).
    first = run_block(banner, "", clone_like(tmp_path / "banner"), env)
    assert first.returncode == 0, f"the banner's lines failed:\n{banner}\n{first.stdout}{first.stderr}"
    assert "governance-guardian" in first.stdout
    for rel in COVERED:
        cwd = clone_like(tmp_path / rel.replace("/", "_"))
        for block in marked_blocks(rel):
            result = run_block(block.script, prologue, cwd, env)
            said = result.stdout + result.stderr
            # A signal is handled a moment after the CLI says it was sent, so a query right after
            # it may not show it yet (the docs say so): a block whose expected text is missing
            # runs again, for up to 30 s. The blocks with a signal are idempotent (a repeated
            # pause or resume is refused as a replay).
            deadline = time.monotonic() + 30
            while block.expect and block.expect not in said and not block.fails and time.monotonic() < deadline:
                time.sleep(1)
                result = run_block(block.script, prologue, cwd, env)
                said = result.stdout + result.stderr
            where = f"{block} ({'fails' if block.fails else 'exits 0'}):\n{block.script}\n--- output:\n{said}"
            if block.fails:
                assert result.returncode != 0, where
            else:
                assert result.returncode == 0, where
            if block.expect:
                assert block.expect in said, f"{where}\n--- expected: {block.expect}"
            ran.append(str(block))
    assert len(ran) == sum(COVERED.values())

    # The guardian's pushed readings (docs/guardian.md, stamped with the time they are sent)
    # were fresh: the guardian took them and paused everything (and nothing resumes by itself;
    # the level goes back up with the simulator's 70.5 %); stale ones would change nothing.
    address = next(line.split("=", 1)[1] for line in prologue.splitlines() if "TEMPORAL_ADDRESS=" in line)
    client = await connect(address)
    handle = client.get_workflow_handle("governance-guardian")
    await eventually(lambda: _system_status_is(handle, "fully_paused"), timeout=60, interval=0.5)


async def _system_status_is(handle, system_status: str) -> bool:
    return (await handle.query("status"))["system_status"] == system_status

"""CLI cold start: wall time of `govfleet --help`, `govfleet status` and `govfleet sign`, each a
fresh process, median of 10 (docs/cli.md). Target: ≤ 1 s each.

- `help`: `govfleet --help`.
- `status`: `govfleet status --api URL` against a loopback HTTP server that answers
  `GET /api/v1/governance/status` with a valid `governance.status.v1` body, the extended status
  (one paused schedule) and `GET /health`
  (what the command does against a running API: the HTTP round trips, the contract's
  validation, the table). The server answers in microseconds, so the figure is the CLI's.
- `status_local`: `govfleet status` with no configuration beside a running `govfleet up` (its
  fleet file names the API; here the loopback server above): what a second shell does.
- `status_temporal_unreachable`: `govfleet status` with TEMPORAL_ADDRESS on a closed loopback
  port: the Temporal client is loaded and refused (exit 2, one line).
- `sign`: `govfleet sign pause` with a key file, against the repository's repo-spec.
- `baseline`: `python -c pass` in the same run; every figure is also given as a ratio to it.

    python -m bench.cli_start_bench [--quick] [--runs N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench._common import write_json

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 1000
STATUS_BODY = {
    "systemCredits": "123450000000",
    "upcomingRuns": [{"name": "COMMUNITY", "nextRunAt": "2099-01-01T00:00:00.000Z"}],
    "recentRuns": [
        {
            "id": "governance:COMMUNITY-1",
            "title": "A run",
            "startedAt": "2026-01-01T00:00:00.000Z",
            "lastActivity": "2026-01-01T00:00:05.000Z",
        }
    ],
}
EXTENDED_BODY = {
    "systemCredits": "123450000000",
    "schedules": [
        {
            "scheduleId": "governance:community",
            "name": "COMMUNITY",
            "paused": False,
            "source": "temporal",
            "nextRunAt": "2099-01-01T00:00:00.000Z",
            "timezone": "UTC",
            "cron": "0 0 1 1 *",
        },
        {
            "scheduleId": "governance:outreach",
            "name": "Outreach",
            "paused": True,
            "source": "temporal",
            "nextRunAt": None,
            "timezone": "UTC",
            "cron": "0 9 * * 1",
        },
    ],
    "schedulesSource": "temporal",
    "recentRuns": [],
    "asOf": "2026-01-01T00:00:05.000Z",
}
HEALTH_BODY = {
    "status": "ok",
    "workflows": [{"workflow_id": "governance-guardian", "kind": "guardian", "running": True, "status": "RUNNING"}],
}


class _StatusApi(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = {
            "/api/v1/governance/status": STATUS_BODY,
            "/api/v1/governance/status/extended": EXTENDED_BODY,
            "/health": HEALTH_BODY,
        }.get(self.path)
        data = json.dumps(body if body is not None else {"error": {"message": "not found"}}).encode()
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # quiet
        pass


def govfleet_command() -> list[str]:
    """The installed `govfleet` script beside this interpreter (what a user runs), else `-m`."""
    script = Path(sys.executable).with_name("govfleet")
    return [str(script)] if script.exists() else [sys.executable, "-m", "govfleet.cli"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wall_ms(cmd: list[str], env: dict[str, str], expect: int) -> float:
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    elapsed = (time.perf_counter() - started) * 1000
    if result.returncode != expect:
        raise RuntimeError(
            f"{' '.join(cmd[-3:])} exited {result.returncode} (expected {expect}): {result.stderr[-500:]}"
        )
    return elapsed


def run(quick: bool, runs: int | None = None) -> dict:
    runs = runs or (3 if quick else 10)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StatusApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = f"http://127.0.0.1:{server.server_address[1]}"
    govfleet = govfleet_command()
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "bench.key"
        key.write_text("0x" + "42" * 32 + "\n")
        base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
        env = {**base, "GOVFLEET_DATA_DIR": str(Path(tmp) / "no-fleet")}  # no local `govfleet up` to find
        # A `govfleet up` "running here" (this process, alive) whose API is the loopback server.
        local = Path(tmp) / "fleet"
        local.mkdir()
        (local / "fleet.json").write_text(
            json.dumps({"pid": os.getpid(), "temporal_address": "127.0.0.1:1", "database_url": "", "api_url": api})
        )
        cases: dict[str, tuple[list[str], dict[str, str], int]] = {
            "baseline": ([sys.executable, "-c", "pass"], env, 0),
            "help": ([*govfleet, "--help"], env, 0),
            "status": ([*govfleet, "status", "--api", api], env, 0),
            "status_local": ([*govfleet, "status"], {**base, "GOVFLEET_DATA_DIR": str(local)}, 0),
            "status_temporal_unreachable": (
                [*govfleet, "status"],
                {**env, "TEMPORAL_ADDRESS": f"127.0.0.1:{closed_port()}"},
                2,
            ),
            "sign": ([*govfleet, "sign", "pause", "--key-file", str(key), "--reason", "bench"], env, 0),
        }
        samples: dict[str, list[float]] = {name: [] for name in cases}
        try:
            for _ in range(runs):  # interleaved, so a burst of load hits every case alike
                for name, (cmd, case_env, expect) in cases.items():
                    samples[name].append(wall_ms(cmd, case_env, expect))
        finally:
            server.shutdown()
    baseline = statistics.median(samples["baseline"])
    figures: dict = {"runs": runs, "target_ms": TARGET_MS, "status_against": "a loopback server (see the module doc)"}
    for name, values in samples.items():
        median = statistics.median(values)
        figures[name] = {
            "median_ms": round(median),
            "min_ms": round(min(values)),
            "max_ms": round(max(values)),
            "ratio_to_baseline": round(median / baseline, 1) if baseline else None,
        }
    figures["target_met"] = all(
        figures[n]["median_ms"] <= TARGET_MS for n in ("help", "status", "status_local", "sign")
    )
    figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return figures


def print_table(figures: dict) -> None:
    print(f"CLI cold start, median of {figures['runs']} fresh processes (target ≤ {figures['target_ms']} ms)")
    print(f"{'command':<30} {'median ms':>9} {'min':>6} {'max':>6} {'× python -c pass':>17}")
    for name in ("baseline", "help", "status", "status_local", "status_temporal_unreachable", "sign"):
        f = figures[name]
        print(f"{name:<30} {f['median_ms']:>9} {f['min_ms']:>6} {f['max_ms']:>6} {f['ratio_to_baseline']:>17}")
    print(f"target met: {figures['target_met']}; load average {figures.get('load_average')}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3 runs per command instead of 10")
    p.add_argument("--runs", type=int, default=None, help="runs per command")
    p.add_argument("--json", default=None, help="write the figures as JSON to this path")
    args = p.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        p.error("--runs must be at least 1")
    figures = run(args.quick, args.runs)
    print_table(figures)
    write_json(figures, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

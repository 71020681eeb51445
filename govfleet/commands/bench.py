"""`govfleet bench`: run every benchmark in bench/ and write one JSON file and a table."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import os
import pkgutil
import platform
import sys
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="run every benchmark in bench/ (from a checkout) and write a JSON file and a table"
    )
    p.add_argument("--quick", action="store_true", help="small runs (a smoke test of every benchmark)")
    p.add_argument("--only", action="append", default=[], help="run only this benchmark module (repeatable)")
    p.add_argument(
        "--output", default="bench/results.json", help="where to write the JSON (default bench/results.json)"
    )
    p.set_defaults(func=cmd_bench)


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def discover() -> list[str]:
    import bench

    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))


def cmd_bench(args: argparse.Namespace) -> int:
    sys.path.insert(0, os.getcwd())
    try:
        names = args.only or discover()
    except ImportError:
        print(
            "govfleet: error: bench/ not found; run `govfleet bench` from a checkout of governance-fleet",
            file=sys.stderr,
        )
        return 2
    results: dict = {
        "machine": machine(),
        "quick": args.quick,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "benchmarks": {},
    }
    failed = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        if not hasattr(module, "run"):
            continue
        print(f"== {name}", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            figures = module.run(args.quick)
            if inspect.iscoroutine(figures):
                figures = asyncio.run(figures)
        except Exception as exc:  # one failing benchmark must not hide the others' figures
            failed.append(name)
            figures: dict[str, object] = {"error": f"{type(exc).__name__}: {exc}"}
        figures["_seconds"] = round(time.monotonic() - started, 1)
        results["benchmarks"][name] = figures
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    from bench._common import print_table

    print()
    print_table(results["benchmarks"])
    m = results["machine"]
    print(f"\nmachine: {m.get('cpu', '?')}, {m['cpus']} cpus, {m.get('memory_gib', '?')} GiB, Python {m['python']}")
    print(f"written: {out}")
    return 1 if failed else 0

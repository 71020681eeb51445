"""`/health` latency while the API is being abused, against the same measured without abuse in
the same run, and what each abusive request costs.

One server process runs what `govfleet up` runs, on one event loop: the fleet's worker (the
guardian workflow among them), the tracker simulator and the API. From this process:

- a probe asks `GET /health` every 50 ms over one keep-alive connection, first alone
  (`baseline`), then while abusers send, each over its own connections, as fast as answers come:
  - `declared_11mb`: a pause with `Content-Length: 11000000` (the body is streamed until the
    server answers);
  - `chunked_3_6mb`: 200,000 keys (3.6 MB), chunked;
  - `deep_json`: 3,000-deep JSON to `/guardian/readings` (with the push token);
  - `forged_flood`: forged pauses (valid JSON, a non-admin's EIP-712 signature), each from a new
    loopback address so no rate limit applies (the full cost: parse and recover);
  - `forged_one_address`: the same from one address (rate-limited: 429 after 10).

Reported: the probe's p50 / p99 / max in both phases and their ratio, every abuser's request count,
answer p50 and the statuses it got (any 5xx or a dead server would show here; 0 counts a
connection the server reset after refusing a body mid-way, before its 413 could be read). Temporal is a dev
server started here; PostgreSQL as in bench/status_bench.py.

    python -m bench.edge_bench [--quick] [--seconds S] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench._common import print_table, write_json
from bench.status_bench import _fresh_database

OUTSIDER = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"  # Hardhat #2 (public)
SPEC = """\
cogni_dao: {name: cogni-demo, chain_id: 8453, dao_contract: "0x5fbdb2315678afecb367f032d93f642f64180aa3"}
guardian:
  admins: ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]
"""
PUSH_TOKEN = "bench-push-token"


# --- the server process ----------------------------------------------------------------------


def _serve(temporal_address: str, database_url: str, spec_path: str, task_queue: str, port_queue) -> None:
    asyncio.run(_serve_async(temporal_address, database_url, spec_path, task_queue, port_queue))


async def _serve_async(temporal_address, database_url, spec_path, task_queue, port_queue) -> None:
    import logging

    from temporalio.exceptions import WorkflowAlreadyStartedError

    from govfleet.api import create_app
    from govfleet.api.server import start_api
    from govfleet.contracts.guardian import GUARDIAN_WORKFLOW, GuardianInput
    from govfleet.repo_spec import guardian_config
    from govfleet.settings import load_config
    from govfleet.simulator import TrackerSimulator, start_simulator
    from govfleet.temporal import connect
    from workers.factory import build_worker
    from workers.resources import Resources

    logging.disable(logging.WARNING)
    sim = await start_simulator(TrackerSimulator(per_request=True))
    sim.sim.set_reading(70.5)
    config = load_config(
        environ={
            "REPO_SPEC_PATH": spec_path,
            "TEMPORAL_TASK_QUEUE": task_queue,
            "TEMPORAL_ADDRESS": temporal_address,
            "DATABASE_URL": database_url,
            "GUARDIAN_PUSH_TOKEN": PUSH_TOKEN,
            "VOTING_TRACKER_URL": sim.url,
        }
    )
    client = await connect(temporal_address)
    resources = await Resources.open(config, database_url, client, pool_size=4)
    async with build_worker(client, resources, task_queue=task_queue):
        spec = config.spec
        cfg = guardian_config(spec.guardian, spec.cogni_dao, tracker_url=sim.url, breakers=[])
        with contextlib.suppress(WorkflowAlreadyStartedError):  # a worker may start declared guardians itself
            await client.start_workflow(
                GUARDIAN_WORKFLOW, GuardianInput(config=cfg), id=cfg.guardian_id, task_queue=task_queue
            )
        api = await start_api(create_app(config, client=client, database_url=database_url))
        port_queue.put(api.port)
        await asyncio.Event().wait()  # until terminated


# --- clients ---------------------------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return int(head[9:12]), await reader.readexactly(length)


async def _probe(port: int, deadline: float, latencies: list[float], statuses: Counter) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            status, _ = await _read_response(reader)
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
            await asyncio.sleep(max(0.0, 0.05 - (time.perf_counter() - started)))
    finally:
        writer.close()


async def _one(port: int, source: str, head: bytes, body: bytes, chunked: bool) -> int:
    """One request on its own connection, sent the way curl sends a large body: with
    `Expect: 100-continue`, waiting up to 1 s for the server's answer before the body, which is
    then streamed in 64 KiB pieces until the server answers. Returns the status, or 0 when the
    server reset the connection before its answer could be read (it refused the body mid-way
    and closed with bytes unread)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(head)
        answer = asyncio.ensure_future(_read_response(reader))
        try:
            if len(body) > 1_000_000:
                await asyncio.wait([answer], timeout=1.0)
                if answer.done() and answer.result()[0] == 100:
                    answer = asyncio.ensure_future(_read_response(reader))
            for i in range(0, len(body), 65536):
                if answer.done():
                    break
                piece = body[i : i + 65536]
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                await writer.drain()
                await asyncio.sleep(0)  # let the answer be read as soon as it comes
            else:
                if chunked:
                    writer.write(b"0\r\n\r\n")
                    await writer.drain()
            status, _ = await asyncio.wait_for(answer, 30)
        except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError):
            if answer.done() and not answer.cancelled() and answer.exception() is None:
                return answer.result()[0]
            answer.cancel()
            return 0
        return status
    finally:
        writer.close()


def _head(path: str, length: int | None, extra: str = "") -> bytes:
    size = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    if length is None or length > 1_000_000:
        extra += "Expect: 100-continue\r\n"
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{extra}{size}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


def _forged_body(i: int) -> bytes:
    from bench.admin_auth_bench import DOMAIN
    from govfleet.domain.admin_signing import sign_authorization

    reason = f"forged {i}"
    token = sign_authorization(
        OUTSIDER,
        domain=DOMAIN,
        action="pause",
        guardian_id="governance-guardian",
        reason=reason,
        expires_at=datetime.now(UTC) + timedelta(seconds=600),
        nonce=f"forged-{i:08d}",
    )
    return json.dumps({"reason": reason, "authorization": token}).encode()


def _payloads() -> dict[str, bytes | list[bytes]]:
    """Built once, before any phase (building them would hold up the probe's event loop)."""
    return {
        "declared_11mb": b'{"reason": "' + b"x" * 11_000_000 + b'"}',
        "chunked_3_6mb": json.dumps({f"key{i:06d}": i for i in range(200_000)}).encode(),
        "deep_json": b"[" * 3000 + b"]" * 3000,
        "forged": [_forged_body(i) for i in range(200)],
    }


async def _abuser(port: int, kind: str, deadline: float, out: dict, payloads: dict) -> None:
    big_declared = payloads["declared_11mb"]
    many_keys = payloads["chunked_3_6mb"]
    deep = payloads["deep_json"]
    forged = payloads["forged"]
    n = 0
    while time.perf_counter() < deadline:
        source = "127.0.0.1"
        if kind == "declared_11mb":
            head, body, chunked = _head("/guardian/pause", len(big_declared)), big_declared, False
        elif kind == "chunked_3_6mb":
            head, body, chunked = _head("/guardian/pause", None), many_keys, True
        elif kind == "deep_json":
            auth = f"Authorization: Bearer {PUSH_TOKEN}\r\n"
            head, body, chunked = _head("/guardian/readings", len(deep), auth), deep, False
        else:
            body = forged[n % len(forged)]
            head, chunked = _head("/guardian/pause", len(body)), False
            # The flood comes from a new address each time (no rate limit applies); the other from one.
            source = f"127.0.{2 + (n // 250) % 200}.{1 + n % 250}" if kind == "forged_flood" else "127.0.1.1"
        started = time.perf_counter()
        status = await _one(port, source, head, body, chunked)
        out[kind]["latencies"].append(time.perf_counter() - started)
        out[kind]["statuses"][status] += 1
        n += 1


def _port_of(server, ports) -> int:
    """The API's port once the server process is up (or its failure, at once)."""
    import queue

    for _ in range(240):
        try:
            return ports.get(True, 0.5)
        except queue.Empty:
            if not server.is_alive():
                raise RuntimeError(f"the server process exited with {server.exitcode} before serving") from None
    raise RuntimeError("the server process did not start serving within 120 s")


def _summary(latencies: list[float]) -> dict:
    lat = sorted(latencies)
    if not lat:
        return {"requests": 0}
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) >= 2 else [lat[0]] * 99
    return {
        "requests": len(lat),
        "p50_ms": round(q[49] * 1000, 2),
        "p99_ms": round(q[98] * 1000, 2),
        "max_ms": round(lat[-1] * 1000, 2),
    }


async def _phase(port: int, seconds: float, abusers: list[str], payloads: dict) -> dict:
    latencies: list[float] = []
    statuses: Counter = Counter()
    out = {k: {"latencies": [], "statuses": Counter()} for k in abusers}
    deadline = time.perf_counter() + seconds
    await asyncio.gather(
        _probe(port, deadline, latencies, statuses), *[_abuser(port, k, deadline, out, payloads) for k in abusers]
    )
    figures = {"health": {**_summary(latencies), "statuses": dict(statuses)}}
    for kind, got in out.items():
        figures[kind] = {**_summary(got["latencies"]), "statuses": dict(got["statuses"])}
    return figures


async def _run(seconds: float) -> dict:
    from bench.guardian_support import dev_server

    database_url, drop = _fresh_database()
    try:
        async with dev_server() as env:
            spec = Path(tempfile.mkdtemp(prefix="govfleet-bench-")) / "repo-spec.yaml"
            spec.write_text(SPEC)
            ctx = multiprocessing.get_context("spawn")
            ports = ctx.Queue()
            server = ctx.Process(
                target=_serve,
                args=(
                    env.client.service_client.config.target_host,
                    database_url,
                    str(spec),
                    f"bench-edge-{uuid.uuid4().hex[:6]}",
                    ports,
                ),
                daemon=True,
            )
            server.start()
            try:
                payloads = _payloads()
                port = await asyncio.to_thread(_port_of, server, ports)
                await _phase(port, 1.0, [], payloads)  # warm-up: first checks, connections, caches
                baseline = await _phase(port, seconds, [], payloads)
                abusers = ["declared_11mb", "chunked_3_6mb", "deep_json", "forged_flood", "forged_one_address"]
                abused = await _phase(port, seconds, abusers, payloads)
                alive = server.is_alive()
            finally:
                server.terminate()
                server.join(10)
    finally:
        drop()
    base, during = baseline["health"], abused.pop("health")
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "seconds_per_phase": seconds,
        "health_baseline": base,
        "health_during_abuse": during,
        "health_p50_ratio": round(during["p50_ms"] / base["p50_ms"], 2),
        "health_p99_ratio": round(during["p99_ms"] / base["p99_ms"], 2),
        "abusers": abused,
        "server_alive_after_abuse": alive,
        "server_errors_5xx": sum(n for f in abused.values() for s, n in f["statuses"].items() if s >= 500),
    }


def run(quick: bool) -> dict:
    return asyncio.run(_run(3.0 if quick else 15.0))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3 s per phase instead of 15")
    p.add_argument("--seconds", type=float, default=None, help="seconds per phase")
    p.add_argument("--json", default=None, help="write the figures as JSON to this path")
    args = p.parse_args(argv)
    seconds = args.seconds or (3.0 if args.quick else 15.0)
    if seconds <= 0:
        p.error("--seconds must be positive")
    figures = asyncio.run(_run(seconds))
    print_table(figures)
    write_json(figures, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

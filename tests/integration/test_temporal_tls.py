"""The fleet reaches Temporal the way the SDK's environment configuration says (TEMPORAL_ADDRESS,
TEMPORAL_TLS_*, a profile file), for real over TLS: a loopback TLS terminator with a CA made here
sits in front of the dev server. Server TLS with its own CA and server name, mutual TLS with a
client certificate, and the ways a wrong setting fails; then `govfleet reconcile` and `govfleet
worker` as processes over mutual TLS."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

from govfleet.temporal import client_config, connect, describe_connection
from tests.conftest import REPO_ROOT
from tests.integration.tls_support import SERVER_NAME, TlsTerminator, make_certs
from tests.operator_spec import operator_spec


@pytest.fixture
async def certs(tmp_path):
    return make_certs(tmp_path)


@pytest.fixture
async def tls(dev_env, certs):
    proxy = await TlsTerminator(certs, dev_env.client.service_client.config.target_host).start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def mtls(dev_env, certs):
    proxy = await TlsTerminator(
        certs, dev_env.client.service_client.config.target_host, require_client_cert=True
    ).start()
    yield proxy
    await proxy.stop()


def env_for(address: str, certs, *, client_cert: bool = False, **extra: str) -> dict[str, str]:
    env = {
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(certs.ca),
        "TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
        # No profile file of the machine's user may leak in.
        "TEMPORAL_CONFIG_FILE": os.devnull,
    }
    if client_cert:
        env["TEMPORAL_TLS_CLIENT_CERT_PATH"] = str(certs.client_cert)
        env["TEMPORAL_TLS_CLIENT_KEY_PATH"] = str(certs.client_key)
    env.update(extra)
    return env


async def _works(env: dict[str, str]) -> None:
    client = await connect(environ=env)
    await client.count_workflows()


async def _fails(env: dict[str, str]) -> str:
    with pytest.raises(Exception) as info:  # the SDK raises RuntimeError for transport errors
        await _works(env)
    return str(info.value)


async def test_tls_with_an_own_ca_and_server_name(tls, certs):
    env = env_for(tls.address, certs)
    await _works(env)
    assert describe_connection(client_config(env)) == f"TLS, own CA, server name {SERVER_NAME}"
    assert "certificate" in (await _fails({**env, "TEMPORAL_TLS_SERVER_NAME": "elsewhere.test"})).lower()
    no_ca = {k: v for k, v in env.items() if k != "TEMPORAL_TLS_SERVER_CA_CERT_PATH"}
    assert "certificate" in (await _fails(no_ca)).lower() or "issuer" in (await _fails(no_ca)).lower()
    plaintext = {"TEMPORAL_ADDRESS": tls.address, "TEMPORAL_CONFIG_FILE": os.devnull}
    await _fails(plaintext)  # a TLS server does not speak plaintext


async def test_mutual_tls_needs_the_client_certificate(mtls, certs):
    env = env_for(mtls.address, certs, client_cert=True)
    await _works(env)
    assert describe_connection(client_config(env)) == f"TLS with client certificate, own CA, server name {SERVER_NAME}"
    await _fails(env_for(mtls.address, certs))  # no client certificate: the server refuses the handshake


def _govfleet(*args: str, env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess:
    """(Blocking: from an async test, run it in a thread so the terminator keeps serving.)"""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    return subprocess.run(
        [sys.executable, "-m", "govfleet.cli", *args],
        cwd=REPO_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def test_the_commands_connect_over_mutual_tls(mtls, certs, database_url, tmp_path, task_queue):
    env = env_for(
        mtls.address, certs, client_cert=True, REPO_SPEC_PATH=str(operator_spec()), TEMPORAL_TASK_QUEUE=task_queue
    )
    planned = await asyncio.to_thread(_govfleet, "reconcile", "--dry-run", env=env)
    assert planned.returncode == 0, planned.stderr
    assert "Workflows plan:" in planned.stdout

    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "govfleet.cli", "worker", "--no-reconcile"],
            cwd=REPO_ROOT,
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")},
                **env,
                "DATABASE_URL": database_url,
                "LOG_FORMAT": "json",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while "worker polling" not in log.read_text():
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.2)
        assert f'"security": "TLS with client certificate, own CA, server name {SERVER_NAME}"' in log.read_text()
    finally:
        worker.terminate()
        try:
            await asyncio.to_thread(worker.wait, 30)
        except subprocess.TimeoutExpired:
            worker.kill()
            await asyncio.to_thread(worker.wait, 10)
    assert worker.returncode == 0, log.read_text()


def test_a_bad_tls_setting_is_one_line_and_exit_2(tmp_path):
    missing = tmp_path / "nope.pem"
    out = _govfleet(
        "reconcile",
        "--dry-run",
        env={
            "TEMPORAL_ADDRESS": "127.0.0.1:1",
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(missing),
            "TEMPORAL_CONFIG_FILE": os.devnull,
            "REPO_SPEC_PATH": str(operator_spec()),
        },
    )
    assert out.returncode == 2, out
    assert out.stderr.strip().splitlines() == [
        f"govfleet: error: Temporal connection settings (TEMPORAL_* / profile file): cannot read {str(missing)!r} "
        "(No such file or directory)"
    ]

"""The fleet that `govfleet up` runs on this machine, for the other commands.

`govfleet up` writes `<data dir>/fleet.json` (its pid and the addresses of what it started)
and removes it on exit. Commands that talk to a fleet (`status`, `pay`, `ledger`, `reconcile`)
fill an unset TEMPORAL_ADDRESS / DATABASE_URL from it while that process lives, so a user can
run them in a second shell with no configuration. Explicit environment variables always win.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from govfleet.errors import StartupError
from govfleet.settings import Config, ConfigError, Settings

FLEET_FILE = "fleet.json"
EMBEDDED_TEMPORAL_ADDRESS = "127.0.0.1:7233"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def record(data_dir: Path, *, temporal_address: str, database_url: str) -> Path:
    path = data_dir / FLEET_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"pid": os.getpid(), "temporal_address": temporal_address, "database_url": database_url})
    )
    path.chmod(0o600)
    return path


def record_api(data_dir: Path, api_url: str) -> None:
    """Add the API's address to this process's fleet file (`govfleet status` reads through it)."""
    path = data_dir / FLEET_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if data.get("pid") == os.getpid():
        path.write_text(json.dumps({**data, "api_url": api_url}))


def clear(data_dir: Path) -> None:
    path = data_dir / FLEET_FILE
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def shell_hints(
    *,
    temporal_address: str,
    embedded_temporal: bool,
    data_dir: Path,
    service_port: int,
    venv_bin: Path | None,
    cwd: Path,
) -> list[str]:
    """What a second shell needs for the `temporal` CLI and the `govfleet` commands, as lines to
    paste (the `govfleet up` banner): the venv on PATH, `TEMPORAL_ADDRESS` when our dev server is
    not where the CLI looks by default, `GOVFLEET_DATA_DIR` when the state is elsewhere (the
    commands find the fleet through its fleet.json), `SERVICE_PORT` when the API is not on its
    default port (`govfleet pay` sends there), and first commands to try."""
    defaults = Settings.model_fields
    lines: list[str] = []
    if venv_bin is not None and (venv_bin / "activate").exists():
        try:
            where = venv_bin.relative_to(cwd)
        except ValueError:
            where = venv_bin
        lines.append(f". {where / 'activate'}")
    if embedded_temporal and temporal_address != EMBEDDED_TEMPORAL_ADDRESS:
        lines.append(f"export TEMPORAL_ADDRESS={temporal_address}")
    if data_dir.resolve() != (cwd / str(defaults["GOVFLEET_DATA_DIR"].default)).resolve():
        lines.append(f"export GOVFLEET_DATA_DIR={data_dir}")
    if service_port != defaults["SERVICE_PORT"].default:
        lines.append(f"export SERVICE_PORT={service_port}")
    lines.append("temporal workflow list")
    lines.append("govfleet status")
    return lines


def running(settings: Settings) -> dict | None:
    """The addresses of a live `govfleet up` under the configured data dir, if any."""
    path = Path(settings.GOVFLEET_DATA_DIR) / FLEET_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data.get("pid"), int) and _alive(data["pid"]) else None


def serves_local_demo(config: Config) -> bool:
    """The command talks to the `govfleet up` running here (no Temporal address of its own, or
    that fleet's, as its banner's `export TEMPORAL_ADDRESS=…` sets it): it is part of that demo,
    not a deployment."""
    from govfleet.temporal import configured_address

    local = running(config.settings)
    if local is None:
        return False
    address = config.settings.TEMPORAL_ADDRESS or configured_address()
    return address is None or address == local.get("temporal_address")


def with_local_fleet(config: Config) -> Config:
    """`config` with TEMPORAL_ADDRESS / DATABASE_URL taken from a running `govfleet up`
    where the environment leaves them unset."""
    s = config.settings
    if s.TEMPORAL_ADDRESS and s.DATABASE_URL:
        return config
    local = running(s)
    if not local:
        return config
    update = {}
    if not s.TEMPORAL_ADDRESS:
        update["TEMPORAL_ADDRESS"] = local["temporal_address"]
    if not s.DATABASE_URL:
        update["DATABASE_URL"] = local["database_url"]
    return Config(settings=s.model_copy(update=update), spec=config.spec)


def require_database_url(config: Config, flag: str | None = None) -> str:
    url = flag or config.settings.DATABASE_URL
    if not url:
        raise StartupError(
            "DATABASE_URL is not set and no `govfleet up` is running here; set it"
            + (" or pass --database-url" if flag is None else "")
        )
    return url


async def connect_fleet(config: Config):
    """A Temporal client for the configured (or local) fleet, or one clear StartupError."""
    import asyncio

    from govfleet.temporal import TemporalUnreachable, configured_address, connect

    # An address from the environment or a Temporal profile file gets its TLS / API key settings
    # (govfleet/temporal.py); `govfleet up`'s own dev server speaks plaintext.
    configured = config.settings.TEMPORAL_ADDRESS or configured_address()
    address = configured or EMBEDDED_TEMPORAL_ADDRESS
    local = running(config.settings)
    plain = not configured or bool(local and local.get("temporal_address") == address)
    try:
        return await asyncio.wait_for(connect(address, config.settings.TEMPORAL_NAMESPACE, plain=plain), 15)
    except ConfigError:  # the connection settings themselves: their own one line
        raise
    except Exception as exc:
        hint = (
            "" if config.settings.TEMPORAL_ADDRESS else " (TEMPORAL_ADDRESS is unset: expected `govfleet up`'s server)"
        )
        reason = getattr(exc, "reason", None) or (
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        )
        raise TemporalUnreachable(address, reason, hint) from None

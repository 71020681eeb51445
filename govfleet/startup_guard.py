"""What a deployment refuses to start with: guardian admins whose private keys are public
(docs/security.md, "Publicly known keys").

`govfleet migrate`, `reconcile`, `worker` and `api` call `refuse_public_admins` before they
change or serve anything: an admin address from the publicly known list
(`govfleet/domain/public_keys.py`) is one line and exit 2, naming it — unless the operator
declared a throw-away environment with GOVFLEET_THROWAWAY_ENVIRONMENT=yes-public-keys-are-fine.
`govfleet up` (the demo) does not call it: its example repo-spec uses the Hardhat demo keys on
purpose, and its banner says so.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from govfleet.domain.public_keys import PublicAdmin, public_admins
from govfleet.errors import StartupError
from govfleet.settings import THROWAWAY_VARIABLE, THROWAWAY_WORDS

if TYPE_CHECKING:
    from govfleet.repo_spec import RepoSpec
    from govfleet.settings import Config


class PublicKeyAdmin(StartupError):
    """A guardian admin's private key is public and no throw-away environment was declared."""


def public_admins_of(spec: RepoSpec) -> list[PublicAdmin]:
    """Every declared guardian's admins whose keys are public."""
    return public_admins((g.workflow_id, g.admins) for g in spec.declared_guardians())


def refuse_public_admins(config: Config, command: str) -> list[PublicAdmin]:
    """Raise PublicKeyAdmin (exit 2) when an admin's key is public, unless this is a declared
    throw-away environment; returns the public admins accepted that way (empty otherwise)."""
    found = public_admins_of(config.spec)
    if not found or config.settings.throwaway_environment:
        return found
    first = found[0]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    raise PublicKeyAdmin(
        f"`govfleet {command}` refuses to start: {first.describe()}{more}; anyone can pause or resume with it. "
        f"Replace it in guardian.admins with your own (`govfleet admin-key new` prints one), or, for a throw-away "
        f"environment only, set {THROWAWAY_VARIABLE}={THROWAWAY_WORDS}"
    )


def throwaway_notice(found: list[PublicAdmin]) -> str:
    """The banner's and /health's words for a declared throw-away environment."""
    keys = ", ".join(f"{a.address} ({a.known_as})" for a in found) or "none configured now"
    return (
        f"THROW-AWAY ENVIRONMENT ({THROWAWAY_VARIABLE}): publicly known keys are accepted as guardian admins "
        f"({keys}); never use it for a real DAO"
    )


def demo_keys_notice(found: list[PublicAdmin]) -> str:
    """`govfleet up`'s words for the example's public demo keys."""
    keys = ", ".join(f"{a.address} ({a.known_as})" for a in found)
    return (
        f"demo admins with public keys: {keys}; anyone can sign with them — a deployment "
        "(migrate, reconcile, worker, api) refuses them"
    )


def guard_admins(config: Config, command: str, *, one_shot: bool) -> None:
    """`refuse_public_admins` for a command; a declared throw-away environment is then said where
    the operator looks: stderr for a one-shot command (`migrate`, `reconcile`), the log (a
    warning line at start) for a server (`worker`, `api`)."""
    accepted = refuse_public_admins(config, command)
    if not config.settings.throwaway_environment:
        return
    if one_shot:
        print(f"govfleet {command}: {throwaway_notice(accepted)}", file=sys.stderr, flush=True)
    else:
        from govfleet.logging import get_logger

        get_logger("govfleet").warning(throwaway_notice(accepted), throwaway_environment=True)

"""`govfleet sign pause|resume|complete_forensic_audit`: an EIP-712 admin authorization
(docs/admin-actions.md).

    govfleet sign pause --key-file admin.key --reason "Manual intervention required"
    govfleet sign resume --key-file admin.key --approval-ref 0xabc… --approval-url https://… --json > resume.json
    govfleet sign resume --key-file second-admin.key --add-to resume.json --json   # quorum
    govfleet sign complete_forensic_audit --key-file admin.key --report https://… --json
    govfleet sign pause --reason "..." --typed-data > pause.typed.json   # for a wallet
    govfleet sign pause --reason "..." --nonce N --expires T --signature 0x...   # the wallet's signature

Prints the authorization token on stdout (with `--json`, the request body for
`POST /guardian/pause|resume|forensic-audit`, `temporal workflow signal|update --input`), and on stderr
who signed what, for which DAO, chain and guardian, until when. The domain comes from the
repo-spec's `cogni_dao` (`--repo-spec`, default `REPO_SPEC_PATH` or `.cogni/repo-spec.yaml`).
The key file is a hex private key on one line (`0x` optional; blank lines and `#` comments
ignored) or an Ethereum keystore (V3 JSON), whose password is read from the environment
variable named by `--password-env`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from govfleet.domain.admin_signing import SigningDomain

# The signing code (pydantic models, secp256k1, keccak) is imported when a command runs, not
# when the parser is built (docs/cli.md). These two defaults are named in the help text, so
# they are repeated here; tests/unit/test_cli_imports.py checks they match the originals.
DEFAULT_GUARDIAN_WORKFLOW_ID = "governance-guardian"  # govfleet.contracts.guardian.GUARDIAN_WORKFLOW_ID
DEFAULT_SIGNATURE_MAX_AGE_SECONDS = 900  # govfleet.domain.admin_auth.DEFAULT_MAX_AGE_SECONDS
MAX_TTL_SECONDS = 86_400
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class SignError(ValueError):
    """Bad input to `govfleet sign`; the message says what."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sign",
        help="sign an admin pause/resume authorization (EIP-712) with a key file or a wallet",
        description="Print an EIP-712 authorization for a guardian pause or resume, bound to the DAO, chain "
        "and guardian: signed with an admin key file, or assembled from a wallet's signature.",
    )
    p.add_argument(
        "action",
        choices=["pause", "resume", "complete_forensic_audit"],
        help="what the authorization allows (complete_forensic_audit: the forensic audit an emergency required)",
    )
    p.add_argument("--key-file", help="hex private key (one line) or Ethereum keystore JSON")
    p.add_argument("--password-env", metavar="VAR", help="environment variable holding the keystore's password")
    p.add_argument(
        "--reason",
        default=None,
        help="the reason (signed; must equal the request's reason). Pause: required. Resume: default ''",
    )
    p.add_argument(
        "--guardian",
        default=DEFAULT_GUARDIAN_WORKFLOW_ID,
        help=f"guardian workflow id (default {DEFAULT_GUARDIAN_WORKFLOW_ID})",
    )
    p.add_argument(
        "--ttl",
        type=int,
        default=600,
        help=f"seconds until the authorization expires (default 600; guardians refuse more than "
        f"repo-spec guardian.signature_max_age_seconds, default {DEFAULT_SIGNATURE_MAX_AGE_SECONDS})",
    )
    p.add_argument("--nonce", default=None, help="nonce (default: 32 random hex digits); never reuse one")
    p.add_argument("--json", action="store_true", help="print the request body instead of the bare token")
    p.add_argument(
        "--approval-ref",
        default=None,
        help="resume after an emergency pause: the DAO's decision (proposal id or transaction hash), signed "
        "into the resume and shown by the wallet",
    )
    p.add_argument("--approval-url", default=None, help="resume: where members read that decision (http/https URL)")
    p.add_argument(
        "--report",
        default=None,
        help="complete_forensic_audit: a reference to the audit's report (signed as the reason)",
    )
    p.add_argument("--governance-verified", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--add-to",
        metavar="FILE",
        help="add this signature to the authorization of a request body written by another admin "
        "(its reason is used); implies --json",
    )
    p.add_argument(
        "--repo-spec",
        default=None,
        help="repo-spec whose cogni_dao is the signing domain (default: REPO_SPEC_PATH or .cogni/repo-spec.yaml)",
    )
    p.add_argument("--dao-name", default=None, help="override cogni_dao.name (the domain's name)")
    p.add_argument("--chain-id", default=None, help="override cogni_dao.chain_id")
    p.add_argument("--dao-contract", default=None, help="override cogni_dao.dao_contract (verifyingContract)")
    p.add_argument(
        "--typed-data",
        action="store_true",
        help="print the EIP-712 typed data to sign with a wallet (eth_signTypedData_v4) instead of signing",
    )
    p.add_argument(
        "--signature",
        default=None,
        help="a wallet's 0x signature over the typed data of --typed-data (give the same --nonce and --expires)",
    )
    p.add_argument("--expires", type=int, default=None, help="expiry in Unix seconds (default: now + --ttl)")
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser(
        "admin-key",
        help="make an admin key file for `govfleet sign` (its address goes in repo-spec guardian.admins)",
    )
    key_sub = p.add_subparsers(dest="admin_key_command", required=True, metavar="SUBCOMMAND")
    n = key_sub.add_parser(
        "new",
        help="write a new secp256k1 private key to a file (mode 0600, never overwritten) and print its address",
        description="Writes a new random secp256k1 private key (hex, one line) to FILE, readable by you "
        "alone, refusing an existing file, and prints the Ethereum address to add to repo-spec "
        "guardian.admins. Keep the file out of version control (*.key is git-ignored).",
    )
    n.add_argument("file", nargs="?", default=None, help="where to write the key (default admin.key)")
    n.add_argument("--out", metavar="FILE", default=None, help="the same as FILE")
    n.set_defaults(func=cmd_admin_key_new)


def signing_domain(args: argparse.Namespace, environ: dict[str, str] | None = None) -> SigningDomain:
    """The EIP-712 domain: repo-spec `cogni_dao`, with the command line's overrides."""
    from govfleet.domain.admin_signing import SigningDomain
    from govfleet.repo_spec import RepoSpecError, load_repo_spec

    env = os.environ if environ is None else environ
    path = args.repo_spec or env.get("REPO_SPEC_PATH") or ".cogni/repo-spec.yaml"
    try:
        dao = load_repo_spec(path).cogni_dao
    except RepoSpecError as exc:
        if args.repo_spec or Path(path).exists() or not (args.dao_name and args.chain_id):
            raise SignError(f"cannot read the signing domain (cogni_dao) from {exc}") from None
        from govfleet.repo_spec import CogniDao

        dao = CogniDao()  # no repo-spec here: the domain is given on the command line
    fields = dao.signing_domain().model_dump()
    for name, value in (
        ("name", args.dao_name),
        ("chain_id", args.chain_id),
        ("verifying_contract", args.dao_contract),
    ):
        if value is not None:
            fields[name] = value
    try:
        return SigningDomain.model_validate(fields)
    except ValueError as exc:
        problem = str(exc).splitlines()[2].strip() if len(str(exc).splitlines()) > 2 else str(exc)
        raise SignError(f"invalid signing domain: {problem}") from None


def read_private_key(path: str, password_env: str | None, environ: dict[str, str] | None = None) -> bytes:
    """The 32-byte private key in `path` (hex line, or keystore JSON with its password in
    the environment variable `password_env`)."""
    env = os.environ if environ is None else environ
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SignError(f"key file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SignError(f"key file {path} cannot be read: {exc}") from None
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            keystore = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise SignError(f"key file {path} looks like JSON but is not valid JSON: {exc}") from None
        if not password_env:
            raise SignError(f"key file {path} is a keystore: give --password-env VAR (VAR holds its password)")
        password = env.get(password_env)
        if password is None:
            raise SignError(f"environment variable {password_env} (keystore password) is not set")
        from govfleet.domain.eth import Account

        try:
            return bytes(Account.decrypt(keystore, password))
        except ValueError as exc:
            raise SignError(f"keystore {path} cannot be decrypted: {exc}") from None
        except (KeyError, TypeError) as exc:
            raise SignError(f"key file {path} is not an Ethereum keystore (missing {exc})") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    if len(lines) != 1:
        raise SignError(f"key file {path} must hold one hex private key on one line (found {len(lines)} lines)")
    hexkey = lines[0].removeprefix("0x").removeprefix("0X")
    if len(hexkey) != 64 or any(c not in "0123456789abcdefABCDEF" for c in hexkey):
        raise SignError(f"key file {path} does not hold a private key (64 hex digits, 0x optional)")
    key = bytes.fromhex(hexkey)
    if not (1 <= int.from_bytes(key, "big") < SECP256K1_N):
        raise SignError(f"key file {path} does not hold a valid secp256k1 private key (0 or not below the curve order)")
    return key


def _read_body(path: str) -> dict:
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SignError(f"--add-to file {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise SignError(f"--add-to file {path} is not a JSON request body: {exc}") from None
    if not isinstance(body, dict) or "authorization" not in body:
        raise SignError(f"--add-to file {path} is not a request body with an 'authorization' field")
    return body


def build_body(action: str, tokens: list[str], reason: str, approval: dict | None) -> dict:
    authorization: str | list[str] = tokens[0] if len(tokens) == 1 else tokens
    if action == "pause":
        return {"reason": reason, "authorization": authorization}
    if action == "complete_forensic_audit":
        return {"report": reason, "authorization": authorization}
    body: dict = {"authorization": authorization, "reason": reason}
    if approval is not None:
        body["governance_approval"] = approval
    return body


def _approval(args: argparse.Namespace, base: dict | None):
    """The governance approval to sign into a resume: from the options, or the --add-to body's."""
    from pydantic import ValidationError

    from govfleet.domain.admin_signing import GovernanceApproval

    given = None
    if args.approval_ref is not None or args.approval_url is not None:
        if args.action != "resume":
            raise SignError("--approval-ref and --approval-url apply to resume only")
        if args.approval_ref is None or args.approval_url is None:
            raise SignError("give both --approval-ref (proposal id or transaction hash) and --approval-url")
        given = {"reference": args.approval_ref, "url": args.approval_url}
    in_file = base.get("governance_approval") if base is not None else None
    if given is not None and in_file is not None and given != in_file:
        raise SignError(
            f"--approval-ref/--approval-url differ from the approval in {args.add_to} ({in_file!r}); "
            "every admin signs the same approval"
        )
    chosen = given if given is not None else in_file
    if chosen is None:
        return None
    try:
        return GovernanceApproval.model_validate(chosen)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SignError(f"governance approval {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


def sign_command(args: argparse.Namespace, now: datetime, environ: dict[str, str] | None = None) -> tuple[str, str]:
    """(stdout text, stderr summary) of `govfleet sign`, or SignError."""
    from govfleet.domain.admin_auth import DEFAULT_MAX_AGE_SECONDS, expires_in, parse_authorizations
    from govfleet.domain.admin_signing import (
        NONCE_RE,
        address_of,
        recover_digest_signer,
        sign_authorization,
        signing_digest,
        typed_data,
    )
    from govfleet.domain.timestamps import iso_utc

    base: dict | None = _read_body(args.add_to) if args.add_to else None
    if args.governance_verified:
        raise SignError(
            "--governance-verified means nothing: sign the DAO's approval into the resume with "
            "--approval-ref (proposal id or transaction hash) and --approval-url"
        )
    if args.report is not None:
        if args.action != "complete_forensic_audit":
            raise SignError("--report applies to complete_forensic_audit only")
        if args.reason is not None and args.reason != args.report:
            raise SignError("give the report once: --report (it is the signed reason)")
        args.reason = args.report
    reason = args.reason
    if base is not None:
        file_reason = base.get("reason", base.get("report", ""))
        if reason is not None and reason != file_reason:
            raise SignError(
                f"--reason {reason!r} differs from the reason in {args.add_to} ({file_reason!r}); "
                "every admin must sign the same reason"
            )
        reason = file_reason
        if not isinstance(reason, str):
            raise SignError(f"the reason in {args.add_to} is not a string")
    if reason is None:
        reason = ""
    approval = _approval(args, base)
    if args.action == "complete_forensic_audit" and not reason.strip():
        raise SignError("complete_forensic_audit needs --report (a reference to the audit's report)")
    if args.action == "pause" and not reason.strip():
        raise SignError("a pause needs a reason: give --reason TEXT (it is signed, and shown in the audit log)")
    if not (1 <= args.ttl <= MAX_TTL_SECONDS):
        raise SignError(f"--ttl must be between 1 and {MAX_TTL_SECONDS} seconds, got {args.ttl}")
    if args.expires is not None and not (0 < args.expires - now.timestamp() <= MAX_TTL_SECONDS):
        raise SignError(f"--expires must be in the next {MAX_TTL_SECONDS} seconds, got {args.expires}")
    nonce = args.nonce or secrets.token_hex(16)
    if not NONCE_RE.match(nonce):
        raise SignError(f"--nonce must be 8 to 64 characters of [A-Za-z0-9_-], got {nonce!r}")
    if not args.guardian or any(c.isspace() for c in args.guardian):
        raise SignError(f"--guardian must be a workflow id without spaces, got {args.guardian!r}")

    domain = signing_domain(args, environ)
    if args.expires is not None:
        expires_at = datetime.fromtimestamp(args.expires, UTC)
        ttl = int(args.expires - now.timestamp())
    else:
        expires_at = expires_in(now, args.ttl)
        ttl = args.ttl
    sources = [bool(args.key_file), bool(args.signature), bool(args.typed_data)]
    if sum(sources) != 1:
        raise SignError(
            "give exactly one of --key-file (sign here), --typed-data (print what a wallet signs) "
            "and --signature (the wallet's signature)"
        )
    if (args.typed_data or args.signature) and not args.nonce:
        raise SignError("--typed-data and --signature need an explicit --nonce (the same for both)")
    if args.signature and args.expires is None:
        raise SignError("--signature needs the --expires (Unix seconds) of the typed data the wallet signed")
    typed = typed_data(
        domain,
        action=args.action,
        guardian_id=args.guardian,
        reason=reason,
        nonce=nonce,
        expires_at=expires_at,
        approval=approval,
    )
    approval_args = (
        f" --approval-ref {shlex.quote(approval.reference)} --approval-url {shlex.quote(approval.url)}"
        if approval is not None
        else ""
    )
    if args.typed_data:
        return json.dumps(typed, indent=2), (
            f"typed data of {args.action} of {args.guardian} for domain {domain.describe()}, nonce {nonce}, "
            f"expires {iso_utc(expires_at)}: sign it with eth_signTypedData_v4, then run "
            f"govfleet sign {args.action} --reason {shlex.quote(reason)} --guardian {shlex.quote(args.guardian)} "
            f"--nonce {nonce} --expires {typed['message']['expiry']}{approval_args} --signature 0x<the signature>"
        )
    if args.signature:
        sig = args.signature.strip()
        try:
            raw = bytes.fromhex(sig.removeprefix("0x"))
            signer = recover_digest_signer(signing_digest(typed), raw)
        except ValueError as exc:
            raise SignError(f"--signature is not a valid signature over this typed data: {exc}") from None
        token = f"{nonce}.{typed['message']['expiry']}.0x{raw.hex()}"
    else:
        key = read_private_key(args.key_file, args.password_env, environ)
        token = sign_authorization(
            key,
            domain=domain,
            action=args.action,
            guardian_id=args.guardian,
            reason=reason,
            expires_at=expires_at,
            nonce=nonce,
            approval=approval,
        )
        signer = address_of(key)
    summary = (
        f"signed {args.action} of {args.guardian} by {signer}, nonce {nonce}, expires "
        f"{iso_utc(expires_at)} (in {ttl} s); EIP-712 domain {domain.describe()}"
    )
    if approval is not None:
        summary += f"; governance approval {approval.reference} ({approval.url})"
    if ttl > DEFAULT_MAX_AGE_SECONDS:
        summary += (
            f"\nwarning: the expiry is {ttl} s ahead, above the default guardian.signature_max_age_seconds "
            f"({DEFAULT_MAX_AGE_SECONDS}); a guardian with the default refuses it as expired"
        )

    if base is None and not args.json:
        return token, summary
    if base is not None:
        try:
            tokens = [*parse_authorizations(base.get("authorization")), token]
        except ValueError as exc:
            raise SignError(f"the authorization in {args.add_to} is not a token or a list of tokens: {exc}") from None
    else:
        tokens = [token]
    body = build_body(args.action, tokens, reason, None if approval is None else approval.model_dump())
    if base is not None:
        summary += f"\n{len(tokens)} signatures in the body now"
    return json.dumps(body), summary


def cmd_sign(args: argparse.Namespace) -> int:
    try:
        out, summary = sign_command(args, datetime.now(UTC))
    except SignError as exc:
        print(f"govfleet sign: error: {exc}", file=sys.stderr)
        return 2
    print(out)
    print(summary, file=sys.stderr)
    return 0


# --- govfleet admin-key new ------------------------------------------------------------------


def write_new_key(path: str) -> str:
    """Write a new private key to `path` (created, never replaced; mode 0600 whatever the
    umask) and return its address. SignError when the file exists or cannot be written."""
    from govfleet.domain.admin_signing import address_of

    while True:
        key = secrets.token_bytes(32)
        if 1 <= int.from_bytes(key, "big") < SECP256K1_N:  # all but ~2^-128 of draws
            break
    address = address_of(key)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SignError(f"{path} exists; refusing to overwrite a key (choose another file name)") from None
    except OSError as exc:
        raise SignError(f"cannot create {path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(
            fd, f"# govfleet admin key, address {address}; never commit or share this file\n0x{key.hex()}\n".encode()
        )
    finally:
        os.close(fd)
    return address


def cmd_admin_key_new(args: argparse.Namespace) -> int:
    if args.file and args.out and args.file != args.out:
        print("govfleet admin-key: error: give the key file once (FILE or --out FILE)", file=sys.stderr)
        return 2
    path = args.out or args.file or "admin.key"
    try:
        address = write_new_key(path)
    except SignError as exc:
        print(f"govfleet admin-key: error: {exc}", file=sys.stderr)
        return 1
    print(address)
    print(
        f"wrote {path} (mode 0600). Add {address} to repo-spec guardian.admins, then sign with "
        f"`govfleet sign pause --key-file {shlex.quote(path)} --reason ...`",
        file=sys.stderr,
    )
    return 0

"""The email channel of notifications (ADMIN_EMAIL over SMTP_URL): the SMTP server's URL, the
addresses, and the message. Pure: the activity sends it (activities/notify.py); docs/guardian.md,
"Notifications"."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from typing import Literal
from urllib.parse import unquote, urlsplit

# scheme -> (security, default port)
SMTP_SCHEMES: dict[str, tuple[Literal["plain", "starttls", "tls"], int]] = {
    "smtp": ("plain", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}
_ADDRESS = re.compile(r"^[^@\s,<>]+@[^@\s,<>]+$")


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: Literal["plain", "starttls", "tls"]
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpServer:
    """`smtp://[user:password@]host[:port]` (no TLS, port 25), `smtp+starttls://…` (STARTTLS,
    587) or `smtps://…` (TLS from the start, 465). ValueError says what is wrong, never the
    password."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("is not a URL of the form smtp://[user:password@]host[:port]") from None
    if parts.scheme not in SMTP_SCHEMES:
        raise ValueError(
            f"scheme {parts.scheme!r} is not one of {', '.join(s + '://' for s in SMTP_SCHEMES)} "
            "(e.g. smtp://mail.example.org:25)"
        )
    if not parts.hostname:
        raise ValueError("names no host (e.g. smtp://mail.example.org:25)")
    security, default_port = SMTP_SCHEMES[parts.scheme]
    return SmtpServer(
        host=parts.hostname,
        port=port or default_port,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def parse_addresses(value: str) -> list[str]:
    """One address or several, separated by commas."""
    addresses = [a.strip() for a in value.split(",") if a.strip()]
    if not addresses:
        raise ValueError("names no address (e.g. admin@example.org)")
    for a in addresses:
        if not _ADDRESS.match(a):
            raise ValueError(f"{a!r} is not an email address (e.g. admin@example.org)")
    return addresses


def message_id(idempotency_key: str) -> str:
    """The same Message-ID for every retry of one notification, so mail clients can fold repeats."""
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@governance-fleet>"


def notification_email(
    *, sender: str, recipients: list[str], title: str, body: str, idempotency_key: str, idempotency_header: str
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = title
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_id(idempotency_key)
    msg[idempotency_header] = idempotency_key
    msg.set_content(body)
    return msg

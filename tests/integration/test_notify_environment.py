"""The original system's notification variables, honoured by activity `send_notification`:
`SLACK_WEBHOOK_URL` (a Slack incoming webhook: every notification) and `ADMIN_EMAIL` over
`SMTP_URL` (urgent notifications). Against real loopback servers: an HTTP server answering as
Slack does, and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from temporalio.exceptions import ApplicationError

from activities.notify import NotificationActivities
from govfleet.contracts.notifications import NotificationRequest
from govfleet.db import create_pool
from govfleet.domain.email_channel import message_id
from govfleet.notify_channels import EMAIL_CHANNEL, SLACK_CHANNEL
from govfleet.repo_spec import RepoSpec
from govfleet.settings import Config, load_settings
from tests.integration.fleet_support import free_port
from workers.resources import Resources


@dataclass
class FakeSlack:
    """Answers as a Slack incoming webhook: 200 `ok`, or `fail_status` with Slack's reason to
    the first `fail_first` requests."""

    fail_first: int = 0
    fail_status: int = 404
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/T000/B000/XXXXSECRET"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                fake.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                failing = len(fake.received) <= fake.fail_first
            answer = b"no_service" if failing else b"ok"
            self.send_response(fake.fail_status if failing else 200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


class Mailbox:
    """aiosmtpd handler: keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()  # the controller checks that it answers on its port: 0 will not do
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


SMTP_USER, SMTP_PASSWORD = "alerts", "p@ss word"


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_with_login() -> Iterator[tuple[Mailbox, int]]:
    """An SMTP server that accepts mail only after AUTH (allowed without TLS on loopback here)."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture
async def make_activities(config, database_url):
    opened: list[Resources] = []

    async def make(environ: dict[str, str]) -> NotificationActivities:
        # No channel in repo-spec: what is delivered comes from the environment alone.
        data = config.spec.model_dump(mode="json")
        data["guardian"]["notifications"] = {}
        res = Resources(
            config=Config(settings=load_settings(environ), spec=RepoSpec.model_validate(data)),
            database_url=database_url,
            pool=await create_pool(database_url, max_size=2),
            http=httpx.AsyncClient(),
            client=None,
        )
        opened.append(res)
        return NotificationActivities(res, environ={})

    yield make
    for res in opened:
        await res.close()


def request(urgent: bool) -> NotificationRequest:
    return NotificationRequest(
        idempotency_key=f"governance-guardian:1:n{uuid.uuid4().hex[:8]}",
        kind="critical" if urgent else "caution",
        urgent=urgent,
        title="TIE governance alert: critical (holder control 50.8%)",
        body="🚨 TIE GOVERNANCE ALERT\n\nLevel: critical\nHolder Control: 50.8%\nThreshold: 51%",
        data={"guardian_id": "governance-guardian"},
    )


async def test_slack_and_email_get_an_urgent_notification(slack, smtp, make_activities):
    mailbox, smtp_port = smtp
    acts = await make_activities(
        {
            "SLACK_WEBHOOK_URL": slack.url,
            "ADMIN_EMAIL": "admin@fullpotential.example, ops@fullpotential.example",
            "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
            "SMTP_FROM": "guardian@fullpotential.example",
        }
    )
    req = request(urgent=True)
    result = await acts.deliver(req)
    assert sorted(result.delivered) == sorted([SLACK_CHANNEL, EMAIL_CHANNEL])

    [(path, headers, body)] = slack.received
    assert path == "/services/T000/B000/XXXXSECRET"
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"text": f"*{req.title}*\n{req.body}"}  # Slack's incoming-webhook shape
    assert headers["x-govfleet-idempotency-key"] == req.idempotency_key

    [(sender, recipients, msg)] = mailbox.messages
    assert sender == "guardian@fullpotential.example"
    assert recipients == ["admin@fullpotential.example", "ops@fullpotential.example"]
    assert msg["Subject"] == req.title
    assert msg["Message-ID"] == message_id(req.idempotency_key)
    assert msg["X-Govfleet-Idempotency-Key"] == req.idempotency_key
    text = msg.get_payload(decode=True).decode()
    assert "Level: critical" in text and "Holder Control: 50.8%" in text

    # A retry of the same notification sends nothing again.
    again = await acts.deliver(req, attempt=2)
    assert sorted(again.already_delivered) == sorted([SLACK_CHANNEL, EMAIL_CHANNEL]) and not again.delivered
    assert len(slack.received) == 1 and len(mailbox.messages) == 1


async def test_email_is_for_urgent_notifications_only(slack, smtp, make_activities):
    mailbox, smtp_port = smtp
    acts = await make_activities(
        {
            "SLACK_WEBHOOK_URL": slack.url,
            "ADMIN_EMAIL": "admin@example.org",
            "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        }
    )
    result = await acts.deliver(request(urgent=False))
    assert result.delivered == [SLACK_CHANNEL]
    assert len(slack.received) == 1 and mailbox.messages == []


async def test_slack_refusal_is_retried_and_names_slacks_reason(slack, make_activities):
    slack.fail_first = 1
    acts = await make_activities({"SLACK_WEBHOOK_URL": slack.url})
    req = request(urgent=True)
    with pytest.raises(ApplicationError) as info:
        await acts.deliver(req)
    assert info.value.type == "NotificationDeliveryFailed" and not info.value.non_retryable
    assert "HTTP 404: no_service" in str(info.value)
    assert "XXXXSECRET" not in str(info.value)  # the webhook's token is never in a message
    assert (await acts.deliver(req, attempt=2)).delivered == [SLACK_CHANNEL]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")  # loopback only
async def test_smtp_login_from_the_url(smtp_with_login, make_activities):
    """User and password come from SMTP_URL (percent-encoded); a wrong password is a failed
    delivery that names the server, never the password."""
    mailbox, port = smtp_with_login
    good = await make_activities(
        {"ADMIN_EMAIL": "admin@example.org", "SMTP_URL": f"smtp://{SMTP_USER}:p%40ss%20word@127.0.0.1:{port}"}
    )
    assert (await good.deliver(request(urgent=True))).delivered == [EMAIL_CHANNEL]
    assert [rcpt for _, rcpt, _ in mailbox.messages] == [["admin@example.org"]]

    bad = await make_activities(
        {"ADMIN_EMAIL": "admin@example.org", "SMTP_URL": f"smtp://{SMTP_USER}:wrong-secret@127.0.0.1:{port}"}
    )
    with pytest.raises(ApplicationError) as info:
        await bad.deliver(request(urgent=True))
    assert f"SMTP 127.0.0.1:{port}: SMTPAuthenticationError" in str(info.value)
    assert "wrong-secret" not in str(info.value)
    assert len(mailbox.messages) == 1


async def test_unreachable_smtp_server_is_retried(make_activities):
    with socket_closed_port() as port:
        acts = await make_activities({"ADMIN_EMAIL": "admin@example.org", "SMTP_URL": f"smtp://127.0.0.1:{port}"})
        with pytest.raises(ApplicationError) as info:
            await acts.deliver(request(urgent=True))
    assert info.value.type == "NotificationDeliveryFailed"
    assert f"{EMAIL_CHANNEL}: SMTP 127.0.0.1:{port}" in str(info.value)


class socket_closed_port:
    """A loopback port nothing listens on, for as long as the block runs."""

    def __enter__(self) -> int:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        return self._sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self._sock.close()

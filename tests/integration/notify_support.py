"""A loopback HTTP channel for the notification tests (`receiver` fixture in conftest.py): a real
server on 127.0.0.1 that records every POST and can be told to fail, or be slow, first."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server on loopback that records every POST; it answers `fail_status`
    to the first `fail_first` requests on each path (after `fail_delay` seconds: a slow
    channel), then 200."""

    fail_first: dict[str, int] = field(default_factory=dict)
    fail_status: int = 503
    fail_delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def ok_on(self, path: str) -> int:
        return self.on(path)[self.fail_first.get(path, 0) :].__len__()


def serve_receiver() -> Iterator[Receiver]:
    rec = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            path = self.path.split("?", 1)[0]
            with lock:
                rec.received.append(Received(path, {k.lower(): v for k, v in self.headers.items()}, body))
                n = len([r for r in rec.received if r.path == path])
            failing = n <= rec.fail_first.get(path, 0)
            if failing and rec.fail_delay:
                time.sleep(rec.fail_delay)
            status = rec.fail_status if failing else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()

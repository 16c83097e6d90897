"""The HTTP side of the fake ARM endpoint: a threading HTTP/1.1 server whose handler parses
each request into an :class:`~.messages.ArmRequest`, lets the endpoint answer it, records the
call and writes the answer."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from .messages import ArmRequest, ArmResponse, BadJson, Call, arm_error


class Endpoint(Protocol):
    """What the HTTP handler needs of the server behind it."""

    latency: float

    @property
    def url(self) -> str:
        """The loopback base URL."""

    def handle(self, request: ArmRequest, call: Call) -> ArmResponse:
        """Answer one request."""

    def record(self, call: Call) -> None:
        """Keep the record of an answered call."""


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 makes a burst of concurrent connects wait for SYN retries.
    request_queue_size = 128
    allow_reuse_address = True
    arm: Endpoint


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, as the SDK's connection pool expects.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, delayed ACKs add ~40 ms.
    disable_nagle_algorithm = True
    server: _HttpServer

    def _serve(self) -> None:
        start = time.monotonic()
        arm = self.server.arm
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as exc:
                body = BadJson(str(exc))
        call = Call(
            method=self.command.upper(),
            path=split.path,
            query=query,
            body=None if isinstance(body, BadJson) else body,
            start=start,
        )
        request = ArmRequest(
            method=self.command.upper(),
            path=split.path,
            query=query,
            headers=dict(self.headers.items()),
            body=body,
            # Answer with the address the client used (loopback, or a Docker gateway).
            base_url=f"http://{self.headers['Host']}" if self.headers.get("Host") else arm.url,
        )
        try:
            response = arm.handle(request, call)
        except Exception as exc:  # noqa: BLE001 - a handler bug must answer, not hang the client
            response = arm_error(500, "FakeArmServerBug", f"{type(exc).__name__}: {exc}")
        if arm.latency > 0:
            time.sleep(arm.latency)
        payload = b"" if response.body is None else json.dumps(response.body).encode()
        # Record before answering: once the client has the answer, calls() must show it.
        call.status = response.status
        call.response = response.body
        call.end = time.monotonic()
        arm.record(call)
        self.send_response(response.status)
        if payload:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request stderr logging (calls are recorded instead).

        :param format: printf-style format.
        :param args: its arguments.
        """


def listen(
    host: str, port: int, endpoint: Endpoint
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve ``endpoint`` on ``host:port`` in a daemon thread.

    :param host: the address to bind.
    :param port: the TCP port; 0 picks a free one.
    :param endpoint: the server that answers.
    :return: the HTTP server (``shutdown()``, ``server_close()``) and its thread.
    """
    httpd = _HttpServer((host, port), _Handler)
    httpd.arm = endpoint
    thread = threading.Thread(
        target=httpd.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"fake-arm-{host}",
        daemon=True,
    )
    thread.start()
    return httpd, thread

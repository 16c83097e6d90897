"""Health state and the loopback-only ``GET /healthz`` endpoint.

Answer: ``{"status": "ok"|"unhealthy"|"stopping", "state": "idle"|"busy"|"provisioning"|
"starting"|"backoff", "last_poll": <epoch of the last successful storage call or null>,
"job": <id or null>, "worker_id": ..., "reason": ...}``; HTTP 200 when ok, 503 otherwise.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class HealthState:
    """What the worker is doing, updated by the worker loop, read by the endpoint.

    Attributes:
        worker_id: The worker's id.
        stale_after: Seconds without a successful storage call before reporting unhealthy.
        state: idle, busy, provisioning, starting or backoff.
        job: Current job id.
        last_poll: Epoch of the last successful storage call (poll or lease extension).
        stopping: True after SIGTERM.
        started: Epoch when the worker started.
    """

    worker_id: str
    stale_after: float = 120.0
    state: str = "starting"
    job: str | None = None
    last_poll: float | None = None
    stopping: bool = False
    started: float = field(default_factory=time.time)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set(self, state: str, job: str | None = None) -> None:
        """Record the worker's activity.

        Args:
            state: The new state.
            job: The job in hand, if any.
        """
        with self._lock:
            self.state, self.job = state, job

    def touch(self, now: float | None = None) -> None:
        """Record a successful storage call.

        Args:
            now: Epoch seconds; defaults to the clock.
        """
        with self._lock:
            self.last_poll = time.time() if now is None else now

    def report(self, now: float | None = None) -> tuple[int, dict[str, Any]]:
        """HTTP status and JSON body for ``/healthz``.

        Args:
            now: Epoch seconds; defaults to the clock.
        """
        now = time.time() if now is None else now
        with self._lock:
            reference = self.last_poll if self.last_poll is not None else self.started
            stale = now - reference > self.stale_after
            # A long download or BLAST run is not a reason to restart the worker.
            busy = self.state in ("busy", "provisioning")
            if self.stopping:
                status, reason = "stopping", "SIGTERM received"
            elif stale and not busy:
                status = "unhealthy"
                reason = f"no successful storage call for {now - reference:.0f} s"
            else:
                status, reason = "ok", None
            body = {
                "status": status,
                "state": self.state,
                "last_poll": self.last_poll,
                "job": self.job,
                "worker_id": self.worker_id,
                "reason": reason,
            }
        return (200 if status == "ok" else 503), body


class _QuietServer(ThreadingHTTPServer):
    """A probe that gave up (its timeout under load) is not an error worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def serve(state: HealthState, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve ``/healthz`` on ``host:port`` in a daemon thread.

    Args:
        state: The state to report.
        port: TCP port (0 picks a free one; read it from ``server.server_port``).
        host: Bind address; loopback by default so the endpoint is not exposed.

    Returns:
        The running server (call ``shutdown()`` to stop it).
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/healthz":
                self.send_error(404, "only /healthz is served")
                return
            code, body = state.report()
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return  # probes every few seconds would flood the JSON log

    server = _QuietServer((host, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="healthz", daemon=True)
    thread.start()
    return server

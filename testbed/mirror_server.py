"""A local HTTP server in the shape of NCBI's BLAST database site, with faults on demand.

Serves a directory tree (``GET`` and ``HEAD``, single ``Range`` requests, S3-style bucket
listings for ``?delimiter=/``), and lets a test or benchmark make things happen *by
construction*:

* ``throttle``: bytes per second per connection (a long-distance link: each TCP stream is
  capped by its window and round-trip time, so parallel streams add up);
* ``drop(path, after)``: the next GET of ``path`` sends ``after`` body bytes, then the
  connection is cut;
* ``hold(path, after)``: the next GET of ``path`` sends ``after`` bytes, then one byte every
  :data:`TRICKLE_S` until the returned event is set (a transfer stuck mid-volume that no read
  timeout ends, so the client neither retries nor finishes), then the connection is cut;
* ``ranges = False``: the server ignores ``Range`` and does not advertise it.

Every request is logged (:class:`Served`): which file, which range, how many body bytes
went out, whether the response was complete. Nothing here needs pytest.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

CHUNK = 64 * 1024
TRICKLE_S = 1.0
"""Seconds between the bytes of a held transfer: far below any client's read timeout."""


@dataclass(frozen=True)
class Served:
    """One request as the server saw it.

    Attributes:
        method: GET or HEAD.
        path: URL path (without the query).
        status: HTTP status.
        start: First byte of the body sent (0 without a range).
        sent: Body bytes written.
        complete: True when the whole body (of the range) went out.
    """

    method: str
    path: str
    status: int
    start: int
    sent: int
    complete: bool


@dataclass
class _Fault:
    after: int
    release: threading.Event | None
    every: float = 0.0


class MirrorServer:
    """The server; a context manager that starts and stops it.

    Args:
        root: Directory served at ``/``.
        host: Address to listen on (``0.0.0.0`` for containers reaching the host).
        throttle: Bytes per second per connection, or None for full speed.
    """

    def __init__(self, root: Path, host: str = "127.0.0.1", throttle: float | None = None):
        self.root = root.resolve()
        self.throttle = throttle
        self.ranges = True
        self.log: list[Served] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._httpd.server_address[1])

    def url(self, path: str = "", host: str = "127.0.0.1") -> str:
        """URL of ``path`` under the root.

        Args:
            path: Relative path, e.g. ``flat``.
            host: Host name as the client sees it.
        """
        return f"http://{host}:{self.port}/{path}".rstrip("/")

    def __enter__(self) -> MirrorServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            for faults in self._faults.values():
                for fault in faults:
                    if fault.release is not None:
                        fault.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def drop(self, path: str, after: int) -> None:
        """Cut the next GET of ``path`` after ``after`` body bytes.

        Args:
            path: URL path, e.g. ``/flat/mvdb.01.tar.gz``.
            after: Bytes sent before the cut.
        """
        with self._lock:
            self._faults.setdefault(path, []).append(_Fault(after, None))

    def hold(self, path: str, after: int, every: float = TRICKLE_S) -> threading.Event:
        """Stall the next GET of ``path`` after ``after`` bytes until the event is set: one
        byte every :data:`TRICKLE_S` keeps the client reading (a frozen one would time out
        and retry with a ``Range`` request, which would finish the file); the connection is
        then cut.

        Args:
            path: URL path.
            after: Bytes sent before the stall.
            every: Seconds between the bytes of the stall.
        """
        event = threading.Event()
        with self._lock:
            self._faults.setdefault(path, []).append(_Fault(after, event, every))
        return event

    def clear_log(self) -> None:
        """Forget the requests so far."""
        with self._lock:
            self.log.clear()

    def requests(self, suffix: str = "", method: str = "GET") -> list[Served]:
        """Logged requests whose path ends with ``suffix``.

        Args:
            suffix: e.g. ``.tar.gz``.
            method: GET or HEAD.
        """
        with self._lock:
            return [s for s in self.log if s.path.endswith(suffix) and s.method == method]

    def bytes_sent(self, path: str) -> int:
        """Body bytes sent for ``path`` by every GET so far.

        Args:
            path: URL path.
        """
        return sum(s.sent for s in self.requests() if s.path == path)

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            faults = self._faults.get(path)
            return faults.pop(0) if faults else None

    def _record(self, served: Served) -> int:
        with self._lock:
            self.log.append(served)
            return len(self.log) - 1

    def _correct(self, index: int, served: Served) -> None:
        with self._lock:
            if index < len(self.log) and self.log[index].path == served.path:
                self.log[index] = served


_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def _handler(server: MirrorServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request log is server.log

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _serve(self, body: bool) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            method = "GET" if body else "HEAD"
            target = (server.root / path.lstrip("/")).resolve()
            if server.root not in (target, *target.parents):
                self._plain(404, path, method)
                return
            if target.is_dir():
                query = parse_qs(parts.query)
                if "delimiter" in query:
                    self._listing(target, path, query.get("prefix", [""])[0], method, body)
                else:
                    self._plain(404, path, method)
                return
            if not target.is_file():
                self._plain(404, path, method)
                return
            size = target.stat().st_size
            start, end, status = 0, size - 1, 200
            wanted = self.headers.get("Range")
            if wanted and server.ranges:
                match = _RANGE.match(wanted.strip())
                if not match or int(match.group(1)) >= size:
                    self._plain(416, path, method)
                    return
                start = int(match.group(1))
                end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
                status = 206
            length = end - start + 1
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            if server.ranges:
                self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if not body:
                server._record(Served(method, path, status, start, 0, True))
                return
            fault = server._take_fault(path)
            # Logged before the last byte leaves, so a client that has its whole answer
            # finds it in the log; corrected if the client goes away first.
            entry = server._record(Served(method, path, status, start, length, True))
            sent = self._send_file(target, start, length, fault)
            if sent != length:
                server._correct(entry, Served(method, path, status, start, sent, False))
                # Cut the connection without a proper close, as a dropped link would.
                with contextlib.suppress(OSError):
                    self.connection.shutdown(2)
                self.close_connection = True

        def _send_file(self, target: Path, start: int, length: int, fault: _Fault | None) -> int:
            limit = length if fault is None else min(fault.after, length)
            sent = 0
            began = time.monotonic()
            try:
                with target.open("rb") as fh:
                    fh.seek(start)
                    while sent < limit:
                        data = fh.read(min(CHUNK, limit - sent))
                        if not data:
                            break
                        self.wfile.write(data)
                        sent += len(data)
                        if server.throttle:
                            ahead = sent / server.throttle - (time.monotonic() - began)
                            if ahead > 0:
                                time.sleep(ahead)
                    self.wfile.flush()
                    if fault is not None and fault.release is not None:
                        while sent < length - 1 and not fault.release.wait(fault.every):
                            self.wfile.write(fh.read(1))
                            self.wfile.flush()
                            sent += 1
            except OSError:
                pass  # the client went away
            return sent

        def _listing(
            self, directory: Path, path: str, prefix: str, method: str, body: bool
        ) -> None:
            names = sorted(
                p.name for p in directory.iterdir() if p.is_dir() and p.name.startswith(prefix)
            )
            base = path.strip("/")
            prefixes = "".join(
                f"<CommonPrefixes><Prefix>{html.escape(n)}/</Prefix></CommonPrefixes>"
                for n in names
            )
            doc = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<Name>{html.escape(base)}</Name><Prefix>{html.escape(prefix)}</Prefix>"
                f"<Delimiter>/</Delimiter>{prefixes}</ListBucketResult>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(doc)))
            self.end_headers()
            if body:
                self.wfile.write(doc)
            server._record(Served(method, path, 200, 0, len(doc) if body else 0, True))

        def _plain(self, status: int, path: str, method: str) -> None:
            doc = f"{status}\n".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(doc)))
            self.end_headers()
            if method == "GET":
                self.wfile.write(doc)
            server._record(Served(method, path, status, 0, 0, True))

    return Handler


def disk_usage(path: Path) -> int:
    """Bytes of every file under ``path`` (0 if it does not exist).

    Args:
        path: A directory.
    """
    total = 0
    for base, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(base, name)).st_size
    return total

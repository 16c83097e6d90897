"""Storage requests as the wire sees them: counted, and throttled on demand.

:class:`Wire` is an azure-core transport around the real one (requests). Every storage
client of the process goes through it once :func:`installed` puts it in
:data:`blast_client.storage.TRANSPORT`, so it counts every request (the storage transactions
that are billed, retries included) and can answer a fraction of them ``503 ServerBusy``
without sending them, as a throttled account does. The SDKs' retry policies sit above the
transport, so a throttled request is retried exactly as in Azure. It can also make the table
service answer queries in smaller pages (``$top``): the service may end a page early at any
time, so a reader must follow continuations, and small pages test that with few rows.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from azure.core.pipeline.transport import (
    HttpTransport,
    RequestsTransport,
    RequestsTransportResponse,
)
from blast_client import storage

BUSY_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>'
    b"<Message>The server is busy.</Message></Error>"
)


class Wire(HttpTransport):  # type: ignore[type-arg]
    """Counts requests by service and answers ``busy_rate`` of them 503 (seeded).

    Args:
        ports: Service of each local port (Azurite's published ports); Azure's host names
            say it themselves.
        busy_rate: Fraction of requests answered ``503 ServerBusy`` instead of sent.
        seed: Seed of the throttling's randomness.
        page: Entities per page of a table query at most (None: the service's 1,000).
    """

    def __init__(
        self,
        ports: Mapping[str, int] | None = None,
        busy_rate: float = 0.0,
        seed: int = 0,
        page: int | None = None,
    ) -> None:
        self.ports = {port: service for service, port in (ports or {}).items()}
        # As the clients' own transports (blast_client.storage.pooled_session): the
        # environment's proxy settings are not read per request (loopback needs none), and
        # the pool keeps a connection for each of the submit's and merge's threads.
        self.inner = RequestsTransport(
            session=storage.pooled_session(),
            connection_timeout=10,
            read_timeout=60,
            use_env_settings=False,
        )
        self.busy_rate = busy_rate
        self.page = page
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.busy: Counter[str] = Counter()
        self.continued = 0  # table queries that followed a continuation token

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *args: object) -> None:
        return None

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:  # shared by every client: closed by its owner only
        return None

    def sleep(self, duration: float) -> None:
        self.inner.sleep(duration)

    @property
    def total(self) -> int:
        """Requests sent or answered busy."""
        return sum(self.requests.values())

    def reset(self) -> None:
        """Start counting afresh."""
        with self._lock:
            self.requests.clear()
            self.busy.clear()
            self.continued = 0

    def send(self, request: Any, **kwargs: Any) -> Any:
        service = _service(str(request.url), self.ports)
        with self._lock:
            self.requests[service] += 1
            busy = self.busy_rate > 0 and self._random.random() < self.busy_rate
            if busy:
                self.busy[service] += 1
        if busy:
            return _busy(request)
        if service == "table" and request.method == "GET":
            if "NextPartitionKey=" in str(request.url):
                with self._lock:
                    self.continued += 1
            if self.page is not None:
                request.url = paged(str(request.url), self.page)
        return self.inner.send(request, **kwargs)


def paged(url: str, page: int) -> str:
    """A table query's URL asking for at most ``page`` entities a page (pure); other URLs
    (a point read names its keys in the path) as they are. The query string is kept as
    sent but for ``$top``."""
    parts = urlsplit(url)
    if not parts.path.endswith("()"):
        return url
    params = [p for p in parts.query.split("&") if p]
    tops = [int(p.split("=", 1)[1]) for p in params if p.startswith(("$top=", "%24top="))]
    kept = [p for p in params if not p.startswith(("$top=", "%24top="))]
    return urlunsplit(parts._replace(query="&".join([*kept, f"$top={min([page, *tops])}"])))


def _service(url: str, ports: Mapping[int, str]) -> str:
    """``blob``, ``queue`` or ``table`` from a request URL (by port, else Azure's host)."""
    parts = urlsplit(url)
    if parts.port is not None and parts.port in ports:
        return ports[parts.port]
    labels = (parts.hostname or "").split(".")
    return labels[1] if len(labels) > 2 else "other"


def _busy(request: Any) -> RequestsTransportResponse:
    """A ``503 ServerBusy`` answer to ``request``, as storage throttles."""
    answer = requests.Response()
    answer.status_code = 503
    answer.reason = "Server Busy"
    answer._content = BUSY_BODY  # a response built here, not received
    answer.headers["Content-Type"] = "application/xml"
    answer.headers["x-ms-error-code"] = "ServerBusy"
    answer.headers["Content-Length"] = str(len(BUSY_BODY))
    answer.url = str(request.url)
    return RequestsTransportResponse(request, answer)


@contextlib.contextmanager
def installed(wire: Wire) -> Iterator[Wire]:
    """Route every storage client built in this process while inside through ``wire``."""
    before = storage.TRANSPORT
    storage.TRANSPORT = wire
    try:
        yield wire
    finally:
        storage.TRANSPORT = before

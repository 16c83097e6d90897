"""Client construction for both auth modes, the environment's proxy, and result links (no
network beyond loopback)."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.exceptions import ResourceNotFoundError
from blast_client.config import load_storage_config
from blast_client.storage import Storage, environment_settings

KEY = "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5"


def test_managed_identity_mode_uses_account_urls_and_plain_links() -> None:
    cfg = load_storage_config(
        {
            "AZURE_STORAGE_ACCOUNT": "aciresearchdata",
            "AZURE_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
        }
    )
    st = Storage(cfg)
    assert not st.key_auth
    assert st.queue.url == "https://aciresearchdata.queue.core.windows.net/blast-jobs"
    assert st.poison.url.endswith("/blast-jobs-poison")
    assert st.table.url.startswith("https://aciresearchdata.table.core.windows.net")
    url, expiry = st.blob_link("blast-results", "job-1/results.6.tsv")
    assert url == (
        "https://aciresearchdata.blob.core.windows.net/blast-results/job-1/results.6.tsv"
    )
    assert expiry is None


def test_key_auth_links_carry_a_read_only_sas_with_expiry() -> None:
    conn = (
        f"DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey={KEY};"
        "EndpointSuffix=core.windows.net"
    )
    st = Storage(
        load_storage_config(
            {"AZURE_STORAGE_CONNECTION_STRING": conn, "BLAST_SAS_EXPIRY_HOURS": "24"}
        )
    )
    assert st.key_auth
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    url, expiry = st.blob_link("blast-results", "job-1/results.6.tsv", now=now)
    parts = urlsplit(url)
    assert parts.netloc == "acct1.blob.core.windows.net"
    query = parse_qs(parts.query)
    assert query["sp"] == ["r"] and query["sr"] == ["b"] and "sig" in query
    assert query["se"] == ["2030-01-02T00:00:00Z"]
    assert expiry == now + dt.timedelta(hours=24)


def _not_found(handler: http.server.BaseHTTPRequestHandler, code: str) -> None:
    """Answer 404 with the storage service's error body of ``code``."""
    body = b'{"odata.error": {"code": "%s", "message": {"value": "no"}}}' % code.encode()
    handler.send_response(404)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class _Proxy(http.server.BaseHTTPRequestHandler):
    """A forward proxy that records each request line and answers 404 (no such table)."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        _not_found(self, "TableNotFound")

    def log_message(self, *args: object) -> None:
        return None


def test_the_proxy_of_the_environment_is_read_once_and_still_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # requests reads the proxy variables for every request unless told not to; the clients
    # read them once, per endpoint, and a request still goes through the proxy.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        conn = (
            f"DefaultEndpointsProtocol=http;AccountName=acct1;AccountKey={KEY};"
            "TableEndpoint=http://storage.invalid:10002/acct1;"
            "QueueEndpoint=http://storage.invalid:10001/acct1;"
            "BlobEndpoint=http://storage.invalid:10000/acct1;"
        )
        st = Storage(load_storage_config({"AZURE_STORAGE_CONNECTION_STRING": conn}))
        with pytest.raises(ResourceNotFoundError):
            st.table.get_entity("job-1", "job")
        assert _Proxy.seen and _Proxy.seen[-1].startswith("http://storage.invalid:10002/acct1/")
    finally:
        server.shutdown()
        server.server_close()


def test_environment_settings_honour_no_proxy_and_the_ca_bundle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    url = "https://acct1.blob.core.windows.net"
    assert environment_settings(url) == {"use_env_settings": False}
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert environment_settings(url)["proxies"]["https"] == "http://proxy.example:3128"
    monkeypatch.setenv("NO_PROXY", ".core.windows.net")
    assert "proxies" not in environment_settings(url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    assert environment_settings(url)["connection_verify"] == "/etc/ssl/certs/ca-certificates.crt"


class _Slow(http.server.BaseHTTPRequestHandler):
    """A table service that keeps connections alive, answers each read 404 after a pause,
    and counts the connections it was opened and the requests it answered."""

    protocol_version = "HTTP/1.1"
    connections: ClassVar[list[int]] = []
    requests: ClassVar[list[str]] = []

    def setup(self) -> None:
        super().setup()
        self.connections.append(1)

    def do_GET(self) -> None:
        self.requests.append(self.path)
        time.sleep(0.3)  # so that the threads' requests overlap
        _not_found(self, "ResourceNotFound")

    def log_message(self, *args: object) -> None:
        return None


@contextlib.contextmanager
def _served_by(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[Storage]:
    """Storage whose table, queue and blob endpoints are a local server of ``handler``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        conn = (
            f"DefaultEndpointsProtocol=http;AccountName=acct1;AccountKey={KEY};"
            f"TableEndpoint=http://127.0.0.1:{port}/acct1;"
            f"QueueEndpoint=http://127.0.0.1:{port}/acct1;"
            f"BlobEndpoint=http://127.0.0.1:{port}/acct1;"
        )
        yield Storage(load_storage_config({"AZURE_STORAGE_CONNECTION_STRING": conn}))
    finally:
        server.shutdown()
        server.server_close()


def test_a_client_keeps_a_connection_for_each_of_many_threads() -> None:
    # urllib3 keeps 10 connections a host by default: the submit's and the merge's 16 threads
    # would open (and close) a new connection for most requests beyond the tenth.
    with _served_by(_Slow) as st:

        def reads(_: int) -> None:
            for _ in range(3):
                with pytest.raises(ResourceNotFoundError):
                    st.table.get_entity("job-1", "job")

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(reads, range(16)))
        assert len(_Slow.requests) == 48
        assert len(_Slow.connections) <= 16, f"{len(_Slow.connections)} connections, 16 threads"


class _ClosesIdle(http.server.BaseHTTPRequestHandler):
    """A table service that closes a kept-alive connection unanswered when a second request
    comes on it, as a server closing idle connections does in a race with the client."""

    protocol_version = "HTTP/1.1"
    served: ClassVar[list[str]] = []

    def setup(self) -> None:
        super().setup()
        self.on_this_connection = 0

    def handle_one_request(self) -> None:
        self.on_this_connection += 1
        super().handle_one_request()

    def do_GET(self) -> None:
        self.served.append("GET")
        _not_found(self, "ResourceNotFound")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.on_this_connection > 1:
            self.close_connection = True  # no answer
            return
        self.served.append("POST")
        self.send_response(204)
        self.send_header("ETag", "W/\"datetime'2026-12-07T00%3A00%3A00.0000000Z'\"")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def test_a_request_on_a_connection_closed_unanswered_goes_out_once_more() -> None:
    # A table insert is a POST, which azure-core does not retry after a connection error:
    # a kept-alive connection closed by the server as the insert went out failed a run's
    # whole submit.
    with _served_by(_ClosesIdle) as st:
        with pytest.raises(ResourceNotFoundError):
            st.table.get_entity("job-1", "job")  # leaves the connection kept alive
        st.table.create_entity({"PartitionKey": "job-1", "RowKey": "job", "state": "queued"})
        assert _ClosesIdle.served == ["GET", "POST"]

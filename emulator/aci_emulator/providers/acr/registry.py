"""A registry data plane on 127.0.0.1: ACR's token exchange plus v2 manifests.

What a successful fake ACR run pushes to (:class:`~.provider.AcrProvider`), and what the
deployer's build reads back. With :attr:`FakeRegistry.upstream` set it keeps only ACR's
token exchange and forwards the manifests to a real registry (Debian's ``docker-registry``,
which cannot exchange an Entra ID token), so the digest the deployer reads by HEAD is the
one the strict emulator pulls.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from ...arm import FAKE_TOKEN

REFRESH_TOKEN = "fake-acr-refresh-token"
ACCESS_TOKEN = "fake-acr-access-token"
NULL_USER = "00000000-0000-0000-0000-000000000000"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


class FakeRegistry:
    """A registry data plane on 127.0.0.1: ACR's token exchange plus v2 manifests.

    ``POST /oauth2/exchange`` takes the fake ARM token and answers a refresh token;
    ``GET /oauth2/token`` (basic auth: null user + refresh token, or a user of
    :attr:`admins`, the registry's admin user) answers an access token;
    ``/v2/<repo>/manifests/<ref>`` (HEAD, GET, PUT) needs it and otherwise answers 401
    with a Bearer challenge, as ACR does.
    """

    def __init__(self, token: str = FAKE_TOKEN) -> None:
        self.token = token
        """The ARM token ``/oauth2/exchange`` accepts (the fake ARM server's)."""
        self.fallback: Callable[[str, str], bool] | None = None
        """Answers (repository, tag or digest) -> exists for what is not stored: the
        emulator's local-image mode, where the engine's images are the registry."""
        self.admins: dict[str, str] = {}
        """User name -> password of the admin users (``az acr credential show``)."""
        self.upstream: tuple[str, tuple[str, str]] | None = None
        """``host:port`` of a real registry and a user of it: manifests are forwarded
        there (with that user) instead of stored here."""
        self.manifests: dict[tuple[str, str], tuple[str, bytes]] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(
                self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body and self.command != "HEAD":
                    self.wfile.write(body)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with outer.lock:
                    outer.requests.append((self.command, self.path))
                status, body, headers = outer.answer(self.command, self.path, self.headers, raw)
                self._send(status, body, headers)

            do_GET = do_HEAD = do_PUT = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Silence per-request logging."""

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def server(self) -> str:
        """The login server, ``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> Self:
        """Serve in a background thread."""
        # A short poll keeps stop() quick (tests start one registry each).
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def push(self, repository: str, tag: str, labels: dict[str, str]) -> str:
        """Store a manifest for ``repository:tag`` (what a run pushes); return its digest."""
        config = json.dumps({"config": {"Labels": labels}}, sort_keys=True).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": len(config),
                    "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                },
                "layers": [],
                "annotations": labels,
            },
            sort_keys=True,
        ).encode()
        with self.lock:
            self.manifests[(repository, tag)] = (
                "application/vnd.docker.distribution.manifest.v2+json",
                manifest,
            )
        return "sha256:" + hashlib.sha256(manifest).hexdigest()

    def digest(self, repository: str, tag: str) -> str:
        """The digest of the manifest stored at ``repository:tag``."""
        with self.lock:
            _, body = self.manifests[(repository, tag)]
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def _find(self, repository: str, ref: str) -> tuple[str, bytes] | None:
        """The manifest at a tag, or (``sha256:...``) with that digest; call with the lock."""
        found = self.manifests.get((repository, ref))
        if found is None and ref.startswith("sha256:"):
            found = next(
                (
                    m
                    for (repo, _), m in self.manifests.items()
                    if repo == repository and "sha256:" + hashlib.sha256(m[1]).hexdigest() == ref
                ),
                None,
            )
        return found

    def labels(self, repository: str, tag: str) -> dict[str, str]:
        """The labels of a stored image (from its manifest's annotations)."""
        with self.lock:
            _, body = self.manifests[(repository, tag)]
        return dict(json.loads(body).get("annotations", {}))

    def answer(
        self, method: str, path: str, headers: Any, raw: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        """Route one request."""
        split = urlsplit(path)
        if split.path == "/oauth2/exchange" and method == "POST":
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            if form.get("grant_type") != "access_token" or form.get("access_token") != self.token:
                return 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {}
            return 200, json.dumps({"refresh_token": REFRESH_TOKEN}).encode(), {}
        if split.path == "/oauth2/token":
            auth = headers.get("Authorization", "")
            pairs = [(NULL_USER, REFRESH_TOKEN), *self.admins.items()]
            accepted = {"Basic " + base64.b64encode(f"{u}:{p}".encode()).decode() for u, p in pairs}
            if auth not in accepted:
                return 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {}
            return 200, json.dumps({"access_token": ACCESS_TOKEN}).encode(), {}
        match = re.fullmatch(r"/v2/(?P<repo>.+)/manifests/(?P<ref>[^/]+)", split.path)
        if not match:
            return 404, b"", {}
        repo, ref = match["repo"], match["ref"]
        if headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            challenge = (
                f'Bearer realm="http://{self.server}/oauth2/token",service="{self.server}",'
                f'scope="repository:{repo}:pull"'
            )
            return 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge}
        if self.upstream is not None:
            return self._forward(method, split.path, headers, raw)
        with self.lock:
            if method == "PUT":
                media = headers.get("Content-Type", "")
                self.manifests[(repo, ref)] = (media, raw)
                digest = "sha256:" + hashlib.sha256(raw).hexdigest()
                return 201, b"", {"Docker-Content-Digest": digest}
            found = self._find(repo, ref)
        if found is None and self.fallback is not None and self.fallback(repo, ref):
            found = (
                "application/vnd.docker.distribution.manifest.v2+json",
                f"{repo}:{ref}".encode(),
            )
        if found is None:
            return 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', {}
        media, body = found
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        return 200, body, {"Content-Type": media, "Docker-Content-Digest": digest}

    def _forward(
        self, method: str, path: str, headers: Any, raw: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        """One manifest request, sent on to :attr:`upstream` with its user."""
        assert self.upstream is not None
        server, (user, password) = self.upstream
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        sent = {"Authorization": f"Basic {basic}"}
        for name in ("Accept", "Content-Type"):
            if headers.get(name):
                sent[name] = str(headers.get(name))
        request = urllib.request.Request(
            f"http://{server}{path}", data=raw or None, headers=sent, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                status, body, got = reply.status, reply.read(), reply.headers
        except urllib.error.HTTPError as exc:
            status, body, got = exc.code, exc.read(), exc.headers
        kept = {k: got[k] for k in ("Content-Type", "Docker-Content-Digest") if got.get(k)}
        return status, body, kept

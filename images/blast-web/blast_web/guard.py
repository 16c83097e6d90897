"""Security in one place: sessions, login required, CSRF on every POST, body size limits and
response headers, as one ASGI middleware in front of every route.

A POST body is read here (up to the upload limit), its form parsed once and its CSRF token
checked before any view runs; views find the parsed form in ``request.state.form``. A body
over the limit is drained and dropped, and the view sees ``request.state.too_large`` so it can
say so next to the field, with nothing queued.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from blast_web.security import SESSION_COOKIE, SESSION_SECONDS, Credentials, Session, Signer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PREFIXES = ("/healthz", "/login", "/static/")
FORM_OVERHEAD = 64 * 1024
"""Room for the other fields and multipart framing on top of the query size limit."""
DRAIN_FACTOR = 8
"""Bodies up to this many times the limit are read and dropped so the browser sees the
error page; larger ones get a bare 413 at once."""

SECURITY_HEADERS = {
    # Everything is served by the app itself; no inline script, no framing.
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def cookie_header(value: str, secure: bool, max_age: int = SESSION_SECONDS) -> str:
    """The ``Set-Cookie`` value of the session cookie.

    Args:
        value: The signed cookie value ("" to clear).
        secure: Add ``Secure`` (served over TLS).
        max_age: Lifetime in seconds (0 clears).
    """
    parts = [f"{SESSION_COOKIE}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly"]
    parts.append("SameSite=Lax")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


class Guard:
    """The security middleware.

    Args:
        app: The router.
        signer: Signs sessions and CSRF tokens.
        credentials: What a login must present.
        secure: Cookies are ``Secure`` (TLS).
        max_body: Largest POST body read.
    """

    def __init__(
        self,
        app: ASGIApp,
        signer: Signer,
        credentials: Credentials,
        secure: bool,
        max_body: int,
    ) -> None:
        self.app = app
        self.signer = signer
        self.credentials = credentials
        self.secure = secure
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        session = self.signer.load(request.cookies.get(SESSION_COOKIE))
        new_cookie: str | None = None
        if session is None:
            session = self.signer.new_session(authenticated=False)
            new_cookie = self.signer.dump(session)

        # ?token=... logs in (the URL `make up` prints), then drops the token from the URL.
        token = request.query_params.get("token")
        if token is not None and request.method == "GET":
            if self.credentials.check(token):
                session = self.signer.new_session(authenticated=True)
                query = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                target = request.url.path + ("?" + urllib.parse.urlencode(query) if query else "")
                response: Response = RedirectResponse(target, status_code=303)
                await self._send(response, session, self.signer.dump(session), scope, receive, send)
                return
            await self._send(
                PlainTextResponse("invalid token", status_code=403),
                session, new_cookie, scope, receive, send,
            )  # fmt: skip
            return

        scope.setdefault("state", {})
        scope["state"]["session"] = session
        scope["state"]["csrf"] = self.signer.csrf_token(session)
        scope["state"]["too_large"] = False
        path = scope["path"]
        public = any(path == p.rstrip("/") or path.startswith(p) for p in PUBLIC_PREFIXES)
        if not public and not session.authenticated:
            if request.method == "GET" and not path.endswith(".json") and "/download/" not in path:
                target = "/login?" + urllib.parse.urlencode({"next": request.url.path})
                response = RedirectResponse(target, status_code=303)
            else:
                response = PlainTextResponse("log in first", status_code=401)
            await self._send(response, session, new_cookie, scope, receive, send)
            return

        if request.method == "POST":
            result = await self._read_form(scope, receive)
            if isinstance(result, Response):
                await self._send(result, session, new_cookie, scope, receive, send)
                return
            form, too_large = result
            if too_large and path != "/":  # only the search form says more than this
                response = PlainTextResponse("request body too large", status_code=413)
                await self._send(response, session, new_cookie, scope, receive, send)
                return
            scope["state"]["form"] = form
            scope["state"]["too_large"] = too_large
            if not too_large and not self.signer.check_csrf(session, _text(form, "csrf_token")):
                response = PlainTextResponse(
                    "CSRF token missing or invalid: reload the page and submit the form again",
                    status_code=403,
                )
                await self._send(response, session, new_cookie, scope, receive, send)
                return
        await self._send(None, session, new_cookie, scope, receive, send)

    async def _read_form(self, scope: Scope, receive: Receive) -> tuple[FormData, bool] | Response:
        """Read the body (bounded) and parse it as a form."""
        request = Request(scope)
        declared = request.headers.get("content-length")
        limit = self.max_body + FORM_OVERHEAD
        if declared is not None and declared.isdigit() and int(declared) > limit * DRAIN_FACTOR:
            return PlainTextResponse("request body too large", status_code=413)
        chunks: list[bytes] = []
        size = 0
        too_large = False
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return PlainTextResponse("client went away", status_code=400)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                too_large = True
                chunks.clear()  # drop it; keep reading so the browser gets the answer
                if size > limit * DRAIN_FACTOR:
                    return PlainTextResponse("request body too large", status_code=413)
            elif chunk:
                chunks.append(chunk)
            more = bool(message.get("more_body", False))
        if too_large:
            return FormData(), True
        body = b"".join(chunks)

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        parsed = Request(scope, replay)
        try:
            form = await parsed.form(max_files=1, max_fields=50, max_part_size=self.max_body)
        except Exception:  # noqa: BLE001  # any malformed body is the client's error
            return PlainTextResponse("malformed form data", status_code=400)
        return form, False

    async def _send(
        self,
        response: Response | None,
        session: Session,
        cookie: str | None,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in names:
                        headers.append((name.encode(), value.encode()))
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                if cookie is not None and b"set-cookie" not in names:
                    headers.append((b"set-cookie", cookie_header(cookie, self.secure).encode()))
                message["headers"] = headers
            await send(message)

        if response is not None:
            await response(scope, receive, send_with_headers)
        else:
            await self.app(scope, receive, send_with_headers)


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None

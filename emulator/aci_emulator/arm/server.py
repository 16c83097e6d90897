"""A fake Azure Resource Manager (ARM) endpoint on loopback, for the real Azure SDK.

The server is generic: it authenticates, records, injects faults, routes requests to
the operations of registered :class:`ResourceProvider` s (one per Azure REST spec),
validates them against that spec, and runs ARM's asynchronous-operation protocol
(``Azure-AsyncOperation`` / ``Location`` status URLs). Provider-specific behaviour
(what a container group is) lives in the provider modules, e.g. :mod:`.aci`.

Time-based state changes are applied lazily: at the start of every request the
server completes each asynchronous operation whose deadline has passed, so tests see
a consistent world without a background ticker thread.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, urlsplit

from azure.core.credentials import AccessToken

from .spec import Operation, Problem, SwaggerSpec

FAKE_TOKEN = "fake-arm-token"
"""The only bearer token the server accepts."""

FAKE_SUBSCRIPTION_ID = "00000000-0000-0000-0000-00000000fa4e"
"""Subscription id used by fixtures; the server accepts any subscription id."""


class FakeCredential:
    """An ``azure.core.credentials.TokenCredential`` that returns a fixed token.

    :param token: the bearer token to hand out; the server only accepts
        :data:`FAKE_TOKEN`, so pass something else to test 401 handling.
    """

    def __init__(self, token: str = FAKE_TOKEN) -> None:
        self.token = token
        self.requests = 0

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """Return the fixed token, valid for an hour.

        :param scopes: requested scopes (ignored; ARM clients ask for
            ``https://management.azure.com/.default``).
        :param claims: ignored.
        :param tenant_id: ignored.
        :param enable_cae: ignored.
        :param kwargs: ignored.
        :return: the access token.
        """
        self.requests += 1
        return AccessToken(self.token, int(time.time()) + 3600)


# --- request / response model ------------------------------------------------------


@dataclass
class ArmRequest:
    """A parsed request, as handed to provider handlers.

    :param method: upper-case HTTP method.
    :param path: URL path (not decoded).
    :param query: query parameters, first value of each.
    :param headers: request headers (case-insensitive lookups via :meth:`header`).
    :param body: parsed JSON body, or ``None`` when there was none.
    :param base_url: ``http://127.0.0.1:<port>``, for building absolute URLs.
    :param operation: the spec operation matched, if any.
    :param path_params: decoded path parameters of the matched operation.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    base_url: str
    operation: Operation | None = None
    path_params: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup.

        :param name: header name.
        :return: the value, or ``None``.
        """
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


@dataclass
class ArmResponse:
    """What a handler answers.

    :param status: HTTP status.
    :param body: JSON-serialisable body, or ``None`` for an empty body.
    :param headers: extra response headers.
    """

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def arm_error(
    status: int,
    code: str,
    message: str,
    details: Iterable[Mapping[str, Any]] = (),
    target: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ArmResponse:
    """Build an ARM error response: ``{"error": {"code", "message", ...}}``.

    :param status: HTTP status.
    :param code: ARM error code, e.g. ``ResourceNotFound``.
    :param message: what went wrong and, where possible, what to do next.
    :param details: optional ``details`` entries (same shape as the error).
    :param target: optional ``target`` (the property or parameter in error).
    :param headers: extra response headers, e.g. ``Retry-After``.
    :return: the response.
    """
    error: dict[str, Any] = {"code": code, "message": message}
    if target is not None:
        error["target"] = target
    details = list(details)
    if details:
        error["details"] = [dict(d) for d in details]
    return ArmResponse(status, {"error": error}, dict(headers or {}))


def invalid_content(problems: list[Problem]) -> ArmResponse:
    """A 400 ``InvalidRequestContent`` answer listing every problem found.

    :param problems: validation problems, at least one.
    :return: the response, whose message names each JSON path and rule.
    """
    summary = "; ".join(p.message for p in problems)
    return arm_error(
        400,
        "InvalidRequestContent",
        f"The request content was invalid ({len(problems)} problem(s)): {summary}",
        details=[p.detail() for p in problems],
    )


# --- recording ----------------------------------------------------------------------


@dataclass
class Call:
    """One request as the server saw it.

    :param method: upper-case HTTP method.
    :param path: URL path.
    :param query: query parameters, first value of each.
    :param body: parsed JSON body (``None`` if absent or not JSON).
    :param status: HTTP status answered.
    :param start: ``time.monotonic()`` when the request line was read.
    :param end: ``time.monotonic()`` when the answer was ready to send (after any
        :attr:`FakeArmServer.latency`), just before it was written.
    :param operation_id: spec operation matched, or a server route name
        (``AsyncOperationStatus``, ``OperationResult``), or ``None``.
    :param fault: ``"random"`` or ``"scripted"`` when a fault answered the call.
    :param response: the JSON body answered (``None`` if empty).
    """

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0
    start: float = 0.0
    end: float = 0.0
    operation_id: str | None = None
    fault: str | None = None
    response: Any = None

    def overlaps(self, other: Call) -> bool:
        """Whether the two calls were in flight at the same time.

        :param other: another call.
        :return: ``True`` if their [start, end] windows intersect.
        """
        return self.start < other.end and other.start < self.end


# --- faults -------------------------------------------------------------------------

_FAULT_CODES = {
    408: "RequestTimeout",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


@dataclass
class _ScriptedFault:
    method: str | None
    path: re.Pattern[str] | None
    status: int
    remaining: int
    body: Any
    retry_after: float | None


@dataclass
class _RandomFaults:
    rate: float
    statuses: tuple[int, ...]
    rng: random.Random
    retry_after: float | None
    method: str | None
    path: re.Pattern[str] | None


class Faults:
    """Fault injection: seeded random faults and scripted one-off faults.

    A fault answers the request before it reaches any handler, so it never changes
    state. Scripted faults are consumed first, in the order they were added.
    Methods are thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripted: list[_ScriptedFault] = []
        self._random: _RandomFaults | None = None

    def script(
        self,
        status: int,
        *,
        method: str | None = None,
        path: str | None = None,
        count: int = 1,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status``.

        :param status: HTTP status to answer, e.g. 409, 429, 500, 503.
        :param method: only requests with this method (any case); ``None`` for all.
        :param path: only requests whose path matches this regex (``re.search``,
            case-insensitive); ``None`` for all.
        :param count: how many matching requests to fail.
        :param body: JSON body to answer; default: an ARM error body whose code
            matches the status (``TooManyRequests``, ``ServiceUnavailable``, ...).
        :param retry_after: seconds for a ``Retry-After`` header (fractions allowed;
            azure-core parses them); ``None`` sends no header.
        """
        with self._lock:
            self._scripted.append(
                _ScriptedFault(
                    method.upper() if method else None,
                    re.compile(path, re.IGNORECASE) if path else None,
                    status,
                    count,
                    body,
                    retry_after,
                )
            )

    def random(
        self,
        rate: float,
        statuses: Iterable[int] = (429,),
        *,
        seed: int = 0,
        retry_after: float | None = 0.01,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Fail a seeded-random fraction of matching requests.

        :param rate: probability in [0, 1] that a matching request is failed.
        :param statuses: statuses to pick from (uniformly, seeded), e.g. ``(429, 503)``.
        :param seed: seed for the random generator, so runs are reproducible for a
            given request order.
        :param retry_after: seconds for a ``Retry-After`` header; ``None`` for none.
        :param method: only requests with this method; ``None`` for all.
        :param path: only requests whose path matches this regex; ``None`` for all.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be within [0, 1], got {rate}")
        with self._lock:
            self._random = _RandomFaults(
                rate,
                tuple(statuses),
                random.Random(seed),
                retry_after,
                method.upper() if method else None,
                re.compile(path, re.IGNORECASE) if path else None,
            )

    def clear(self) -> None:
        """Remove all scripted and random faults."""
        with self._lock:
            self._scripted.clear()
            self._random = None

    def pending(self) -> int:
        """How many scripted fault answers are still to be given."""
        with self._lock:
            return sum(f.remaining for f in self._scripted)

    def pick(self, method: str, path: str) -> tuple[str, ArmResponse] | None:
        """Decide whether this request is answered by a fault.

        :param method: request method.
        :param path: request path.
        :return: ``(kind, response)`` or ``None`` to serve the request normally.
        """
        with self._lock:
            for fault in self._scripted:
                if fault.remaining > 0 and _fault_matches(fault.method, fault.path, method, path):
                    fault.remaining -= 1
                    return "scripted", _fault_response(fault.status, fault.body, fault.retry_after)
            self._scripted = [f for f in self._scripted if f.remaining > 0]
            rnd = self._random
            if (
                rnd
                and _fault_matches(rnd.method, rnd.path, method, path)
                and rnd.rng.random() < rnd.rate
            ):
                status = rnd.rng.choice(rnd.statuses)
                return "random", _fault_response(status, None, rnd.retry_after)
        return None


def _fault_matches(
    want_method: str | None, want_path: re.Pattern[str] | None, method: str, path: str
) -> bool:
    if want_method is not None and want_method != method.upper():
        return False
    return want_path is None or want_path.search(path) is not None


def _fault_response(status: int, body: Any, retry_after: float | None) -> ArmResponse:
    headers = {} if retry_after is None else {"Retry-After": _format_seconds(retry_after)}
    if body is not None:
        return ArmResponse(status, body, headers)
    code = _FAULT_CODES.get(status, "InjectedFault")
    return arm_error(status, code, f"Injected fault: HTTP {status} ({code}).", headers=headers)


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


# --- asynchronous operations -------------------------------------------------------


@dataclass
class AsyncOperation:
    """An ARM asynchronous operation (what ``Azure-AsyncOperation`` points at).

    :param id: operation id (a UUID).
    :param namespace: resource provider namespace, e.g. ``Microsoft.ContainerInstance``.
    :param subscription_id: subscription of the resource.
    :param location: Azure region of the resource.
    :param kind: what it does, e.g. ``create``, ``update``, ``delete``.
    :param resource_id: ARM id of the resource it acts on.
    :param started: ``time.monotonic()`` at start.
    :param due: ``time.monotonic()`` when it completes.
    :param on_complete: called once, under the server lock, when it completes; may
        return an ARM error dict (``{"code", "message"}``) to make it fail.
    :param status: ``InProgress``, ``Succeeded``, ``Failed`` or ``Canceled``.
    :param finished: ``time.monotonic()`` at completion, or ``None``.
    :param error: the error of a failed operation.
    """

    id: str
    namespace: str
    subscription_id: str
    location: str
    kind: str
    resource_id: str
    started: float
    due: float
    on_complete: Callable[[], dict[str, str] | None] | None = None
    status: str = "InProgress"
    finished: float | None = None
    error: dict[str, str] | None = None
    start_time_iso: str = ""
    end_time_iso: str = ""


# --- providers -----------------------------------------------------------------------

Handler = Callable[[ArmRequest], ArmResponse]


class ResourceProvider:
    """Base class for one resource provider backed by one Azure REST spec.

    A subclass sets :attr:`namespace`, passes its spec to ``__init__`` and defines a
    method ``op_<OperationId>`` (e.g. ``op_ContainerGroups_Get``) for each operation
    it serves; requests for spec operations without a method get 501, so the gap is
    obvious. The server validates parameters and the body before calling a handler,
    and holds its lock while the handler runs, so handlers need no locking of their
    own.

    :param spec: the provider's spec.
    """

    namespace: ClassVar[str] = ""

    def __init__(self, spec: SwaggerSpec) -> None:
        self.spec = spec
        self.server: FakeArmServer | None = None

    def attach(self, server: FakeArmServer) -> None:
        """Called by the server when the provider is registered.

        :param server: the owning server.
        """
        self.server = server

    def handler(self, operation_id: str) -> Handler | None:
        """The method serving an operation, if any.

        :param operation_id: spec ``operationId``.
        :return: a bound ``op_<OperationId>`` method, or ``None``.
        """
        found = getattr(self, "op_" + operation_id, None)
        return found if callable(found) else None

    def reset(self) -> None:
        """Forget all resources (called by :meth:`FakeArmServer.reset`)."""


# --- the server ---------------------------------------------------------------------


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 makes a burst of concurrent connects wait for SYN retries.
    request_queue_size = 128
    allow_reuse_address = True
    arm: FakeArmServer


class FakeArmServer:
    """The fake ARM endpoint. Use as a context manager; it listens while inside.

    Knobs (plain attributes, settable while running): :attr:`latency` (seconds added
    to every answer, outside the lock, so concurrent requests really overlap) and
    :attr:`operation_retry_after` (``Retry-After`` seconds on operation-status
    answers; ``None`` sends none, as ACI does, so the client's ``polling_interval``
    applies). Provider knobs live on the providers, e.g. ``server.aci``.

    :param providers: resource providers to serve.
    :param token: the bearer token required on every request.
    :param subscription_id: the subscription id fixtures use (any is accepted).
    """

    def __init__(
        self,
        providers: Iterable[ResourceProvider],
        *,
        token: str = FAKE_TOKEN,
        subscription_id: str = FAKE_SUBSCRIPTION_ID,
    ) -> None:
        self.providers = list(providers)
        self.token = token
        self.subscription_id = subscription_id
        self.faults = Faults()
        self.latency = 0.0
        self.operation_retry_after: float | None = None
        self.lock = threading.RLock()
        self._calls: list[Call] = []
        self._operations: dict[str, AsyncOperation] = {}
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._extra: list[tuple[_HttpServer, threading.Thread]] = []
        for provider in self.providers:
            provider.attach(self)

    # lifecycle

    def start(self, port: int = 0) -> Self:
        """Start listening on 127.0.0.1 (loopback only).

        :param port: TCP port; 0 picks a free one.
        :return: ``self``.
        """
        if self._httpd is not None:
            raise RuntimeError("fake ARM server already started")
        self._httpd, self._thread = self._listen("127.0.0.1", port)
        return self

    def also_listen(self, host: str) -> str:
        """Listen on a second address too, on the same port (e.g. a Docker gateway).

        Anything that reaches that address can use the server, so pass a specific
        interface (the emulator's Docker network gateway), never ``0.0.0.0`` unless
        the machine's network is trusted.

        :param host: IP address to bind.
        :return: the base URL on that address.
        """
        if self._httpd is None:
            raise RuntimeError("start the fake ARM server first")
        port = int(self._httpd.server_address[1])
        httpd, thread = self._listen(host, port)
        self._extra.append((httpd, thread))
        return f"http://{host}:{port}"

    def _listen(self, host: str, port: int) -> tuple[_HttpServer, threading.Thread]:
        httpd = _HttpServer((host, port), _Handler)
        httpd.arm = self
        thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-arm-{host}",
            daemon=True,
        )
        thread.start()
        return httpd, thread

    def stop(self) -> None:
        """Stop listening; returns once the serving threads have exited."""
        servers = [(self._httpd, self._thread), *self._extra]
        self._httpd = self._thread = None
        self._extra = []
        for httpd, thread in servers:
            if httpd is not None:
                httpd.shutdown()
                httpd.server_close()
            if thread is not None:
                thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234`` (pass as the SDK's ``base_url``)."""
        if self._httpd is None:
            raise RuntimeError("fake ARM server is not running; use it as a context manager")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def credential(self) -> FakeCredential:
        """A credential whose token this server accepts.

        :return: a new :class:`FakeCredential`.
        """
        return FakeCredential(self.token)

    def provider(self, namespace: str) -> ResourceProvider:
        """The registered provider for a namespace.

        :param namespace: e.g. ``Microsoft.ContainerInstance`` (any case).
        :return: the provider.
        """
        for provider in self.providers:
            if provider.namespace.lower() == namespace.lower():
                return provider
        raise KeyError(f"no provider registered for {namespace}")

    def reset(self) -> None:
        """Forget calls, operations, faults and every provider's resources."""
        with self.lock:
            self._calls.clear()
            self._operations.clear()
            self.faults.clear()
            for provider in self.providers:
                provider.reset()

    # recording

    def calls(
        self,
        method: str | None = None,
        path: str | None = None,
        *,
        operation_id: str | None = None,
        status: int | None = None,
    ) -> list[Call]:
        """Recorded calls in order of arrival (``start``), optionally filtered.

        :param method: only this method (any case).
        :param path: only paths matching this regex (``re.search``, case-insensitive).
        :param operation_id: only calls routed to this operation.
        :param status: only calls answered with this status.
        :return: copies of the matching records.
        """
        pattern = re.compile(path, re.IGNORECASE) if path else None
        with self.lock:
            snapshot = sorted(self._calls, key=lambda c: c.start)
        return [
            c
            for c in snapshot
            if (method is None or c.method == method.upper())
            and (pattern is None or pattern.search(c.path))
            and (operation_id is None or c.operation_id == operation_id)
            and (status is None or c.status == status)
        ]

    def clear_calls(self) -> None:
        """Forget recorded calls (state is kept)."""
        with self.lock:
            self._calls.clear()

    def operations(self, kind: str | None = None) -> list[AsyncOperation]:
        """Asynchronous operations started so far, oldest first.

        :param kind: only this kind (``create``, ``update``, ``delete``).
        :return: the operations (live objects; read-only use).
        """
        with self.lock:
            self.advance()
            ops = list(self._operations.values())
        return [op for op in ops if kind is None or op.kind == kind]

    # asynchronous operations (used by providers, under the lock)

    def start_operation(
        self,
        *,
        namespace: str,
        subscription_id: str,
        location: str,
        kind: str,
        resource_id: str,
        delay: float,
        on_complete: Callable[[], dict[str, str] | None] | None = None,
    ) -> AsyncOperation:
        """Register an asynchronous operation completing ``delay`` seconds from now.

        :param namespace: provider namespace (appears in the status URL).
        :param subscription_id: subscription (appears in the status URL).
        :param location: region (appears in the status URL).
        :param kind: ``create``, ``update``, ``delete``, ...
        :param resource_id: ARM id of the resource.
        :param delay: seconds until completion; 0 completes on the next request.
        :param on_complete: applied once at completion; may return an error dict to
            fail the operation.
        :return: the operation.
        """
        now = time.monotonic()
        op = AsyncOperation(
            id=str(uuid.uuid4()),
            namespace=namespace,
            subscription_id=subscription_id,
            location=location,
            kind=kind,
            resource_id=resource_id,
            started=now,
            due=now + max(0.0, delay),
            on_complete=on_complete,
            start_time_iso=_utc_now_iso(),
        )
        with self.lock:
            self._operations[op.id] = op
        return op

    def operation_headers(
        self, base_url: str, op: AsyncOperation, *, location: bool
    ) -> dict[str, str]:
        """Response headers pointing at an operation's status (and result) URLs.

        :param base_url: the request's base URL.
        :param op: the operation.
        :param location: also send a ``Location`` (operation result) header.
        :return: headers to add to a 201/202 answer.
        """
        prefix = (
            f"{base_url}/subscriptions/{op.subscription_id}/providers/{op.namespace}"
            f"/locations/{op.location}"
        )
        # ACI's status URLs carry their own api-version, not the resource's.
        headers = {"Azure-AsyncOperation": f"{prefix}/operations/{op.id}?api-version=2018-06-01"}
        if location:
            headers["Location"] = f"{prefix}/operationResults/{op.id}?api-version=2018-06-01"
        if self.operation_retry_after is not None:
            headers["Retry-After"] = _format_seconds(self.operation_retry_after)
        return headers

    def advance(self) -> None:
        """Complete every operation whose deadline has passed (call under the lock)."""
        now = time.monotonic()
        with self.lock:
            for op in sorted(self._operations.values(), key=lambda o: o.due):
                if op.status == "InProgress" and op.due <= now:
                    error = op.on_complete() if op.on_complete else None
                    op.status = "Failed" if error else "Succeeded"
                    op.error = error
                    op.finished = now
                    op.end_time_iso = _utc_now_iso()

    def complete_operations(self, kind: str | None = None) -> int:
        """Finish in-flight asynchronous operations now, whatever their delay.

        Lets a test hold a group in ``Pending`` (long delay), look at it, then release it
        without sleeping.

        :param kind: only operations of this kind (``create``, ``update``, ``delete``).
        :return: how many operations were completed.
        """
        now = time.monotonic()
        with self.lock:
            due = [
                op
                for op in self._operations.values()
                if op.status == "InProgress" and (kind is None or op.kind == kind)
            ]
            for op in due:
                op.due = min(op.due, now)
            self.advance()
        return len(due)

    # request handling

    def handle(self, request: ArmRequest, call: Call) -> ArmResponse:
        """Serve one request (called by the HTTP handler thread).

        :param request: the parsed request.
        :param call: its record, updated with routing and fault information.
        :return: the answer.
        """
        auth = request.header("Authorization")
        if not auth:
            return _unauthorized(
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            )
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or token != self.token:
            return _unauthorized("InvalidAuthenticationToken", "The access token is invalid.")

        fault = self.faults.pick(request.method, request.path)
        if fault is not None:
            call.fault = fault[0]
            return fault[1]

        with self.lock:
            self.advance()
            status_answer = self._operation_status(request, call)
            if status_answer is not None:
                return status_answer
            return self._dispatch(request, call)

    def _operation_status(self, request: ArmRequest, call: Call) -> ArmResponse | None:
        m = _OPERATION_PATH.fullmatch(request.path)
        if m is None or request.method != "GET":
            return None
        op = self._operations.get(m["id"])
        if op is None or op.namespace.lower() != m["ns"].lower():
            return arm_error(404, "OperationNotFound", f"Operation {m['id']} was not found.")
        retry = (
            {"Retry-After": _format_seconds(self.operation_retry_after)}
            if self.operation_retry_after is not None and op.status == "InProgress"
            else {}
        )
        if m["kind"].lower() == "operationresults":
            call.operation_id = "OperationResult"
            if op.status == "InProgress":
                again = f"{request.base_url}{request.path}?api-version=" + request.query.get(
                    "api-version", ""
                )
                return ArmResponse(202, None, {**retry, "Location": again})
            if op.status == "Failed":
                return ArmResponse(400, {"error": op.error})
            return ArmResponse(204)
        call.operation_id = "AsyncOperationStatus"
        body: dict[str, Any] = {
            "id": request.path,
            "name": op.id,
            "status": op.status,
            "startTime": op.start_time_iso,
        }
        if op.finished is not None:
            body["endTime"] = op.end_time_iso
        if op.error:
            body["error"] = op.error
        return ArmResponse(200, body, retry)

    def _dispatch(self, request: ArmRequest, call: Call) -> ArmResponse:
        for provider in self.providers:
            matched = provider.spec.match(request.method, request.path)
            if matched is None:
                continue
            operation, path_params = matched
            request.operation, request.path_params = operation, path_params
            call.operation_id = operation.operation_id
            api_version = request.query.get("api-version")
            if api_version is None:
                return arm_error(
                    400,
                    "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.",
                )
            if api_version != provider.spec.api_version:
                return arm_error(
                    400,
                    "InvalidApiVersionParameter",
                    f"The api-version '{api_version}' is invalid. The fake serves "
                    f"{provider.namespace} only at api-version '{provider.spec.api_version}' "
                    f"(from {provider.spec.path.name}).",
                )
            problems = provider.spec.check_parameters(operation, path_params, request.query)
            if problems:
                return arm_error(
                    400,
                    "InvalidParameter",
                    "; ".join(p.message for p in problems),
                    details=[p.detail("InvalidParameter") for p in problems],
                )
            if isinstance(request.body, _BadJson):
                return arm_error(
                    400,
                    "InvalidRequestContent",
                    f"The request content was invalid and could not be deserialized: "
                    f"{request.body.reason}",
                )
            problems = provider.spec.validate_body(operation, request.body)
            if problems:
                return invalid_content(problems)
            handler = provider.handler(operation.operation_id)
            if handler is None:
                return arm_error(
                    501,
                    "NotImplemented",
                    f"The fake ARM server does not implement {operation.operation_id} yet; add "
                    f"op_{operation.operation_id} to the {provider.namespace} provider in "
                    "tests/fakearm.",
                )
            return handler(request)
        return arm_error(
            404,
            "NotFound",
            f"No route for {request.method} {request.path}: it matches no operation of the "
            f"specs the fake ARM server loads "
            f"({', '.join(p.spec.path.name for p in self.providers)}).",
        )


_OPERATION_PATH = re.compile(
    r"/subscriptions/[^/]+/providers/(?P<ns>[^/]+)/locations/[^/]+/"
    r"(?P<kind>operations|operationResults)/(?P<id>[^/]+)",
    re.IGNORECASE,
)


@dataclass
class _BadJson:
    reason: str


def _unauthorized(code: str, message: str) -> ArmResponse:
    response = arm_error(401, code, message)
    # Same challenge shape as ARM; it carries no claims, so the SDK does not retry.
    response.headers["WWW-Authenticate"] = (
        'Bearer authorization_uri="https://login.microsoftonline.com/common", '
        'error="invalid_token", error_description="' + message.replace('"', "'") + '"'
    )
    return response


def _utc_now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"


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
                body = _BadJson(str(exc))
        call = Call(
            method=self.command.upper(),
            path=split.path,
            query=query,
            body=None if isinstance(body, _BadJson) else body,
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
        with arm.lock:
            arm._calls.append(call)
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

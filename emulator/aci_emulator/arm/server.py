"""A fake Azure Resource Manager (ARM) endpoint on loopback, for the real Azure SDK.

The server is generic: it authenticates (:mod:`.auth`), records, injects faults
(:mod:`.faults`), routes requests to the operations of registered
:class:`~.provider.ResourceProvider` s (one per Azure REST spec), validates them against
that spec, and runs ARM's asynchronous-operation protocol (:mod:`.operations`).
Provider-specific behaviour (what a container group is) lives in the provider modules,
e.g. :mod:`aci_emulator.providers.aci`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Self

from ..spec import Operation
from .auth import (
    FAKE_SUBSCRIPTION_ID,
    FAKE_TOKEN,
    FAKE_USER_OBJECT_ID,
    FakeCredential,
    authenticate,
)
from .directory import Directory
from .faults import Faults
from .listener import listen
from .messages import ArmRequest, ArmResponse, BadJson, Call, arm_error, invalid_content
from .operations import AsyncOperation, OperationTable
from .provider import ResourceProvider

Gate = Callable[[ResourceProvider, ArmRequest], ArmResponse | None]
"""A check ARM makes before a resource provider sees a request (the subscription is
registered for the namespace, the resource group exists): ``None`` lets it pass."""


class FakeArmServer:
    """The fake ARM endpoint. Use as a context manager; it listens while inside.

    Knobs (plain attributes, settable while running): :attr:`latency` (seconds added
    to every answer, outside the lock, so concurrent requests really overlap) and
    :attr:`operation_retry_after` (``Retry-After`` seconds on operation-status
    answers; ``None`` sends none, as ACI does, so the client's ``polling_interval``
    applies). Provider knobs live on the providers, e.g. ``server.aci``.

    :attr:`directory` holds the principals role assignments may name (the signed-in user,
    :data:`~.auth.FAKE_USER_OBJECT_ID`, and every managed identity created); :attr:`gates`
    are ARM's checks before a provider (providers add theirs when attached).

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
        self.async_operations = OperationTable(self.lock)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._extra: list[tuple[ThreadingHTTPServer, threading.Thread]] = []
        self.directory = Directory()
        self.directory.add(FAKE_USER_OBJECT_ID, "User")
        self.gates: list[Gate] = []
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
        self._httpd, self._thread = listen("127.0.0.1", port, self)
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
        self._extra.append(listen(host, port, self))
        return f"http://{host}:{port}"

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
            self.async_operations.clear()
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

    def record(self, call: Call) -> None:
        """Keep the record of an answered call (the HTTP handler calls it).

        :param call: the call, complete with its answer.
        """
        with self.lock:
            self._calls.append(call)

    def clear_calls(self) -> None:
        """Forget recorded calls (state is kept)."""
        with self.lock:
            self._calls.clear()

    def operations(self, kind: str | None = None) -> list[AsyncOperation]:
        """Asynchronous operations started so far, oldest first.

        :param kind: only this kind (``create``, ``update``, ``delete``).
        :return: the operations (live objects; read-only use).
        """
        return self.async_operations.snapshot(kind)

    # asynchronous operations (providers start them on :attr:`async_operations`)

    def operation_headers(
        self, base_url: str, op: AsyncOperation, *, location: bool
    ) -> dict[str, str]:
        """:meth:`OperationTable.headers` with this server's :attr:`operation_retry_after`.

        :param base_url: the request's base URL.
        :param op: the operation.
        :param location: also send a ``Location`` (operation result) header.
        :return: headers to add to a 201/202 answer.
        """
        return self.async_operations.headers(
            base_url, op, location=location, retry_after=self.operation_retry_after
        )

    def advance(self) -> None:
        """Complete every operation whose deadline has passed (call under the lock)."""
        self.async_operations.advance()

    def complete_operations(self, kind: str | None = None) -> int:
        """Finish in-flight asynchronous operations now, whatever their delay.

        Lets a test hold a group in ``Pending`` (long delay), look at it, then release it
        without sleeping.

        :param kind: only operations of this kind (``create``, ``update``, ``delete``).
        :return: how many operations were completed.
        """
        return self.async_operations.complete(kind)

    # request handling

    def handle(self, request: ArmRequest, call: Call) -> ArmResponse:
        """Serve one request (called by the HTTP handler thread).

        :param request: the parsed request.
        :param call: its record, updated with routing and fault information.
        :return: the answer.
        """
        refused = authenticate(request, self.token)
        if refused is not None:
            return refused

        fault = self.faults.pick(request.method, request.path)
        if fault is not None:
            call.fault = fault[0]
            return fault[1]

        with self.lock:
            self.advance()
            status_answer = self.async_operations.status_answer(
                request, call, self.operation_retry_after
            )
            if status_answer is not None:
                return status_answer
            return self._dispatch(request, call)

    def _route(
        self, request: ArmRequest
    ) -> tuple[ResourceProvider, Operation, dict[str, str]] | None:
        """The provider and operation serving a request: the most specific template of all
        the specs (several specs serve one namespace: ACR runs and registries)."""
        best: tuple[int, int, ResourceProvider, Operation, dict[str, str]] | None = None
        for provider in self.providers:
            matched = provider.spec.match(request.method, request.path)
            if matched is None:
                continue
            operation, params = matched
            rank = (operation.literal_length, -len(params))
            if best is None or rank > best[:2]:
                best = (*rank, provider, operation, params)
        return None if best is None else best[2:]

    def _dispatch(self, request: ArmRequest, call: Call) -> ArmResponse:
        routed = self._route(request)
        if routed is not None:
            provider, operation, path_params = routed
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
            for gate in self.gates:
                refused = gate(provider, request)
                if refused is not None:
                    return refused
            problems = provider.spec.check_parameters(operation, path_params, request.query)
            if problems:
                return arm_error(
                    400,
                    "InvalidParameter",
                    "; ".join(p.message for p in problems),
                    details=[p.detail("InvalidParameter") for p in problems],
                )
            if isinstance(request.body, BadJson):
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
                    "emulator/aci_emulator/providers.",
                )
            return handler(request)
        return arm_error(
            404,
            "NotFound",
            f"No route for {request.method} {request.path}: it matches no operation of the "
            f"specs the fake ARM server loads "
            f"({', '.join(p.spec.path.name for p in self.providers)}).",
        )

"""ARM's asynchronous-operation protocol: the operations in flight, the status and result
URLs that point at them (``Azure-AsyncOperation``, ``Location``), and their answers.

State changes are applied lazily: at the start of every request the server calls
:meth:`OperationTable.advance`, which completes each operation whose deadline has passed,
so tests see a consistent world without a background ticker thread.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .messages import ArmRequest, ArmResponse, Call, arm_error, format_seconds, utc_now_iso


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
    :param result: the body of the operation-result URL once it succeeded (providers whose
        spec says ``final-state-via: location`` answer the resource there); ``None``: 204.
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
    result: Callable[[], Any] | None = None


_OPERATION_PATH = re.compile(
    r"/subscriptions/[^/]+/providers/(?P<ns>[^/]+)/locations/[^/]+/"
    r"(?P<kind>operations|operationResults)/(?P<id>[^/]+)",
    re.IGNORECASE,
)


class OperationTable:
    """The asynchronous operations of one server (``server.async_operations``); providers
    start theirs with :meth:`start`.

    :param lock: the server's lock; completions run under it.
    """

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self._operations: dict[str, AsyncOperation] = {}

    def clear(self) -> None:
        """Forget every operation."""
        with self.lock:
            self._operations.clear()

    def snapshot(self, kind: str | None = None) -> list[AsyncOperation]:
        """Operations started so far, oldest first (after completing those that are due).

        :param kind: only this kind (``create``, ``update``, ``delete``).
        :return: the operations (live objects; read-only use).
        """
        with self.lock:
            self.advance()
            ops = list(self._operations.values())
        return [op for op in ops if kind is None or op.kind == kind]

    def start(
        self,
        *,
        namespace: str,
        subscription_id: str,
        location: str,
        kind: str,
        resource_id: str,
        delay: float,
        on_complete: Callable[[], dict[str, str] | None] | None = None,
        result: Callable[[], Any] | None = None,
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
        :param result: the body the operation-result URL answers once it succeeded
            (``None``: 204 without a body).
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
            start_time_iso=utc_now_iso(),
            result=result,
        )
        with self.lock:
            self._operations[op.id] = op
        return op

    def headers(
        self, base_url: str, op: AsyncOperation, *, location: bool, retry_after: float | None
    ) -> dict[str, str]:
        """Response headers pointing at an operation's status (and result) URLs.

        :param base_url: the request's base URL.
        :param op: the operation.
        :param location: also send a ``Location`` (operation result) header.
        :param retry_after: seconds for a ``Retry-After`` header; ``None`` sends none.
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
        if retry_after is not None:
            headers["Retry-After"] = format_seconds(retry_after)
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
                    op.end_time_iso = utc_now_iso()

    def complete(self, kind: str | None = None) -> int:
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

    def status_answer(
        self, request: ArmRequest, call: Call, retry_after: float | None
    ) -> ArmResponse | None:
        """The answer to a GET of an operation's status or result URL.

        :param request: the request.
        :param call: its record; names the route it took.
        :param retry_after: ``Retry-After`` seconds while in progress; ``None`` sends none.
        :return: the answer, or ``None`` when the request is not for an operation.
        """
        m = _OPERATION_PATH.fullmatch(request.path)
        if m is None or request.method != "GET":
            return None
        op = self._operations.get(m["id"])
        if op is None or op.namespace.lower() != m["ns"].lower():
            return arm_error(404, "OperationNotFound", f"Operation {m['id']} was not found.")
        retry = (
            {"Retry-After": format_seconds(retry_after)}
            if retry_after is not None and op.status == "InProgress"
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
            if op.result is not None:
                return ArmResponse(200, op.result())
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

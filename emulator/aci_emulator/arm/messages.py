"""What goes over the wire: the parsed request handed to providers, their answer, ARM's
error body, and the record of each call."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..spec import Operation, Problem


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
    :param caller: the object id (``oid`` claim) of the signed-in principal, once
        authenticated; ``""`` when the token carries none.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    base_url: str
    operation: Operation | None = None
    path_params: dict[str, str] = field(default_factory=dict)
    caller: str = ""

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


@dataclass
class BadJson:
    """A body that did not parse as JSON (answered 400 once the route is known).

    :param reason: the parser's message.
    """

    reason: str


def format_seconds(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds as an integer, else as few digits as needed.

    :param seconds: the delay.
    :return: e.g. ``"2"`` or ``"0.05"``.
    """
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def utc_now_iso() -> str:
    """The current UTC time as ARM writes it, e.g. ``2024-05-01T12:00:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"


def deep_copy_json(value: Any) -> Any:
    """Copy a JSON-like value so stored state never aliases a request or response.

    :param value: any JSON-compatible value.
    :return: an independent deep copy.
    """
    return copy.deepcopy(value)

"""Fault injection: seeded random faults and scripted one-off faults, answered before any
handler runs."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .messages import ArmResponse, arm_error, format_seconds

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
    headers = {} if retry_after is None else {"Retry-After": format_seconds(retry_after)}
    if body is not None:
        return ArmResponse(status, body, headers)
    code = _FAULT_CODES.get(status, "InjectedFault")
    return arm_error(status, code, f"Injected fault: HTTP {status} ({code}).", headers=headers)

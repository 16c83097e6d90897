"""Exponential backoff with full jitter, and the test for a transient storage error."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from azure.core.exceptions import (
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)


@dataclass
class Backoff:
    """Delays that grow as ``base * factor**attempt`` up to ``cap``, drawn uniformly in
    ``[0, that]`` ("full jitter") so that workers recovering together do not stampede.

    Attributes:
        base: First ceiling in seconds (default 0.5).
        factor: Growth per failure (default 2).
        cap: Largest ceiling in seconds (default 10).
        rand: Source of uniform numbers in [0, 1); injectable for tests.
        attempt: Failures since the last success.
    """

    base: float = 0.5
    factor: float = 2.0
    # 10 s, not longer: after a storage outage a worker resumes at most 10 s late (the soak's
    # recovery bound), and a few workers polling every few seconds cost storage nothing.
    cap: float = 10.0
    rand: Callable[[], float] = field(default=random.random)
    attempt: int = 0

    def ceiling(self, attempt: int) -> float:
        """Upper bound of the delay after ``attempt`` previous failures.

        Args:
            attempt: Number of failures before this one (0 for the first).
        """
        # Cap the exponent so a long outage does not overflow the float.
        return min(self.cap, self.base * self.factor ** min(attempt, 64))

    def next_delay(self) -> float:
        """Return the delay before the next try and count one more failure."""
        delay = self.ceiling(self.attempt) * self.rand()
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Forget previous failures after a success."""
        self.attempt = 0


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` is a storage error worth retrying: no connection, a timeout,
    throttling (429) or a server error (5xx).

    Args:
        exc: The exception raised by an Azure SDK call.
    """
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return True
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        return status == 408 or status == 429 or status >= 500
    return isinstance(exc, ConnectionError | TimeoutError)

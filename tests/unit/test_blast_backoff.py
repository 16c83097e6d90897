"""Backoff growth, cap, jitter and the transient-error test."""

from __future__ import annotations

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from blast_worker.backoff import Backoff, is_transient


def test_ceiling_grows_then_caps() -> None:
    b = Backoff(base=0.5, factor=2, cap=10)
    assert [b.ceiling(i) for i in range(7)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert b.ceiling(10_000) == 10  # no overflow on long outages


def test_full_jitter_spans_zero_to_ceiling() -> None:
    values = iter([0.0, 0.999, 0.5])
    b = Backoff(base=1, factor=2, cap=100, rand=lambda: next(values))
    assert b.next_delay() == 0.0
    assert b.next_delay() == pytest.approx(1.998)
    assert b.next_delay() == pytest.approx(2.0)
    assert b.attempt == 3
    b.reset()
    assert b.attempt == 0


def test_real_jitter_stays_in_bounds() -> None:
    b = Backoff(base=0.5, cap=4)
    for attempt in range(20):
        ceiling = b.ceiling(attempt)
        assert 0 <= b.next_delay() <= ceiling


def _http(status: int) -> HttpResponseError:
    err = HttpResponseError(message=f"status {status}")
    err.status_code = status
    return err


def test_transient_classification() -> None:
    assert is_transient(ServiceRequestError("connection refused"))
    assert is_transient(_http(503)) and is_transient(_http(500)) and is_transient(_http(429))
    assert not is_transient(_http(403))
    assert not is_transient(_http(400))
    assert not is_transient(ResourceNotFoundError("gone"))
    assert not is_transient(ValueError("bug"))

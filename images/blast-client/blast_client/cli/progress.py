"""A progress display that adapts: a live bar on a TTY, plain lines otherwise, or JSON lines
for a program that reads the log (``BLAST_PROGRESS=json``: ``deployer db fetch`` runs
``blast-jobs db fetch`` in an ACI group and follows its log)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

PROGRESS_ENV = "BLAST_PROGRESS"
"""``json``: transfers report progress as JSON lines on stderr (:class:`JsonProgress`)."""
FETCH_EVENT = "db-fetch-progress"
"""The ``event`` of a ``db fetch`` progress line."""


class Progress:
    """Shows ``done/total`` jobs on stderr.

    Args:
        total: Number of jobs.
        stream: Where to draw; defaults to stderr.
        enabled: False to stay silent (e.g. with ``--output json``).
    """

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self._last: tuple[int, str] | None = None
        self._last_plain = 0.0

    def update(self, done: int, detail: str) -> None:
        """Redraw with ``done`` finished jobs.

        Args:
            done: Finished jobs.
            detail: Short status summary, e.g. "3 running, 1 queued".
        """
        if not self.enabled:
            return
        if self.tty:
            width = 30
            filled = width * done // max(self.total, 1)
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {done}/{self.total} {detail}\x1b[K")
            self.stream.flush()
        elif (done, detail) != self._last or time.monotonic() - self._last_plain > 30:
            # Without a terminal, print a line only when something changes (or every 30 s).
            self.stream.write(f"{done}/{self.total} finished; {detail}\n")
            self.stream.flush()
            self._last_plain = time.monotonic()
        self._last = (done, detail)

    def close(self) -> None:
        """End the bar's line."""
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class TransferProgress:
    """Shows a byte transfer (``db fetch``) on stderr: bytes, rate, ETA and volumes.

    A live bar on a TTY; without one, a plain line every ``interval`` seconds and at each
    finished volume, so a container's log shows how far it got.

    Args:
        stream: Where to draw; defaults to stderr.
        enabled: False to stay silent (e.g. with ``--output json``).
        interval: Seconds between plain lines.
    """

    def __init__(
        self, stream: TextIO | None = None, enabled: bool = True, interval: float = 10.0
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.interval = interval
        self._last_plain = float("-inf")
        self._volumes = -1
        self._drawn = False

    @staticmethod
    def line(
        done: int, total: int, volumes_done: int, volumes: int, rate: float, eta: float | None
    ) -> str:
        """The text after the bar (pure).

        Args:
            done: Bytes transferred.
            total: Bytes to transfer.
            volumes_done: Volumes verified.
            volumes: Volumes to transfer.
            rate: Bytes per second.
            eta: Seconds left, or None when unknown.
        """
        return (
            f"{_mib(done)}/{_mib(total)} MiB  {_mib(rate)} MiB/s  ETA {_duration(eta)}  "
            f"{volumes_done}/{volumes} volumes"
        )

    def update(
        self, done: int, total: int, volumes_done: int, volumes: int, rate: float, eta: float | None
    ) -> None:
        """Redraw.

        Args:
            done: Bytes transferred.
            total: Bytes to transfer.
            volumes_done: Volumes verified.
            volumes: Volumes to transfer.
            rate: Bytes per second.
            eta: Seconds left, or None when unknown.
        """
        if not self.enabled:
            return
        text = self.line(done, total, volumes_done, volumes, rate, eta)
        if self.tty:
            width = 30
            filled = width * min(done, total) // max(total, 1)
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {text}\x1b[K")
            self.stream.flush()
            self._drawn = True
            return
        now = time.monotonic()
        if volumes_done != self._volumes or now - self._last_plain >= self.interval:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last_plain = now
            self._volumes = volumes_done

    def close(self) -> None:
        """End the bar's line."""
        if self.enabled and self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()


class JsonProgress:
    """Reports a byte transfer as one JSON line on stderr every ``interval`` seconds and at
    each finished volume, for a program that follows the log (no bar, no ANSI codes)::

        {"event": "db-fetch-progress", "time": 1732240000.1, "done": 1048576,
         "total": 5242880, "volumes_done": 1, "volumes": 5, "rate": 2097152.0, "eta": 2.0}

    Args:
        stream: Where to write; defaults to stderr.
        interval: Seconds between lines.
        event: The ``event`` of every line.
    """

    def __init__(
        self, stream: TextIO | None = None, interval: float = 2.0, event: str = FETCH_EVENT
    ) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.event = event
        self._last = float("-inf")
        self._volumes = -1

    @staticmethod
    def record(
        event: str,
        done: int,
        total: int,
        volumes_done: int,
        volumes: int,
        rate: float,
        eta: float | None,
    ) -> dict[str, Any]:
        """The line's document (pure).

        Args:
            event: The ``event`` value.
            done: Bytes transferred.
            total: Bytes to transfer.
            volumes_done: Volumes verified.
            volumes: Volumes to transfer.
            rate: Bytes per second.
            eta: Seconds left, or None when unknown.
        """
        return {
            "event": event,
            "time": round(time.time(), 3),
            "done": done,
            "total": total,
            "volumes_done": volumes_done,
            "volumes": volumes,
            "rate": round(rate, 1),
            "eta": None if eta is None else round(eta, 1),
        }

    def update(
        self, done: int, total: int, volumes_done: int, volumes: int, rate: float, eta: float | None
    ) -> None:
        """Write a line when ``interval`` has passed or a volume finished (or the first time).

        Args:
            done: Bytes transferred.
            total: Bytes to transfer.
            volumes_done: Volumes verified.
            volumes: Volumes to transfer.
            rate: Bytes per second.
            eta: Seconds left, or None when unknown.
        """
        now = time.monotonic()
        if volumes_done == self._volumes and now - self._last < self.interval:
            return
        doc = self.record(self.event, done, total, volumes_done, volumes, rate, eta)
        self.stream.write(json.dumps(doc) + "\n")
        self.stream.flush()
        self._last, self._volumes = now, volumes_done

    def close(self) -> None:
        """Nothing to end: every line is complete."""


def transfer_progress(env: Mapping[str, str], enabled: bool) -> TransferProgress | JsonProgress:
    """The transfer display ``env`` asks for: JSON lines with ``BLAST_PROGRESS=json``, else
    the bar (off when ``enabled`` is False, e.g. under ``--output json``).

    Args:
        env: The environment.
        enabled: Show the bar.
    """
    if env.get(PROGRESS_ENV, "").strip().lower() == "json":
        return JsonProgress()
    return TransferProgress(enabled=enabled)

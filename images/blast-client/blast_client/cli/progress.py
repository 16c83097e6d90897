"""A progress display that adapts: a live bar on a TTY, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


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

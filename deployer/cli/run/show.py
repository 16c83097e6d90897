"""Rendering shared by the ``deployer run`` commands: progress lines and the summary."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from deployer.cli.output import bill_table, err, out
from deployer.run.api import Progress, Summary


def progress_table(p: Progress) -> Table:
    """The live display: batches by state, workers, elapsed time, spend so far."""
    c = p.counts
    table = Table(title=f"run {p.run.run_id} ({p.run.status})", title_justify="left", box=None)
    for col in ("queued", "running", "done", "failed", "workers", "elapsed", "spend"):
        table.add_column(col, justify="right")
    table.add_row(
        str(c["queued"]),
        str(c["running"]),
        f"[green]{c['done']}[/]",
        f"[red]{c['failed'] + c['cancelled']}[/]",
        str(p.workers),
        f"{p.elapsed:.0f} s",
        f"{p.spend:.4f} {p.currency}",
    )
    return table


def progress_line(p: Progress) -> str:
    """The same as one plain line (not a TTY)."""
    c = p.counts
    return (
        f"[{p.elapsed:6.0f}s] {p.run.status}: {c['queued']} queued, {c['running']} running, "
        f"{c['done']} done, {c['failed'] + c['cancelled']} failed; {p.workers} workers; "
        f"{len(p.groups)} groups; spend {p.spend:.4f} {p.currency}"
    )


class Follower:
    """Live table on a TTY, one line per change otherwise (on stderr).

    Args:
        live (bool): Use the live table.
    """

    def __init__(self, live: bool) -> None:
        self.live = Live(console=err, refresh_per_second=2) if live else None
        self.last = ""
        self.last_time = 0.0

    def __enter__(self) -> Follower:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def __call__(self, p: Progress) -> None:
        """Show one snapshot."""
        if self.live is not None:
            self.live.update(progress_table(p))
            return
        line = progress_line(p)
        key = line.split("]", 1)[1]
        if key != self.last or time.monotonic() - self.last_time > 30:
            err.print(line, markup=False)
            self.last, self.last_time = key, time.monotonic()


class Submitting:
    """The jobs being queued, on stderr: a bar on a TTY (gone once done); otherwise a
    line every ``every`` seconds for a submission that takes that long.

    Args:
        live: Draw the bar.
        every: Seconds between plain lines.
        clock: Monotonic seconds.
    """

    def __init__(
        self, live: bool, every: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.bar = (
            RichProgress(
                TextColumn("queueing jobs"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            )
            if live
            else None
        )
        self.task: TaskID | None = None
        self.every = every
        self.clock = clock
        self.next_line = clock() + every

    def __enter__(self) -> Submitting:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

    def __call__(self, sent: int, total: int) -> None:
        """Show ``sent`` of ``total`` jobs queued."""
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task("submit", total=total)
            self.bar.update(self.task, completed=sent)
            return
        now = self.clock()
        if now >= self.next_line and sent < total:
            err.print(f"queued {sent} of {total} jobs", markup=False)
            self.next_line = now + self.every


def summary(s: Summary) -> None:
    """Print the end-of-run summary."""
    out.print(f"run {s.run_id}: {s.status} ({s.reason})", markup=False)
    out.print(
        f"  queries {s.queries}, hits {s.hits}, batches {s.batches} "
        f"({s.failed_batches} not succeeded, {s.retried_batches} retried), "
        f"wall time {s.wall_seconds:.0f} s",
        markup=False,
    )
    out.print(bill_table(s.bill))
    if s.out_dir:
        out.print(f"results in {s.out_dir}/", markup=False)
        for path in s.files.values():
            out.print(f"  {path}", markup=False)

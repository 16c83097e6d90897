"""A run's job rows, read incrementally: each read asks only for the rows changed since.

The first read is a full one: range queries over the run's job ids
(:meth:`blast_client.joblog.JobLog.run_rows`), a page of 1,000 ids each, :data:`READ_THREADS`
at once, instead of a point read per job. Later reads add ``Timestamp ge since``, so a
janitor pass of a 10,000-batch run reads the rows that changed, not 10,000.

A view for the janitor (``skip_queued``) leaves the queued rows out of a full read: a row not
read counts as queued (``deployer.run.decide.unfinished``), so its first pass over a run just
submitted transfers and parses next to nothing, where a 10,000-batch run's took 1.9 s.
Incremental reads keep every changed row, a batch gone back to its queue too. A view whose
rows are shown (``deployer run``, ``run status``) reads them all.

Why no change is missed. ``Timestamp`` is the service's clock when a row was last written,
and the clocks of its servers differ by at most :data:`SKEW_S`. Read k-1 ran from ``start`` to
``end`` (``seconds`` long, measured here). A row it did not see in its present state was
written after the scan passed it, so after ``start``: its Timestamp is at least
``start - SKEW_S``. Every Timestamp seen so far was written before ``end``, so the newest,
``mark``, is at most ``end + SKEW_S``. Read k asks for ``Timestamp >= mark - seconds -
2 * SKEW_S``, which is at most ``start - SKEW_S``: the row is read again. Rows read twice (ties
and the overlap) are simply replaced, since a later read of a row is never older.
``tests/unit/test_run_scale_pure.py`` checks it against a full read over random histories.

A later read also leaves out the jobs before the first one not yet final (:meth:`JobView.bounds`):
a final row never changes again (every write after a row exists is conditional on it not
being final, ``blast_client.joblog.FINAL``), and workers take a run's jobs about in order, so
the rows a read scans are those from the oldest job still open on, not the whole run's: the
overlap above re-read every job finished in the last ~10 s, nearly all of them before it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from blast_client import BlastClient, JobStatus
from blast_client.joblog import FINAL, MAX_PAGE, STATE_COLUMNS
from blast_client.storage import storage_errors

from deployer.run.state import Run

SKEW_S = 5.0
"""The most two storage servers' clocks are taken to differ by (they are NTP-synchronised;
Azure's are far closer)."""

READ_THREADS = 8
"""Ranges of a full read queried at once. Each job row is a partition of its own, so this is
far from any partition's limit; a page of 1,000 rows takes the service a while to scan."""


def id_ranges(ids: Sequence[str], size: int = MAX_PAGE) -> tuple[tuple[str, str], ...]:
    """Sorted job ids cut into (first, last) ranges of at most ``size`` ids (pure)."""
    return tuple((ids[i], ids[min(i + size, len(ids)) - 1]) for i in range(0, len(ids), size))


@dataclass
class JobView:
    """What a reader knows of a run's job rows, and the Timestamp to read from next.

    It reads the columns that say where each job is (``blast_client.joblog.STATE_COLUMNS``:
    status, attempts, hits, error, started, finished), which is all a run's janitor, status
    and merge need.

    Args:
        run_id (str): The run.
        first (str): Its smallest job id.
        last (str): Its largest job id.
        skew (float): :data:`SKEW_S`.
        skip_queued (bool): A full read leaves out the queued rows (their jobs are then
            missing from :attr:`jobs`, which counts them as queued).
    """

    run_id: str
    first: str
    last: str
    skew: float = SKEW_S
    jobs: dict[str, JobStatus] = field(default_factory=dict)
    mark: float | None = None  # newest Timestamp seen (epoch seconds)
    seconds: float = 0.0  # how long the last read took
    reads: int = 0
    read_rows: int = 0  # rows the last read returned
    ranges: tuple[tuple[str, str], ...] = ()  # a full read's ranges, queried at once
    skip_queued: bool = False
    ids: tuple[str, ...] = ()  # every job id, sorted
    open_from: int = 0  # ids before this index are final in :attr:`jobs`

    @classmethod
    def of(cls, run: Run, skew: float = SKEW_S, *, skip_queued: bool = False) -> JobView:
        """The view of ``run``'s batches (nothing read yet)."""
        ids = sorted(j for b in run.batches for j in b.jobs) or [""]  # a batch's shards too
        return cls(
            run.run_id,
            ids[0],
            ids[-1],
            skew,
            ranges=id_ranges(ids),
            skip_queued=skip_queued,
            ids=tuple(ids),
        )

    def bounds(self) -> tuple[str, str] | None:
        """The job ids a later read scans: from the first job not final in :attr:`jobs` to
        the last; None when every job is final (nothing can change)."""
        while self.open_from < len(self.ids) and self._final(self.ids[self.open_from]):
            self.open_from += 1
        if self.open_from >= len(self.ids):
            return None
        return (self.ids[self.open_from], self.last)

    def _final(self, job_id: str) -> bool:
        job = self.jobs.get(job_id)
        return job is not None and job.status in FINAL

    def since(self) -> float | None:
        """Epoch seconds the next read starts from; None for a full read (pure)."""
        if self.mark is None:
            return None
        return self.mark - self.seconds - 2 * self.skew

    def absorb(self, rows: Iterable[tuple[JobStatus, float]], seconds: float) -> None:
        """Take in one read's rows (each with its Timestamp) and how long the read took."""
        count = 0
        for job, stamp in rows:
            self.jobs[job.job_id] = job
            self.mark = stamp if self.mark is None else max(self.mark, stamp)
            count += 1
        self.read_rows = count
        self.seconds = seconds
        self.reads += 1

    def refresh(
        self, client: BlastClient, clock: Callable[[], float] = time.monotonic
    ) -> dict[str, JobStatus]:
        """Read the rows changed since the last read; return every job by id."""
        if not self.first:
            return self.jobs
        since = self.since()
        after = None if since is None else dt.datetime.fromtimestamp(since, dt.UTC)
        if after is None:
            ranges = self.ranges if len(self.ranges) > 1 else ((self.first, self.last),)
        else:
            still_open = self.bounds()
            if still_open is None:
                self.read_rows = 0
                return self.jobs
            ranges = (still_open,)
        unless = "queued" if after is None and self.skip_queued else None

        def read(bounds: tuple[str, str]) -> list[tuple[JobStatus, float]]:
            rows = client.joblog.run_rows(self.run_id, *bounds, after, STATE_COLUMNS, unless)
            return [(JobStatus.from_row(dict(e)), _stamp(e)) for e in rows]

        t0 = clock()
        with storage_errors():
            if len(ranges) == 1:
                parts = [read(ranges[0])]
            else:  # a full read of many pages: a page each, at once
                with ThreadPoolExecutor(min(READ_THREADS, len(ranges))) as pool:
                    parts = list(pool.map(read, ranges))
        # Every range's scan began after t0, so the argument above holds for the whole read.
        self.absorb((row for part in parts for row in part), clock() - t0)
        return self.jobs

    def statuses(self) -> dict[str, str]:
        """Status of each job read so far."""
        return {job_id: job.status for job_id, job in self.jobs.items()}


def _stamp(entity: Mapping[str, Any]) -> float:
    """An entity's Timestamp (the service's clock), as epoch seconds."""
    stamp = getattr(entity, "metadata", {}).get("timestamp")
    if isinstance(stamp, dt.datetime):
        return stamp.timestamp()
    raise ValueError("a table entity came back without its Timestamp")

"""The page's one door to the BLAST service: every read and write goes through ``BlastClient``.

A *search* is what a user submits from the form: one run (``run_id``) of one or more batch jobs
planned by the library (ElasticBLAST-style batching). Its state, progress and results are
derived from its jobs here; the message protocol, validation, storage layout, job statuses
and the merging of batches stay in the library.
"""

from __future__ import annotations

import io
import secrets
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from blast_client import BlastClientError, DatabaseInfo, JobNotFound, JobSpec, JobStatus, NoResult
from blast_client.joblog import FINAL
from blast_client.merge import merge
from blast_client.messages import FORMAT_EXTENSIONS

from blast_web.report import Report, parse_reports

__all__ = [
    "OUTPUT_FORMATS",
    "BlastClientError",
    "DatabaseInfo",
    "Download",
    "JobNotFound",
    "JobStatus",
    "NoResult",
    "Search",
    "Service",
    "group_searches",
    "join_fasta",
    "new_search_id",
    "search_state",
]

OUTPUT_FORMATS = (6, 15)
"""Formats every search asks for: the TSV download and the JSON the page renders."""

DOWNLOADS: dict[str, tuple[int, str]] = {
    # kind -> (format, media type); the file extension is the format's
    "tsv": (6, "text/tab-separated-values; charset=utf-8"),
    "json": (15, "application/json"),
    "archive": (11, "application/octet-stream"),
}


class Client(Protocol):
    """What the page uses of ``blast_client.BlastClient`` (tests pass a stand-in)."""

    def plan(
        self,
        fasta: str,
        db: str,
        program: str = ...,
        options: Any = ...,
        batch_len: int | None = ...,
        name: str | None = ...,
        run_id: str | None = ...,
        hit_fasta: bool = ...,
    ) -> list[JobSpec]: ...

    def submit(self, specs: Sequence[JobSpec]) -> list[str]: ...

    def run_jobs(self, run_id: str) -> list[JobStatus]: ...

    def recent(self, limit: int | None = ..., since: float = ...) -> list[JobStatus]: ...

    def result(self, job_id: str, fmt: int = ...) -> bytes: ...

    def hit_sequences(self, job_id: str) -> bytes: ...

    def databases(self) -> list[DatabaseInfo]: ...


def new_search_id(now: float | None = None) -> str:
    """A fresh, time-sortable, unguessable search id (it becomes the run id).

    Args:
        now: Epoch seconds; defaults to the clock.
    """
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"web-{stamp}-{secrets.token_hex(6)}"


def search_state(statuses: Sequence[str]) -> str:
    """One state for a search from its jobs' states.

    Args:
        statuses: Each job's status (``blast_client.joblog.STATUSES``, or unknown).

    Returns:
        ``queued`` (nothing started), ``running``, ``succeeded``, ``failed`` (nothing
        succeeded) or ``partial`` (finished, some batches failed).
    """
    if not statuses:
        return "queued"
    if any(s not in FINAL for s in statuses):
        started = any(s != "queued" and s != "unknown" for s in statuses)
        return "running" if started else "queued"
    if all(s == "succeeded" for s in statuses):
        return "succeeded"
    if any(s == "succeeded" for s in statuses):
        return "partial"
    return "failed"


@dataclass(frozen=True)
class Search:
    """A submitted search and its batch jobs, in submission order.

    Attributes:
        search_id: The run id.
        jobs: Its jobs.
    """

    search_id: str
    jobs: tuple[JobStatus, ...]

    @property
    def first(self) -> JobStatus:
        """The first batch (its name, program and database are the search's)."""
        return self.jobs[0]

    @property
    def name(self) -> str:
        """The label given at submission, or ""."""
        return self.first.name or ""

    @property
    def program(self) -> str:
        """The BLAST program."""
        return self.first.program or ""

    @property
    def db(self) -> str:
        """The database."""
        return self.first.db or ""

    @property
    def submitted(self) -> float | None:
        """When the first batch was queued (epoch seconds)."""
        return self.first.submitted

    @property
    def state(self) -> str:
        """See :func:`search_state`."""
        return search_state([j.status for j in self.jobs])

    @property
    def final(self) -> bool:
        """True once every batch has finished."""
        return all(j.final for j in self.jobs)

    @property
    def done(self) -> int:
        """Batches finished."""
        return sum(j.final for j in self.jobs)

    @property
    def hits(self) -> int | None:
        """Hits over the succeeded batches, or None if none succeeded yet."""
        counts = [j.hits for j in self.jobs if j.status == "succeeded" and j.hits is not None]
        return sum(counts) if counts else None

    @property
    def errors(self) -> list[str]:
        """The errors of failed batches, one line each."""
        return [
            f"batch {i}: {j.error or j.status}"
            for i, j in enumerate(self.jobs, start=1)
            if j.final and j.status != "succeeded"
        ]

    @property
    def hit_fasta_note(self) -> str | None:
        """None if every succeeded batch stored its hit sequences, else why not (one line)."""
        notes = [j.hit_fasta_note for j in self.jobs if j.status == "succeeded"]
        if not notes:
            return "no batch has succeeded yet"
        return next((note for note in notes if note is not None), None)

    def to_json(self) -> dict[str, Any]:
        """The search as plain JSON, for the pages' live refresh."""
        return {
            "search_id": self.search_id,
            "name": self.name,
            "program": self.program,
            "db": self.db,
            "submitted": self.submitted,
            "state": self.state,
            "final": self.final,
            "done": self.done,
            "total": len(self.jobs),
            "hits": self.hits,
            "errors": self.errors,
        }


def group_searches(jobs: Sequence[JobStatus]) -> list[Search]:
    """Group job rows into searches by run id, newest search first.

    Jobs without a run id (submitted with ``blast-jobs``) are searches of their own.

    Args:
        jobs: Job rows in any order.
    """
    groups: dict[str, list[JobStatus]] = {}
    for job in jobs:
        groups.setdefault(job.run_id or job.job_id, []).append(job)
    searches = [Search(key, tuple(_in_order(rows))) for key, rows in groups.items()]
    searches.sort(key=lambda s: (s.submitted or 0.0, s.search_id), reverse=True)
    return searches


def join_fasta(parts: Sequence[bytes]) -> bytes:
    """FASTA files joined, each record once (the first time its header line appears).

    Batches of one search often hit the same subjects; their records are identical.

    Args:
        parts: FASTA files, in batch order.
    """
    seen: set[bytes] = set()
    out: list[bytes] = []
    for part in parts:
        for record in part.split(b"\n>"):
            record = record if record.startswith(b">") else b">" + record
            header = record.split(b"\n", 1)[0]
            if record.strip(b">\n") and header not in seen:
                seen.add(header)
                out.append(record.rstrip(b"\n") + b"\n")
    return b"".join(out)


def _in_order(jobs: Sequence[JobStatus]) -> list[JobStatus]:
    # A search's batches are submitted together (one submission time) and their ids ascend
    # in batch order (blast_client.new_job_ids), so this is batch order; rows of clients
    # that queued batches one after the other have ascending times instead.
    return sorted(jobs, key=lambda j: (j.submitted or 0.0, j.job_id))


@dataclass(frozen=True)
class Download:
    """A file to send.

    Attributes:
        data: The bytes.
        filename: A name made here (never from user input).
        media_type: The Content-Type.
    """

    data: bytes
    filename: str
    media_type: str


class Service:
    """The BLAST service as the page needs it.

    Args:
        client: A ``BlastClient`` (or a stand-in with the same methods).
        cache_size: Parsed reports of finished searches kept in memory.
        db_ttl: Seconds the database list is reused.
    """

    def __init__(self, client: Client, cache_size: int = 16, db_ttl: float = 30.0) -> None:
        self.client = client
        self._reports: OrderedDict[str, Report] = OrderedDict()
        self._cache_size = cache_size
        self._db_ttl = db_ttl
        self._dbs: tuple[float, list[DatabaseInfo]] | None = None
        self._lock = threading.Lock()

    def databases(self, fresh: bool = False) -> list[DatabaseInfo]:
        """The databases in storage (cached for ``db_ttl`` seconds).

        Args:
            fresh: Read storage now (the form page, so a database uploaded a moment ago
                is offered), not the cached list.
        """
        now = time.monotonic()
        with self._lock:
            if not fresh and self._dbs is not None and now - self._dbs[0] < self._db_ttl:
                return self._dbs[1]
        dbs = self.client.databases()
        with self._lock:
            self._dbs = (now, dbs)
        return dbs

    def submit(self, specs: Sequence[JobSpec]) -> list[str]:
        """Queue the planned jobs of one search.

        Args:
            specs: From ``client.plan(..., run_id=new_search_id())``.
        """
        return self.client.submit(specs)

    def search(self, search_id: str) -> Search | None:
        """The search with this id, or None if it has no jobs.

        Args:
            search_id: The run id.
        """
        jobs = self.client.run_jobs(search_id)
        return Search(search_id, tuple(_in_order(jobs))) if jobs else None

    def recent(self, limit: int = 50, since: float = 7 * 86400.0) -> list[Search]:
        """Recent searches, newest first.

        Args:
            limit: Searches at most.
            since: Window in seconds.
        """
        # Jobs, not searches, are limited: a generous cap keeps the poll cheap.
        return group_searches(self.client.recent(limit=20 * limit, since=since))[:limit]

    def _results(self, search: Search, fmt: int) -> tuple[list[int], list[bytes]]:
        """The batch numbers (from 1) of the succeeded batches, and their results."""
        done = [(i, j) for i, j in enumerate(search.jobs, start=1) if j.status == "succeeded"]
        return [i for i, _ in done], [self.client.result(j.job_id, fmt) for _, j in done]

    def report(self, search: Search) -> Report:
        """The parsed JSON results of the search's succeeded batches (cached once final).

        A batch whose result cannot be read is left out and named in ``problems``.

        Args:
            search: The search.

        Raises:
            NoResult: if no batch succeeded yet.
        """
        with self._lock:
            cached = self._reports.get(search.search_id)
            if cached is not None:
                self._reports.move_to_end(search.search_id)
                return cached
        batches, documents = self._results(search, 15)
        if not documents:
            raise NoResult(f"search {search.search_id} has no results yet")
        report = parse_reports(documents, batches)
        if search.final:
            with self._lock:
                self._reports[search.search_id] = report
                while len(self._reports) > self._cache_size:
                    self._reports.popitem(last=False)
        return report

    def download(self, search: Search, kind: str) -> Download:
        """One download of a search's results.

        The batches are merged as ``deployer run`` merges them (:mod:`blast_client.merge`); a
        batch whose result cannot be merged is left out of the file, and the search's page
        names it (the same check as :meth:`report`).

        Args:
            search: The search.
            kind: ``tsv`` (format 6, batches concatenated), ``json`` (format 15, one
                ``BlastOutput2`` list), ``archive`` (format 11; a zip of one archive per
                batch when there are several).

        Raises:
            KeyError: on an unknown kind.
            NoResult: if no batch succeeded.
        """
        fmt, media = DOWNLOADS[kind]
        batches, parts = self._results(search, fmt)
        if not parts:
            raise NoResult(f"search {search.search_id} has no results yet")
        base, ext = f"blast-{search.search_id}", FORMAT_EXTENSIONS[fmt]
        if kind != "archive":
            return Download(merge(fmt, parts).data, f"{base}.{ext}", media)
        if len(parts) == 1:
            return Download(parts[0], f"{base}.{ext}", media)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for number, part in zip(batches, parts, strict=True):
                archive.writestr(f"{base}-batch{number:03d}.{ext}", part)
        return Download(buffer.getvalue(), f"{base}.zip", "application/zip")

    def hit_fasta(self, search: Search) -> Download:
        """The whole subject sequence of every hit, as FASTA, each subject once.

        The workers store it with ``blastdbcmd`` (``hits.fasta`` of each batch).

        Args:
            search: The search.

        Raises:
            NoResult: if no batch succeeded or the database cannot give them (the message
                says why, e.g. a database built without ``-parse_seqids``).
        """
        note = search.hit_fasta_note
        if note is not None:
            raise NoResult(f"There are no hit sequences for this search: {note}.")
        parts = [
            self.client.hit_sequences(job.job_id)
            for job in search.jobs
            if job.status == "succeeded"
        ]
        return Download(join_fasta(parts), f"blast-{search.search_id}-hits.fasta", "text/x-fasta")
